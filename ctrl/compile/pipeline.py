"""`compile_program`: protocol + device -> timed program, through named passes, each timed and logged.

    protocol   (transformation)  the CN20 circuit on the placed layout
    placement  (analysis)        which device qubit plays which protocol qubit
    natives    (transformation)  native pulses, couplers, readouts; rotations merged
    schedule   (transformation)  start times in controller cycles under every hardware constraint
    dd         (transformation)  optional: echo pulses in long idles, nothing moved (`ctrl.compile.dd`)
    decisions  (analysis)        decision points from readout times and the controller's latency
    report     (analysis)        counts, duration, critical path, idling

Outputs (`write_outputs`): program.json (the timed program), program.stim (its noiseless Clifford
proxy with every check as a detector and the ideal round), report.json. The same inputs give the same
bytes: nothing here depends on wall-clock time, except the pass log, which goes to report.json under
`passes` only as the pass names and kinds.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field

from ctrl.codes.color import check_distance
from ctrl.compile.dd import check_sequence, is_dd, pad
from ctrl.compile.natives import to_native
from ctrl.compile.passes import FACETS, Pass, PassManager, PassRecord
from ctrl.compile.placement import Placement, place, random_comparison, typical_step_s
from ctrl.compile.schedule import pi_pulses, scheduled, timeline
from ctrl.compile.timed import TimedProgram
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.realtime.budget import latency_budget
from ctrl.realtime.decision import decision_program
from ctrl.versions import versions


@dataclass(frozen=True)
class Compiled:
    program: TimedProgram
    placement: Placement
    native_counts: dict
    report: dict
    passes: tuple[PassRecord, ...] = field(default=(), compare=False)


def compile_program(
    device,
    distance: int,
    policy: str = "asap",
    exclude: frozenset[str] = frozenset(),
    placement: Placement | None = None,
    channels: bool = True,
    dd: str | None = None,
) -> Compiled:
    """Compile for `device`; `placement` fixes where the protocol goes instead of searching for it.

    `channels=False` schedules with per-qubit order and durations only, as a hardware-agnostic
    scheduler does (for comparisons; the program ignores shared generators and mux readout).
    `dd`: a dynamical decoupling sequence (`ctrl.compile.dd.SEQUENCES`) for the long idles, or None."""
    check_distance(distance)
    check_sequence(dd)
    with _collector_paused():
        return _compile(device, distance, policy, exclude, placement, channels, dd)


# ------------------------------------------------------------------------------------ fast path: no collection
# The compiler's one speed trick, fenced here. The passes allocate tens of thousands of small objects and
# free none that form cycles, yet a full cyclic collection that falls inside them walks the whole heap
# (the placement search's memo included): measured one compile per process on grid55_d5, the natives
# pass took 160 ms with the collector running against 17 ms without. The reference path is `_compile`
# with the collector running; tests/test_fast_paths.py checks that both write the same bytes.


@contextmanager
def _collector_paused():
    """The cyclic garbage collector off for the block (and left as it was: off stays off)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# ------------------------------------------------------------------------------------ passes


def _placement(p) -> tuple:
    given = p["placement_given"]
    placement = given if given is not None else place(p["distance"], p["device"], exclude=p["exclude"])
    return placement, (placement.layout, placement.qubits)


def _protocol(p) -> tuple:
    return (cn20_protocol(p["distance"], p["placement"].layout),)


def _natives(p) -> tuple:
    device, placement = p["device"], p["placement"]
    gates = {pair: c for pair, c in device.chosen_gates.items() if c.usable}
    native = to_native(p["circuit"], placement.qubits, gates)
    return native, native.counts()


def _schedule(p) -> tuple:
    device = p["device"]
    clock_hz = device.target.clock_hz(set(p["placement"].qubits))
    timed, last_end, ready, walk = scheduled(p["native"], device, clock_hz, p["policy"], p["channels"])
    return clock_hz, tuple(timed), last_end, ready, walk, None


def _dd(p) -> tuple:
    timed, padding = pad(list(p["timed"]), p["dd"], pi_pulses(p["device"], p["clock_hz"]))
    return tuple(timed), padding


def _decisions(p) -> tuple:
    device, placement, circuit = p["device"], p["placement"], p["circuit"]
    latency = int(round(device.target.decision_latency_s * p["clock_hz"]))
    realtime = _realtime_rule(device, placement, circuit)
    return latency, decision_program(circuit.checks, p["ready"], latency, realtime=realtime, duration=p["last_end"])


