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

import hashlib
import json
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import ValidationError

from ctrl.compile.dd import check_sequence
from ctrl.compile.passes import PassRecord
from ctrl.compile.pipeline import PIPELINE, Compiled, compile_program, invalid_facets
from ctrl.compile.placement import Placement, expected_faults, place, random_comparison, typical_step_s
from ctrl.device import SCHEMA_VERSION, Calibration, Device, load_device
from ctrl.device.device import canonical_calibration
from ctrl.errors import CtrlError
from ctrl.files import read_limited, write_atomic
from ctrl.jsontext import dumps, encode, encode_flat, esc  # json.dumps(..., sort_keys=True, indent=1), faster
from ctrl.outputs.cache import CompileCache, CompileKey, Entry, compile_key, placement_from_doc
from ctrl.outputs.folder import (INPUTS_FILE, INPUTS_FORMAT, MAX_RECORD_BYTES, compile_inputs, json_object, read_inputs,
                                 remove_stale, report_doc, write_all)  # fmt: skip
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.recompile.diff import (METADATA, PULSE, QUALITY, STRUCTURE, UNCLASSIFIED, WIRING, CalibrationDiff,
                                 Change, _natural, diff_calibrations, diff_wiring)  # fmt: skip

DEFAULT_MARGIN = 0.05
REPORT_FILE = "recompile.json"
FULL_PASSES = ("placement", "protocol", "natives", "schedule", "decisions", "report")


# ------------------------------------------------------------------------------------ the previous compile


@dataclass(frozen=True)
class Previous:
    """The compile being recompiled: its calibration, protocol parameters and placement."""

    source: str  # what it was read from, for the report
    device_name: str
    calibration: Calibration | None  # None: unreadable under this schema (`problem` says why)
    calibration_hash: str
    wiring_hash: str
    distance: int
    policy: str
    exclude: tuple[str, ...]
    placement: Placement | None  # None: not recorded (an old device file: found by compiling it)
    searched: bool  # the placement is what a full compile finds (not one kept within the margin)
    device: Device | None = None  # the old device file, when that was given
    report: dict | None = field(default=None, repr=False)  # the old compile's report, when known
    problem: str | None = None
    report_file: Path | None = None  # the old folder's report.json (read only if the cache lacks the compile)
    dd: str | None = None  # the dynamical decoupling sequence compiled in, if any

    def __repr__(self) -> str:
        dd = f", dd {self.dd}" if self.dd else ""
        return (f"Previous({self.source}, d={self.distance}, {self.policy}{dd}, "
                f"calibration {self.calibration_hash[:19]})")  # fmt: skip


