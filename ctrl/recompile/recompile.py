"""`recompile`: a new program for a recalibrated device, redoing only what the calibration change reaches.

    previous = load_previous("out/", new)          # or an old device file
    rec = recompile(previous, new, margin=0.05, cache=CompileCache(dir))
    paths, report = write(rec, "out2/", new, cache)  # write_outputs' files, compile_inputs.json, recompile.json

A folder written by `ctrl compile` (`ctrl.outputs.write_compiled`) can be a `previous`.

What is redone, by the classes of `ctrl.recompile.diff` present:
- nothing changed: the cached result (no pass runs);
- `metadata`, `pulse`: the previous timed program stands; it takes the new calibration hash and the
  couplers' new virtual-Z corrections ("patch"); outputs whose bytes cannot have changed are reused;
- `quality` (or a new median two-qubit duration, which sets the placement's idle cost): the placement is
  re-evaluated ("placement"): the best placement on the new calibration against the old placement on the
  new calibration, in expected faults per attempt. The protocol moves if the best is better by more than
  `margin` (relative), and always moves off a component marked unusable; if it stays, the timed program
  stands as above;
- `timing` (or a move): re-lowered and rescheduled on the kept (or new) placement;
- `structure`, a wiring change, a device renamed, or a previous calibration this schema cannot read: a
  full compile, and the report says why.

The result equals a full compile of the new calibration whenever the placement is the one a full compile
finds (always, except when a better placement exists within the margin); `report.json` then differs only
in `passes`, which lists what actually ran.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from ctrl.compile.passes import PassRecord
from ctrl.compile.pipeline import PIPELINE, Compiled, compile_program, invalid_facets
from ctrl.compile.placement import Placement, expected_faults, place, random_comparison, typical_step_s
from ctrl.device import Device
from ctrl.errors import CtrlError
from ctrl.outputs.cache import CompileCache, CompileKey, Entry, compile_key
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.recompile.diff import (METADATA, PULSE, QUALITY, STRUCTURE, UNCLASSIFIED, WIRING, CalibrationDiff,
                                 Change, diff_calibrations, diff_wiring)  # fmt: skip
from ctrl.recompile.previous import Previous, _old_device

DEFAULT_MARGIN = 0.05
REPORT_FILE = "recompile.json"
FULL_PASSES = ("placement", "protocol", "natives", "schedule", "decisions", "report")




# ------------------------------------------------------------------------------------ the recompile


def _r(x):
    return None if x is None else float(f"{x:.9g}")


@dataclass(frozen=True)
class PlacementDecision:
    moved: bool
    why: str
    old_qubits: tuple[str, ...] | None
    new_qubits: tuple[str, ...]
    old_cost_before: float | None  # expected faults per attempt: old placement, old calibration
    old_cost_now: float | None  # old placement, new calibration
    best_cost_now: float | None  # best placement on the new calibration (None: not searched)
    margin: float

    def to_json(self) -> dict:
        return {
            "moved": self.moved, "why": self.why, "margin": self.margin,
            "old_qubits": list(self.old_qubits) if self.old_qubits is not None else None,
            "new_qubits": list(self.new_qubits),
            "expected_faults_per_attempt": {"old_placement_old_calibration": _r(self.old_cost_before),
                                            "old_placement_new_calibration": _r(self.old_cost_now),
                                            "best_placement_new_calibration": _r(self.best_cost_now)},
        }  # fmt: skip


@dataclass(frozen=True)
class Recompiled:
    entry: Entry = field(repr=False)  # the result; its `passes` are everything run for it, driver steps included
    diff: CalibrationDiff
    action: str  # "unchanged", "cached", "patch", "reschedule", "full"
    why: str
    placement: PlacementDecision
    searched: bool  # equal to a full compile of the new calibration
    key: CompileKey
    base: Entry | None = field(default=None, repr=False)  # cached compile it was patched from (files reused)
    old: Entry | None = field(default=None, repr=False)  # the previous compile, when known
    old_passes: tuple[PassRecord, ...] = ()  # run to learn the previous compile (an uncached old device file)
    previous: Previous | None = None

    def __repr__(self) -> str:
        ran = ",".join(self.passes_run) or "-"
        return f"Recompiled({self.action}, classes={self.diff.classes}, passes={ran}, moved={self.placement.moved})"

    @property
    def compiled(self) -> Compiled:
        """The result as `compile_program` gives it (built on first use from the cache's form)."""
        return self.entry.compiled

    @property
    def passes_run(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.entry.passes)


class _Log:
    def __init__(self):
        self.records: list[PassRecord] = []

    def run(self, name: str, kind: str, fn):
        t0 = time.perf_counter()
        out = fn()
        self.records.append(PassRecord(name, kind, time.perf_counter() - t0))
        return out


def recompile(prev: Previous, new: Device, margin: float = DEFAULT_MARGIN,
              cache: CompileCache | None = None) -> Recompiled:  # fmt: skip
    """The program for `new`, redoing only what changed since `prev` (see the module docstring).

    Reads the cache; `write` stores the result there, with its output files."""
    if not margin >= 0:
        raise CtrlError(f"margin must be >= 0 (a relative improvement in expected faults), got {margin}")
    d, policy, exclude, dd = prev.distance, prev.policy, frozenset(prev.exclude), prev.dd
    full_why = None
    if prev.problem:
        diff, full_why = CalibrationDiff(()), prev.problem
    elif prev.wiring_hash != new.wiring_hash:
        if prev.device is not None:
            diff = diff_wiring(prev.device.wiring, new.wiring, dict(prev.device.firmware), dict(new.firmware))
        else:
            diff = CalibrationDiff((Change("wiring", "", WIRING, prev.wiring_hash, new.wiring_hash, "-"),))
        full_why = "the wiring changed (wiring hash differs): full compile"
    else:
        diff = diff_calibrations(prev.calibration, new.calibration)
        if prev.device_name != new.name:
            renamed = Change("device", "name", STRUCTURE, prev.device_name, new.name, "-")
            diff = CalibrationDiff((renamed,) + diff.changes)
        if STRUCTURE in diff.classes:
            full_why = "qubits or couplers added, removed, renamed or reordered: full compile"
        elif UNCLASSIFIED in diff.classes:
            bad = ", ".join(sorted({c.field for c in diff.of(UNCLASSIFIED)}))
            full_why = f"fields with no change class ({bad}; see ctrl/recompile/diff.py): full compile"
    if full_why is not None:
        return _full(prev, new, diff, full_why, cache, margin)

    log = _Log()
    old_device = _old_device(prev, new)
    # what to redo is what the pipeline's declarations say the invalid facets reach (ctrl.compile.passes)
    invalid = invalid_facets(diff.classes, old_device, new)
    stale = PIPELINE.stale(invalid, decided=("placement",))
    old_key = compile_key(old_device, d, policy, exclude, None if prev.searched else prev.placement, dd)
    # a reschedule starts from whatever the previous compile was: its cache entry (a few MB with its output
    # files) is read only when it can be patched or its placement is not recorded
    need_old = not _lowers(_lowered(stale), invalid) or prev.placement is None
    old = cache.get(old_key) if cache is not None and need_old else None
    base = old
    old_passes: tuple[PassRecord, ...] = ()
    if old is None and prev.placement is None:
        # an old device file: its placement is only known by compiling it (cached for next time)
        compiled = compile_program(old_device, d, policy, exclude, dd=dd)
        old_passes = compiled.passes
        old = Entry.of(compiled)
        if cache is not None:
            cache.put(old_key, old)
    old_placement = old.placement if old is not None else prev.placement

    if "placement" in stale:
        decision, chosen, searched = log.run(
            "placement", "analysis", lambda: _decide(old_placement, old_device, new, d, exclude, margin))
    else:
        chosen, searched = old_placement, prev.searched
        why = ("nothing the placement depends on changed (errors, coherence, usable flags, positions, the median "
               "two-qubit duration)")  # fmt: skip
        q, cost = old_placement.qubits, old_placement.cost
        decision = PlacementDecision(False, why, q, q, cost, cost, None, margin)
    # the placement's cost is new whenever it was re-evaluated; its layout only if it moved
    invalid |= {"placement", "layout"} if decision.moved else {"placement"} if "placement" in stale else set()
    stale = PIPELINE.stale(invalid, decided=("placement",))

    key = compile_key(new, d, policy, exclude, None if searched else chosen, dd)
    if old_passes and key.digest == old_key.digest:
        why = "the previous device file had not been compiled: compiled it; nothing changed since"
        return Recompiled(old.derived(passes=old_passes), diff, "full", why, decision, searched, key, None, old, (),
                          prev)
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        entry = hit.derived(passes=tuple(log.records), files=hit.files, qick=hit.qick)
        action = "unchanged" if not diff else "cached"
        why = ("no calibration change: the previous result, from the cache" if not diff
               else "this calibration was compiled before: the result comes from the cache")  # fmt: skip
        return Recompiled(entry, diff, action, why, decision, searched, key, hit, old, old_passes, prev)
    lowered = _lowered(stale)
    if _lowers(lowered, invalid) or decision.moved or old is None:
        # the plain path: every stale pass after the placement runs again
        compiled = compile_program(new, d, policy, exclude, chosen, dd=dd)
        entry = Entry.of(replace(compiled, passes=tuple(log.records) + compiled.passes))
        if decision.moved:
            action, why = "reschedule", "the placement moved: lowered and scheduled on the new placement"
        elif lowered:
            action = "reschedule"
            read = sorted(f.removeprefix("calibration.") for x in lowered for f in PIPELINE.reading(x, invalid)
                          if f.startswith("calibration."))  # fmt: skip
            why = ("durations or other timing inputs changed" if "timing" in read else
                   f"what the lowering reads changed ({', '.join(dict.fromkeys(read))})")
            why += ": re-lowered and rescheduled, placement kept"
        else:
            action, why = "reschedule", "the previous compile is not in the cache: re-lowered on the kept placement"
        base = None
    else:
        # the fenced fast path: nothing a lowering pass reads changed but the couplers' virtual-Z corrections,
        # which only CZ operations carry and no later pass reads, so the previous operations stand with those
        # replaced (tests/test_recompile.py: the result equals the plain path's, byte for byte)
        phases = "calibration.phases" in invalid
        patched = log.run("patch", "transformation", lambda: _patch(old, new, chosen, phases, d, exclude))
        entry = patched.derived(passes=tuple(log.records))
        entry.phase_edits = getattr(patched, "phase_edits", None)
        what = {METADATA: "notes", PULSE: "pulse parameters", QUALITY: "quality figures"}
        changed = ", ".join(what[k] for k in diff.classes if k in what) or "nothing"
        action, why = "patch", f"{changed} changed: the previous timed program stands (no scheduling)"
    return Recompiled(entry, diff, action, why, decision, searched, key, base, old, old_passes, prev)


def _lowered(stale: tuple[str, ...]) -> list[str]:
    """The stale passes after the placement that make the program (the report is redone by any path)."""
    return [x for x in stale if x not in ("placement", "report")]


def _lowers(lowered: list[str], invalid: frozenset[str]) -> bool:
    """Whether the plain path must lower again: a lowering pass is stale other than by new corrections."""
    return bool(lowered) and not _phases_only(invalid)


def _phases_only(invalid: frozenset[str]) -> bool:
    """Whether the lowering passes are stale only because the virtual-Z corrections changed: natives reads
    no other invalid facet, and no later lowering pass reads one of its own."""
    if PIPELINE.reading("natives", invalid) != {"calibration.phases"}:
        return False
    return all(not (PIPELINE.reading(x, invalid) & invalid) for x in ("schedule", "dd", "decisions"))


def _full(prev: Previous, new: Device, diff: CalibrationDiff, why: str, cache, margin: float) -> Recompiled:
    d, policy, exclude, dd = prev.distance, prev.policy, frozenset(prev.exclude), prev.dd
    key = compile_key(new, d, policy, exclude, None, dd)
    hit = cache.get(key) if cache is not None else None
    entry = hit if hit is not None else Entry.of(compile_program(new, d, policy, exclude, dd=dd))
    old = prev.placement
    decision = PlacementDecision(
        old is not None and old.qubits != entry.placement.qubits, "full compile: placement searched anew",
        old.qubits if old is not None else None, entry.placement.qubits,
        old.cost if old is not None else None, None, entry.placement.cost, margin)  # fmt: skip
    return Recompiled(entry, diff, "full", why, decision, True, key, hit, None, (), prev)


def _blocked(placement: Placement, device: Device, exclude, couplers) -> list[str]:
    out = []
    for q in placement.qubits:
        if q in exclude:
            out.append(f"qubit {q} (excluded)")
        elif not device.qubit(q).usable:
            out.append(f"qubit {q} (marked unusable)")
    for a, b in couplers:
        qa, qb = placement.qubits[a], placement.qubits[b]
        if not device.coupler(qa, qb).usable:
            out.append(f"coupler {qa}-{qb} (marked unusable)")
    return out


def _decide(old: Placement, old_device: Device, new: Device, d: int, exclude, margin: float):
    """(decision, chosen placement, whether it is the one a full compile finds)."""
    best = place(d, new, exclude=exclude)
    circuit = cn20_protocol(d, old.layout)
    before = expected_faults(circuit, old.qubits, old_device, typical_step_s(old_device))
    now = expected_faults(circuit, old.qubits, new, typical_step_s(new))
    blocked = _blocked(old, new, exclude, circuit.couplers)

    def decision(moved: bool, why: str, chosen: Placement) -> PlacementDecision:
        return PlacementDecision(moved, why, old.qubits, chosen.qubits, before, now, best.cost, margin)

    if best.qubits == old.qubits and best.layout == old.layout:
        return decision(False, "still the best placement on the new calibration", best), best, True
    if blocked:
        why = f"the placement used {', '.join(blocked)}: moved to the best placement"
        return decision(True, why, best), best, True
    gain = (now - best.cost) / now if now > 0 else 0.0
    if gain > margin:
        why = (f"the best placement expects {gain:.1%} fewer faults per attempt ({now:.4g} -> {best.cost:.4g}), "
               f"more than the margin {margin:.1%}: moved")  # fmt: skip
        return decision(True, why, best), best, True
    kept = Placement(old.method, old.layout, old.qubits, now, best.considered)
    why = (f"the best placement would expect {gain:.1%} fewer faults per attempt ({now:.4g} -> {best.cost:.4g}), "
           f"within the margin {margin:.1%}: kept")  # fmt: skip
    return decision(False, why, kept), kept, False


def _patch(old: Entry, new: Device, placement: Placement, phases: bool, d: int, exclude) -> Entry:
    """The previous compile on the new calibration, for changes that reach no pass: the calibration hash,
    the couplers' virtual-Z corrections (carried by CZ ops; looked at only if some changed), and the
    placement's expected faults. The operations stay the previous ones, as bytes; new corrections go beside
    them (Entry.phases) when the previous compile is a cached blob, else into rebuilt CZ operations."""
    summary = {"method": placement.method, "variant": placement.variant,
               "expected_faults": round(placement.cost, 9), "embeddings_scored": placement.considered}  # fmt: skip
    header = {"calibration_hash": new.calibration_hash}
    if summary != old.header["placement"]:
        header["placement"] = summary
    report = dict(old.report)
    report["calibration_hash"] = new.calibration_hash
    compared = placement.random or random_comparison(d, new, placement.layout, frozenset(exclude))
    report["placement"] = dict(report["placement"], expected_faults_per_attempt=round(placement.cost, 9),
                               embeddings_scored=placement.considered,
                               random_placements=None if compared is None else compared.doc())  # fmt: skip
    entry = old.derived(header=header, placement=placement, report=report, passes=())
    if not phases or not entry.native_counts.get("CZ"):  # only CZ operations carry corrections
        return entry
    cz = old.cz
    corrections: dict = {}

    def now(qubits) -> tuple:  # the same form as ctrl.compile.natives gives them
        got = corrections.get(qubits)
        if got is None:
            cal = new.coupler(*qubits)
            got = corrections[qubits] = cal.virtual_z_rad()
        return got

    if old._blob is not None and cz is not None:
        kept = dict(old.phases)
        edits = []
        for i, qubits, blob_phases in cz:
            was, got = kept.get(i, blob_phases), now(qubits)
            edits.append((was, got))
            if got == blob_phases:
                kept.pop(i, None)
            else:
                kept[i] = got
        if all(a == b for a, b in edits):
            return entry
        out = entry.derived(phases=kept)
        out.phase_edits = edits  # what changed in program.json: each CZ's corrections, old and new (see _emit)
        return out
    prog = entry.compiled.program
    fresh, changed, edits = [], False, []
    for t in prog.ops:
        if t.op.name == "CZ":
            got = now(t.op.qubits)
            edits.append((t.op.phases, got))
            if got != t.op.phases:
                t = replace(t, op=replace(t.op, phases=got))
                changed = True
        fresh.append(t)
    if not changed:
        return entry
    c = entry.compiled
    out = Entry.of(Compiled(replace(prog, ops=tuple(fresh)), c.placement, c.native_counts, c.report, c.passes))
    out.phase_edits = edits
    return out