def _report_pass(p) -> tuple:
    device, placement, circuit, clock_hz = p["device"], p["placement"], p["circuit"], p["clock_hz"]
    rule = p["decisions"]
    abort = max(device.qubit(q).reset_s() for q in placement.qubits)
    program = TimedProgram(
        device=device.name,
        calibration_hash=device.calibration_hash,
        wiring_hash=device.wiring_hash,
        distance=p["distance"],
        clock_hz=clock_hz,
        qubits=placement.qubits,
        roles=tuple(q.role for q in circuit.qubits),
        ops=p["timed"],
        record=circuit.record,
        decisions=rule,
        duration=rule.duration,
        abort_duration=int(round(abort * clock_hz)),
        placement={"method": placement.method, "variant": placement.variant,
                   "expected_faults": round(placement.cost, 9), "embeddings_scored": placement.considered},
    )  # fmt: skip
    report = _report(program, placement, p["counts"], circuit, p["latency"], p["last_end"], p["walk"])
    # A given placement (recompiles, tools) is compared too, and as `place` compares it: the figures
    # follow from device, distance, layout and exclusions alone, so every path to a program agrees.
    compared = placement.random or random_comparison(p["distance"], device, placement.layout, frozenset(p["exclude"]))
    report["placement"]["random_placements"] = None if compared is None else compared.doc()
    report["latency_budget"] = latency_budget(rule)
    padding = p["padding"]
    report["dynamical_decoupling"] = None if padding is None else padding.report(clock_hz)
    return program, report


# The compiler. `device` is the context every pass reads its calibration facets through; the facets a pass
# requires are what a recalibration must change for the pass to be stale (`PassManager.stale`).
PIPELINE = PassManager((
    Pass("placement", "analysis",
         ("distance", "exclude", "placement_given", "calibration.quality", "calibration.step", "calibration.gates",
          "calibration.structure"),
         ("placement", "layout"), _placement, when=lambda p: p["placement_given"] is None),
    Pass("protocol", "transformation", ("distance", "layout"), ("circuit",), _protocol),
    Pass("natives", "transformation", ("circuit", "layout", "calibration.gates", "calibration.phases"),
         ("native", "counts"), _natives),
    Pass("schedule", "transformation",
         ("native", "layout", "policy", "channels", "calibration.timing", "calibration.structure"),
         ("clock_hz", "timed", "last_end", "ready", "walk", "padding"), _schedule),
    Pass("dd", "transformation", ("timed", "dd", "clock_hz", "calibration.timing"), ("timed", "padding"), _dd,
         when=lambda p: p["dd"] is not None),
    Pass("decisions", "analysis",
         ("ready", "last_end", "circuit", "layout", "clock_hz", "calibration.timing", "calibration.structure"),
         ("latency", "decisions"), _decisions),
    Pass("report", "analysis",
         ("timed", "decisions", "placement", "counts", "circuit", "last_end", "walk", "padding", "distance", "exclude",
          "calibration.hash", "calibration.quality", "calibration.timing"),
         ("program", "report"), _report_pass),
))  # fmt: skip


_CLASS_FACETS = {"metadata": (), "pulse": ("calibration.pulse",), "quality": ("calibration.quality",),
                 "timing": ("calibration.timing",)}  # fmt: skip


def computed_facets(device) -> dict[str, object]:
    """The facets passes read that are computed from the calibration rather than named by a change class."""
    chosen = sorted((tuple(sorted(pair)), c) for pair, c in device.chosen_gates.items() if c.usable)
    # the placement cost charges every ECR's echo pulse to its control
    controls = sorted((tuple(sorted(c.qubits)), c.gate, c.control or "") for c in device.couplers)
    return {
        "calibration.gates": tuple((pair, c.gate, c.control) for pair, c in chosen),
        "calibration.phases": tuple((pair, c.virtual_z_rad()) for pair, c in chosen),
        "calibration.step": (typical_step_s(device), tuple(controls)),
    }


def invalid_facets(classes, old_device, new_device) -> frozenset[str]:
    """The calibration facets a change between two devices invalidates: those its change classes name
    (`ctrl.recompile.diff`; a class with no facet of its own, as `structure`, invalidates every facet),
    and the computed ones whose values differ."""
    if not classes:
        return frozenset()
    out = {"calibration.hash"}
    for k in classes:
        out.update(_CLASS_FACETS.get(k, FACETS))
    before, after = computed_facets(old_device), computed_facets(new_device)
    out.update(k for k in before if before[k] != after[k])
    return frozenset(out)