def _read_json(path: Path) -> dict:
    data = read_limited(path, MAX_RECORD_BYTES, "record")
    try:
        return json_object(path, data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise CtrlError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def load_previous(path: Path | str, new: Device | None = None, distance: int | None = None,
                  policy: str | None = None, exclude=(), dd: str | None = None) -> Previous:  # fmt: skip
    """The previous compile from an output folder written by `ctrl recompile` or `ctrl compile` (its
    `compile_inputs.json`) or from the old device file (then `distance`, `policy` and `dd` say what was
    compiled: default 3, asap, no dynamical decoupling)."""
    check_sequence(dd)
    path = Path(path)
    if path.is_dir():
        return _from_folder(path, distance, policy, dd)
    if not path.exists():
        raise CtrlError(f"{path}: no such file or folder "
                        "(expected an output folder of ctrl recompile, or a device file)")
    old = load_device(path)
    return Previous(f"device file {path}", old.name, old.calibration, old.calibration_hash, old.wiring_hash,
                    distance or 3, policy or "asap", tuple(sorted(exclude)), None, True, device=old, dd=dd)  # fmt: skip


def _from_folder(folder: Path, distance: int | None, policy: str | None, dd: str | None) -> Previous:
    inputs = folder / INPUTS_FILE
    if not inputs.is_file():
        if (folder / "program.json").is_file():
            raise CtrlError(f"{folder}: no {INPUTS_FILE}, so the calibration it was compiled for is unknown "
                            "(ctrl compile does not record it): pass the old device file as --from")  # fmt: skip
        raise CtrlError(f"{folder}: not an output folder of ctrl recompile (no {INPUTS_FILE})")
    doc, cal_text = read_inputs(inputs)
    if doc.get("format") != INPUTS_FORMAT:
        raise CtrlError(f"{inputs}: format {doc.get('format')!r}, expected {INPUTS_FORMAT!r}")
    try:
        proto = doc["protocol"]
        d, pol, exclude = int(proto["distance"]), str(proto["policy"]), tuple(sorted(proto["exclude"]))
        was_dd = proto.get("dd")
        check_sequence(was_dd)
        placement = placement_from_doc(doc["placement"])
        searched = bool(doc["placement"]["searched"])
        cal_hash, wiring_hash, name = str(doc["calibration_hash"]), str(doc["wiring_hash"]), str(doc["device"])
        schema = doc["schema_version"]
        cal_doc = doc["calibration"] if cal_text is None else None
    except (KeyError, TypeError, ValueError) as e:
        raise CtrlError(f"{inputs}: incomplete record ({type(e).__name__}: {e})") from None
    except CtrlError as e:
        raise CtrlError(f"{inputs}: {e}") from None
    if distance is not None and distance != d:
        raise CtrlError(f"{folder} holds the d={d} protocol, not d={distance}: "
                        "a new distance is a new compile (ctrl compile)")
    if policy is not None and policy != pol:
        raise CtrlError(f"{folder} was scheduled {pol}, not {policy}: a new policy is a new compile (ctrl compile)")
    if dd is not None and dd != was_dd:
        raise CtrlError(f"{folder} was compiled with dynamical decoupling {was_dd or 'off'}, not {dd}: "
                        "another sequence is a new compile (ctrl compile --dd)")  # fmt: skip
    calibration, problem = None, None
    if not (isinstance(schema, int) and 2 <= schema <= SCHEMA_VERSION):  # a v2 calibration reads as v3
        problem = f"the previous calibration was recorded under schema {schema}, this ctrl reads {SCHEMA_VERSION}"
    else:
        try:
            calibration = Calibration.model_validate_json(json.dumps(cal_doc) if cal_text is None else cal_text)
        except ValidationError as e:
            err = e.errors(include_url=False)[0]
            where = ".".join(str(x) for x in err["loc"])
            problem = f"the previous calibration does not load under schema {SCHEMA_VERSION} ({where}: {err['msg']})"
    # the calibration as recorded (its text's digest checked) stands for its recorded hash; anything else is
    # hashed again
    if calibration is not None and cal_text is None and _hash(calibration) != cal_hash:
        raise CtrlError(f"{inputs}: the calibration does not match its recorded hash {cal_hash[:23]}... (edited?)")
    return Previous(f"folder {folder}", name, calibration, cal_hash, wiring_hash, d, pol, exclude, placement,
                    searched, problem=problem, report_file=folder / "report.json", dd=was_dd)  # fmt: skip




def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _hash(cal: Calibration) -> str:
    return "sha256:" + hashlib.sha256(canonical_calibration(cal).encode()).hexdigest()


def _old_device(prev: Previous, new: Device) -> Device:
    """The previous device: the old file, or the new wiring (same hash) with the old calibration."""
    if prev.device is not None:
        return prev.device
    spec = new.spec.model_copy(update={"calibration": prev.calibration, "name": prev.device_name})
    dev = Device(new.path, spec, new.firmware)
    # load_previous checked the recorded hash against this very calibration, and the wiring is the new
    # device's (same spec wiring, same firmware): seed the cached properties
    dev.__dict__["calibration_hash"] = prev.calibration_hash
    dev.__dict__["wiring_hash"] = new.wiring_hash
    return dev


# ------------------------------------------------------------------------------------ the recompile


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
    need_old = not _lowers(stale, invalid) or prev.placement is None
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
    lowered = [x for x in stale if x not in ("placement", "report")]
    if _lowers(stale, invalid) or decision.moved or old is None:
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


def _lowers(stale: tuple[str, ...], invalid: frozenset[str]) -> bool:
    """Whether the plain path must lower again: a lowering pass is stale other than by new corrections."""
    return any(x not in ("placement", "report") for x in stale) and not _phases_only(invalid)


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


# ------------------------------------------------------------------------------------ output


def _same_schedule(a, b) -> bool:
    """The two programs play the same operations at the same times (virtual-Z corrections aside)."""
    if (a.distance, a.clock_hz, a.qubits, a.roles, a.record, a.decisions, a.duration, a.abort_duration,
            a.device, a.wiring_hash) != (b.distance, b.clock_hz, b.qubits, b.roles, b.record, b.decisions,
                                         b.duration, b.abort_duration, b.device, b.wiring_hash):  # fmt: skip
        return False
    if a.ops is b.ops:
        return True
    if len(a.ops) != len(b.ops):
        return False
    for x, y in zip(a.ops, b.ops):
        if x is y:
            continue
        if (x.start, x.duration, x.channels, x.ready) != (y.start, y.duration, y.channels, y.ready):
            return False
        if replace(x.op, phases=()) != replace(y.op, phases=()):
            return False
    return True


def _report_from(base: Entry, entry: Entry, qick_report: dict | None) -> bytes:
    """report.json of `entry`: the base's bytes with only the top-level values that differ written anew
    (`passes` always: the cache does not keep them), else rendered in full."""
    doc = report_doc(entry.report, entry.passes, qick_report)
    text = base.files.get("report.json")
    if text is not None:
        known = report_doc(base.report, (), base.qick.report if base.qick is not None else None)
        del known["passes"]
        spliced = _splice_top(text, known, doc)
        if spliced is not None:
            return spliced
    return (dumps(doc) + "\n").encode()


def _splice_top(text: bytes, known: dict, doc: dict) -> bytes | None:
    """`dumps(doc) + "\\n"`, given `text` is that of a document with the values `known` and the same keys:
    the values of `known` that equal `doc`'s are kept as bytes, the others rendered at their depth. None if
    the text does not have the expected shape. (In json's indent=1 form a top-level key, and only a
    top-level key, starts a line with one space and a quote; strings never hold a raw newline.)"""
    keys = sorted(doc)
    if not set(known) <= set(doc) or text.count(b'\n "') != len(keys) or not text.endswith(b"\n}\n"):
        return None
    parts, at = [], 0
    for i, k in enumerate(keys):
        if k in known and known[k] == doc[k]:
            continue
        head = b"\n " + esc(k).encode() + b": "
        a = text.find(head, at)
        if a < 0:
            return None
        a += len(head)
        b = text.find(b",\n " + esc(keys[i + 1]).encode() + b": ", a) if i + 1 < len(keys) else len(text) - 3
        if b < 0:
            return None
        parts += [text[at:a], encode(doc[k], "\n ").encode()]
        at = b
    parts.append(text[at:])
    return b"".join(parts)


_PROGRAM_FILES = ("program.json", "program.stim")
_SCHEDULE_FIELDS = ("device", "wiring_hash", "distance", "clock_hz", "qubits", "roles", "record", "decisions",
                    "duration", "abort_duration")  # fmt: skip


def _known_program_file(name: str) -> bool:
    return name in _PROGRAM_FILES or name == "report.json"


def _known_output(name: str) -> bool:
    """Files write_outputs writes that this reuse knows how to produce."""
    if name in _PROGRAM_FILES or name == "report.json":
        return True
    return bool(re.fullmatch(r"(qick_[^/]+\.(asm|json)|firmware_[^/]+\.json)", name))


def emit(rec: Recompiled, out: Path | str, device: Device | None = None) -> tuple[dict[str, bytes], str]:
    """`write_outputs(rec.compiled, out, device)`, reusing the bytes of the compile it was patched from
    where they cannot have changed. Returns (files written by relative path, how they were produced)."""
    files, how, _ = _emit(rec, Path(out), device)
    return files, how


def _emit(rec: Recompiled, out: Path, device: Device | None):
    """emit(), and the QICK sheet of the programs written (for the cache: the next patch starts from it).

    Reuse needs the base's files (kept in the cache) and the same schedule: then program.stim (the
    Clifford proxy does not see the calibration) is the base's, program.json the base's with the new
    calibration hash (when nothing else in it changed), and the QICK programs, which carry the pulse
    parameters, are patched from the base's (ctrl.backends.qick.reemit_qick: only what the pulse
    parameters feed is recomputed; emitted in full, and said why, when the change cannot be patched). An
    output file this function does not know makes write_outputs do it all."""
    base, new = rec.base, rec.entry
    reusable = (base is not None and all(_known_output(k) for k in base.files)
                and all(k in base.files for k in _PROGRAM_FILES)
                and all(base.header[k] == new.header[k] for k in _SCHEDULE_FIELDS))  # fmt: skip
    same_ops = reusable and new.same_ops(base)
    # a patch keeps the base's operations and times by construction (CZ corrections aside)
    kept = rec.action == "patch" and base is rec.old
    if not (reusable and (same_ops or kept or _same_schedule(base.compiled.program, new.compiled.program))):
        return write_all(new.compiled, out, device)
    has_qick = any(not _known_program_file(k) for k in base.files)
    if (same_ops and new.header == base.header and "report.json" in base.files
            and has_qick == (device is not None)):  # fmt: skip
        # nothing the outputs depend on changed (a cached result): every file as it was, passes aside
        doc = json.loads(base.files["report.json"])
        doc["passes"] = [{"name": p.name, "kind": p.kind} for p in new.passes]
        files = {k: v for k, v in base.files.items() if k != "report.json"}
        files["report.json"] = (dumps(doc) + "\n").encode()
        for name, data in sorted(files.items()):
            write_atomic(out / name, data)
        return files, "every file reused", base.qick
    qick, why = None, None
    if device is not None:  # first, as write_outputs does: a refused program leaves the folder as it was
        from ctrl.backends.qick import reemit_qick

        previous = _previous_qick(base) if has_qick else None
        qick, why = reemit_qick(previous, device, lambda: new.compiled.program)
    files: dict[str, bytes] = {"program.stim": base.files["program.stim"]}
    text, old_hash = base.files["program.json"], base.header["calibration_hash"].encode()
    same_place = new.header["placement"] == base.header["placement"] and text.count(old_hash) == 1
    edited = None
    if same_place and not same_ops:
        edited = _corrections_edited(text, getattr(new, "phase_edits", None))
    if same_ops and same_place:
        files["program.json"] = text.replace(old_hash, new.header["calibration_hash"].encode())
        how = "program.stim reused, program.json patched (calibration hash)"
    elif edited is not None:
        files["program.json"] = edited.replace(old_hash, new.header["calibration_hash"].encode())
        how = "program.stim reused, program.json patched (calibration hash, CZ corrections)"
    else:
        files["program.json"] = new.compiled.program.to_json().encode()
        how = "program.stim reused, program.json rendered"
    for name in _PROGRAM_FILES:
        write_atomic(out / name, files[name])
    if qick is not None:
        files |= _write_qick(qick, out)
        how += (", QICK programs patched (pulse parameters only)" if why is None
                else f", QICK programs emitted from the kept timed program (not patched: {why})")
    files["report.json"] = _report_from(base, new, qick.report if qick is not None else None)
    write_atomic(out / "report.json", files["report.json"])
    return files, how, qick.sheet if qick is not None else None


_CORRECTIONS = b'"phase_corrections_rad": '


def _corrections_edited(text: bytes, edits) -> bytes | None:
    """program.json with each CZ's phase corrections replaced, exactly as TimedProgram.to_json writes them
    (12 significant digits, at the depth of an operation's field). `edits`: (old, new) of every CZ in
    operation order; only CZ operations carry corrections, so the k-th one written is the k-th CZ with
    corrections, checked against its old text. None if the text is not so (then it is rendered in full)."""
    if not edits:
        return None
    parts, copied, search = [], 0, 0
    rendered: dict = {}  # a coupler's CZs share their corrections: each text made once

    def render(phases) -> bytes:
        t = rendered.get(phases)
        if t is None:
            t = rendered[phases] = _corrections_text(phases)
        return t

    for old, new in edits:
        if not old or not new:
            if old or new:  # the field would appear or go away
                return None
            continue
        i = text.find(_CORRECTIONS, search)
        if i < 0:
            return None
        i += len(_CORRECTIONS)
        was = render(old)
        if not text.startswith(was, i):
            return None
        j = i + len(was)
        if new != old:
            parts += [text[copied:i], render(new)]
            copied = j
        search = j
    if text.find(_CORRECTIONS, search) >= 0:  # another operation carries corrections
        return None
    parts.append(text[copied:])
    return b"".join(parts)


def _corrections_text(phases) -> bytes:
    """An operation's corrections as json.dumps(indent=1, sort_keys=True) writes them inside program.json."""
    if not phases:
        return b"{}"
    items = sorted((q, _r12(v)) for q, v in phases)
    return ("{" + ",".join(f"\n    {esc(q)}: {float.__repr__(v)}" for q, v in items) + "\n   }").encode()


def _r12(x: float) -> float:
    return float(f"{x:.12g}")  # as ctrl.compile.timed writes numbers


def _write_qick(qick, out: Path) -> dict[str, bytes]:
    """write_qick's files, returned as bytes."""
    files = {name: text.encode() for name, text in qick.texts().items()}
    for name, data in files.items():
        write_atomic(out / name, data)
    return files


def _previous_qick(base: Entry):
    """The QICK programs of a cached compile, rebuilt from its files and sheet (None without a sheet)."""
    from ctrl.backends.qick import programs_from_sheet

    if base.qick is None:
        return None
    try:
        return programs_from_sheet(base.qick, base.files)
    except KeyError:
        return None


def write(rec: Recompiled, out: Path | str, device: Device, cache: CompileCache | None = None,
          emulation: dict | None = None, qick: bool = True) -> tuple[list[Path], dict]:  # fmt: skip
    """The outputs (`emit`: what `ctrl compile` writes, QICK programs included unless `qick` is false),
    compile_inputs.json and recompile.json; the result and its files go into the cache. Returns (paths
    written, the report)."""
    out = Path(out)
    files, how, sheet = _emit(rec, out, device if qick else None)
    remove_stale(out, files)  # every path of _emit: QICK files of an earlier compile it did not write
    if cache is not None:
        cache.put(rec.key, rec.entry.derived(passes=(), files=files, qick=sheet))
    prev = rec.previous
    write_atomic(out / INPUTS_FILE, compile_inputs(device, rec.entry.placement, prev.distance, prev.policy,
                                                   prev.exclude, rec.searched, prev.dd))  # fmt: skip
    doc = report(rec, emulation) | {"outputs": {"files": sorted(files), "produced_by": how}}
    write_atomic(out / REPORT_FILE, _report_text(doc))
    return [out / k for k in sorted(files)] + [out / INPUTS_FILE, out / REPORT_FILE], doc


# ------------------------------------------------------------------------------------ report


def _report_text(doc: dict) -> str:
    """dumps(doc) + newline; the changes (flat records, hundreds when every qubit was recalibrated) each
    by json's C encoder."""
    changes = doc.get("changes")
    if not changes:
        return dumps(doc) + "\n"
    text = dumps(dict(doc, changes=[]))
    body = "[\n  " + ",\n  ".join(encode_flat(c, "\n  ") for c in changes) + "\n ]"
    return text.replace('\n "changes": []', '\n "changes": ' + body, 1) + "\n"


def _r(x):
    return None if x is None else float(f"{x:.9g}")


def _figures(report: dict | None) -> dict | None:
    if not report:
        return None
    try:
        return {
            "qubits": report["placement"]["qubits"],
            "expected_faults_per_attempt": report["placement"]["expected_faults_per_attempt"],
            "attempt_s": report["duration_s"],
            "critical_path_cycles": report["critical_path_cycles"],
            "decision_points": report["decision_points"],
            "calibration_hash": report["calibration_hash"],
        }
    except (KeyError, TypeError):
        return None


def _previous_report(prev: Previous | None) -> dict | None:
    if prev is None:
        return None
    if prev.report is not None or prev.report_file is None or not prev.report_file.is_file():
        return prev.report
    try:
        return _read_json(prev.report_file)
    except CtrlError:
        return None  # only used for the old figures


def report(rec: Recompiled, emulation: dict | None = None) -> dict:
    """recompile.json: what changed, what was redone, old versus new predictions, the placement."""
    prev = rec.previous
    ran = rec.passes_run
    old_report = rec.old.report if rec.old is not None else _previous_report(prev)
    h = rec.entry.header
    doc = {
        "format": "ctrl.recompile/1",
        "device": h["device"],
        "protocol": {"name": "cn20", "distance": h["distance"],
                     "policy": prev.policy if prev else None, "dd": prev.dd if prev else None},
        "from": {"source": prev.source if prev else None, "calibration_hash": prev.calibration_hash if prev else None},
        "to": {"calibration_hash": h["calibration_hash"]},
        "changes": rec.diff.to_json(),
        "change_classes": list(rec.diff.classes),
        "action": rec.action,
        "why": rec.why,
        "passes_run": list(ran),
        "compile_passes_skipped": [p for p in FULL_PASSES if p not in ran],
        "previous_compile_recomputed": [p.name for p in rec.old_passes],
        "equals_full_compile": rec.searched,
        "placement": rec.placement.to_json(),
        "predicted": {"old": _figures(old_report), "new": _figures(rec.entry.report),
                      "source": "compile reports (placement cost, schedule)"},
    }  # fmt: skip
    if emulation is not None:
        doc["emulated"] = emulation
    return doc


def emulate_both(rec: Recompiled, new: Device, shots: int, seed: int = 0) -> dict:
    """Acceptance, logical error per accepted state and time per accepted state of the old and the new
    program, each under its own calibration's noise, sampled by `ctrl.emulate.run.emulate`."""
    from ctrl.emulate.run import emulate

    prev = rec.previous
    out: dict = {"shots": shots, "seed": seed, "noise": "calibration"}
    old_program = rec.old.compiled.program if rec.old is not None else None
    old_device = None
    if prev is not None and prev.calibration is not None and prev.problem is None:
        if prev.device is not None or prev.wiring_hash == new.wiring_hash:
            old_device = _old_device(prev, new)
            if old_program is None and prev.placement is not None:
                old_program = compile_program(old_device, prev.distance, prev.policy, frozenset(prev.exclude),
                                              prev.placement, dd=prev.dd).program  # fmt: skip
    for name, device, program in (("old", old_device, old_program), ("new", new, rec.compiled.program)):
        if device is None or program is None:
            out[name] = None
            continue
        r = emulate(device, program, shots, "calibration", seed)
        out[name] = {k: r[k] for k in ("acceptance", "acceptance_ci95", "logical_error_rate", "logical_error_rate_ci95",
                                       "time_per_accepted_state_s", "attempt_s", "mean_attempt_s")}  # fmt: skip
    return out


def _us(s) -> str:
    return "?" if s is None else f"{s * 1e6:.3f} us"


def summary(doc: dict, rec: Recompiled | None = None, paths: list[Path] | None = None) -> str:
    """The printed summary of a recompile report (timings from `rec`, when given)."""
    lines = [f"{doc['device']}: CN20 d={doc['protocol']['distance']} recompiled from {doc['from']['source']}",
             f"  calibration {str(doc['from']['calibration_hash'])[:19]}... -> "
             f"{doc['to']['calibration_hash'][:19]}..."]  # fmt: skip
    changes = doc["changes"]
    if changes:
        lines.append(f"  {len(changes)} change(s): " + ", ".join(f"{k} {sum(c['class'] == k for c in changes)}"
                                                               for k in doc["change_classes"]))  # fmt: skip
        shown = rec.diff.changes if rec is not None else ()
        for c in shown[:12]:
            lines.append("    " + c.describe())
        if len(shown) > 12:
            lines.append(f"    ... and {len(shown) - 12} more (recompile.json, or ctrl diff-device)")
    else:
        lines.append("  no calibration change")
    lines.append(f"  action: {doc['action']}: {doc['why']}")
    timing = {p.name: p.seconds for p in rec.entry.passes} if rec is not None else {}
    ran = ", ".join(f"{p} ({timing[p] * 1e3:.1f} ms)" if p in timing else p for p in doc["passes_run"]) or "none"
    lines.append(f"  passes run: {ran}; skipped: {', '.join(doc['compile_passes_skipped']) or 'none'}")
    if doc["previous_compile_recomputed"]:
        again = ", ".join(doc["previous_compile_recomputed"])
        lines.append(f"  (the previous compile was not cached: recompiled it first: {again})")
    pl = doc["placement"]
    costs = pl["expected_faults_per_attempt"]
    move = "MOVED" if pl["moved"] else "kept"
    lines.append(f"  placement {move}: {pl['why']}")
    if pl["moved"] and pl["old_qubits"] is not None:
        gone = sorted(set(pl["old_qubits"]) - set(pl["new_qubits"]), key=_natural)
        came = sorted(set(pl["new_qubits"]) - set(pl["old_qubits"]), key=_natural)
        lines.append(f"    off {', '.join(gone) or '-'}; onto {', '.join(came) or '-'}")
    old, new = doc["predicted"]["old"], doc["predicted"]["new"]
    if old and new:
        moved_cost = costs["old_placement_new_calibration"]
        lines.append(f"  expected faults per attempt {old['expected_faults_per_attempt']:.4g} -> "
                     f"{new['expected_faults_per_attempt']:.4g} (old placement on the new calibration: "
                     f"{'?' if moved_cost is None else f'{moved_cost:.4g}'})")  # fmt: skip
        lines.append(f"  attempt {_us(old['attempt_s'])} -> {_us(new['attempt_s'])}")
    elif new:
        lines.append(f"  expected faults per attempt {new['expected_faults_per_attempt']:.4g}; "
                     f"attempt {_us(new['attempt_s'])}")  # fmt: skip
    em = doc.get("emulated")
    if em:
        o, n = em.get("old"), em.get("new")

        def both(key: str, f) -> str:
            def one(r) -> str:
                if not r:
                    return "?"
                if r[key] is None:
                    return "undefined (nothing accepted)"
                ci = r.get(f"{key}_ci95")  # a sampled rate is printed with its 95% interval
                return f(r[key]) + (f" [{f(ci[0])}, {f(ci[1])}]" if ci and None not in ci else "")

            return f"{one(o)} -> {one(n)}"

        lines.append(f"  emulated ({em['shots']} shots, calibration noise): "
                     f"acceptance {both('acceptance', lambda x: f'{x:.4g}')}, "
                     f"logical error per accepted {both('logical_error_rate', lambda x: f'{x:.3g}')}, "
                     f"time per accepted state "
                     f"{both('time_per_accepted_state_s', lambda x: f'{x * 1e3:.3g} ms')}")  # fmt: skip
    else:
        lines.append("  acceptance and logical error: not emulated (--emulate-shots N)")
    if paths:
        lines.append(f"  outputs: {doc['outputs']['produced_by']}")
        lines.append("  wrote " + ", ".join(str(p) for p in paths))
    return "\n".join(lines)


def run(source: Path | str, device_file: Path | str, out: Path | str, margin: float = DEFAULT_MARGIN,
        emulate_shots: int = 0, seed: int = 0, cache_dir: Path | str | None = None, distance: int | None = None,
        policy: str | None = None, dd: str | None = None) -> tuple[Recompiled, dict, list[Path]]:  # fmt: skip
    """`ctrl recompile`: load, recompile, emulate if asked, write. Returns (result, report, paths)."""
    new = load_device(device_file)
    cache = CompileCache(cache_dir)
    prev = load_previous(source, new, distance, policy, dd=dd)
    rec = recompile(prev, new, margin, cache)
    emulation = emulate_both(rec, new, emulate_shots, seed) if emulate_shots else None
    paths, doc = write(rec, out, new, cache, emulation)
    return rec, doc, paths