def _compile(device, distance, policy, exclude, placement, channels, dd) -> Compiled:
    inputs = {"device": device, "distance": distance, "policy": policy, "exclude": exclude,
              "placement_given": placement, "channels": channels, "dd": dd}  # fmt: skip
    if placement is not None:
        inputs["layout"] = (placement.layout, placement.qubits)
        inputs["placement"] = placement
    p, log = PIPELINE.run(inputs)
    return Compiled(p["program"], p["placement"], p["counts"], p["report"], log)


def _realtime_rule(device, placement, circuit):
    """Whether a check can abort the attempt in real time: its results all reach the tProc, and the whole
    program runs on that one board. Across boards an abort on one board cannot stop the others (the
    firmware here has no board-to-board link), so such programs post-select every check after the run."""
    target = device.target
    if target.ideal:
        return lambda keys: True
    qubit_of = {op.key: placement.qubits[op.targets[0]] for op in circuit.measurements}
    one_board = len(target.boards(placement.qubits)) == 1

    def ok(keys) -> bool:
        return one_board and all(target.qubit_wiring(qubit_of[k]).readout.feedback for k in keys)

    return ok


def critical_path(program: TimedProgram, latency: int = 0) -> int:
    """Longest chain of calibrated durations through per-qubit order, ignoring channel sharing, with the
    readout-to-decision latency after each check's last result (the attempt ends at its last decision)."""
    return _timeline(program, latency)[0]


def _timeline(program: TimedProgram, latency: int, walk: tuple | None = None) -> tuple[int, dict[str, int]]:
    """The critical path (see `critical_path`) and each qubit's idle cycles between its first and last
    operation; `walk`: the scheduler's (chain end, result cycles by key, spans by qubit), taken while it
    built the program (`ctrl.compile.schedule.scheduled`), else worked out here from the program."""
    if walk is None:
        ops = [t for t in program.ops if not is_dd(t.op)]  # echo pulses fill idles: no part of the work
        names: dict[str, int] = {}
        qubits = [tuple(names.setdefault(q, len(names)) for q in t.op.qubits) for t in ops]
        ready = [t.ready - t.start if t.ready >= 0 else -1 for t in ops]
        line = timeline(qubits, ready, list(range(len(ops))), [t.start for t in ops], [t.duration for t in ops], len(names))
        results = {ops[i].op.key: r for i, r in line.results.items()}
        walk = (line.chain, results, {q: line.spans[n] for q, n in names.items() if n in line.spans})
    end, ready_at, span = walk
    for r in program.decisions.rules:
        end = max(end, max([ready_at[k] for k in r.keys]) + latency)
    return end, {q: st[1] - st[0] - st[2] for q in program.qubits if (st := span.get(q)) is not None}


def _report(
    program: TimedProgram, placement: Placement, counts: dict, circuit, latency: int, last_end: int, walk=None
) -> dict:
    lower, idle_cycles = _timeline(program, latency, walk)
    idle = {q: program.seconds(c) for q, c in idle_cycles.items()}
    return {
        "device": program.device,
        "calibration_hash": program.calibration_hash,
        "wiring_hash": program.wiring_hash,
        "protocol": {"name": "cn20", "distance": program.distance, "time_steps": circuit.n_steps},
        "qubits_used": len(program.qubits),
        "placement": {"method": placement.method, "variant": placement.variant, "qubits": list(placement.qubits),
                      "expected_faults_per_attempt": round(placement.cost, 9),
                      "embeddings_scored": placement.considered},
        "native_gate_counts": counts,
        "duration_cycles": program.duration,
        "last_operation_end_s": program.seconds(last_end),
        "duration_s": program.seconds(program.duration),
        "clock_hz": program.clock_hz,
        "critical_path_cycles": lower,
        "duration_over_critical_path": program.duration / lower if lower else None,
        "idle_s_per_qubit": {q: round(v, 12) for q, v in idle.items()},
        "decision_points": len(program.decisions.points),
        "checks_decided_after_the_run": sorted(c for d in program.decisions.points if not d.realtime
                                               for c in program.decisions.names(d)),
        "versions": versions(),
    }  # fmt: skip
