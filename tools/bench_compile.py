"""Compile time and schedule length: ctrl against Qiskit, same logical circuit, same device, one run.

    pip install -e .[bench]   # qiskit: benchmark-only dependency
    python tools/bench_compile.py [--repeat N]

What each side does (both get the protocol circuit and the device, built before the clock starts).
The circuit is the protocol family ctrl places on the device (at d=5 on grid55_d5 the path family,
which embeds, not the default tree4 design, which would have to be routed): the same logical circuit
on both sides; choosing the family is ctrl's work, inside its clock, and Qiskit is handed the choice.

- ctrl: `compile_program(device, d)`: placement (subgraph matching, every embedding scored on the
  calibration), native translation with merged rotations, list scheduling in integer cycles of the
  controller clock under every hardware constraint (one op per qubit, shared drive and flux
  generators, multiplexed readout fired in aligned blocks, crosstalk exclusions, readout windows),
  decision points with the readout-to-decision latency, and the report (critical path, idle per
  qubit, latency budget).
- Qiskit: `transpile(..., optimization_level=2, scheduling_method="asap")` of the same protocol as a
  QuantumCircuit (resets, R_y rotations, CX/CZ, mid-circuit measurements) to a Target built from the
  device file: the usable couplers with their native gate (ECR with its calibrated direction, or CZ),
  sx/x/rz, measure and reset, each with its calibrated duration and error. It runs its noise-aware
  layout (VF2Layout/VF2PostLayout on those errors), routing, translation, optimisation and ASAP
  scheduling. Resets after a measurement are free in both (ctrl leaves a qubit that passed its check
  in |0>), so both schedule the same work.

Compile time, in three columns, interleaved call by call, each the median of --repeat calls:

- cold (the headline): what a new calibration brings. Each ctrl call gets a new Device, loaded before
  the clock from the device file with every calibrated error and T1 scaled by a factor no other call
  uses (so nothing keyed on the calibration can hit), and every in-process cache of ctrl is emptied
  first (`_cold_ctrl`: the placement's embedding search and fault-tolerance checks, the protocol
  families it weighs, the translations, the per-device scheduling lookups; every functools cache in
  ctrl). Only the circuit of the protocol family ctrl places is rebuilt before the clock: it is the
  input, as the Qiskit circuit is on the other side. Each Qiskit call transpiles onto a fresh Target
  built before the clock from a new Device. (A new process would also build that circuit itself:
  0.1-0.3 s for the path family at d=5, on neither side's clock here.)
- cold, protocol kept: the same, but every protocol family at this distance and its fault-location
  counts are rebuilt before the clock too. They depend on the distance and the stored designs only,
  so a long-lived process that has compiled once keeps them whatever the calibration; the gap to the
  headline is that protocol-side work (loading the stored designs, building any other family that
  embeds, the fault-location counts).
- warm: the same Device and the same Target on every call, after one call each: ctrl's caches of
  what depends only on the distance and the coupling graph (the protocol on its layout, the subgraph
  embeddings) and per-Device lookups are hit; Qiskit redoes its layout on every call either way.

Before any of them, one untimed call each, so that neither side's column carries the process's
first-use costs (lazy imports, first allocations).

Schedule length, the end of the last operation (Qiskit's estimate_duration; ctrl's attempt also
waits for its last decision, the readout-to-decision latency after the last readout, not counted):

- (a) ctrl under every hardware constraint against Qiskit, which models none of them: no clock grid
  (durations in seconds), no shared generators, no multiplexed readout blocks.
- (b) like for like: ctrl scheduled with only the constraints Qiskit models (per-qubit order and
  durations: `channels=False`) against Qiskit given the same clock grid (dt = the controller's clock
  period, every duration rounded up to whole cycles as ctrl does).

The last line is JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

from ctrl.compile.pipeline import compile_program
from ctrl.device import load_device
from ctrl.protocol.cn20 import cn20_protocol, variants

ROOT = Path(__file__).resolve().parents[1]
CASES = [("planar16_d3.yaml", 3), ("grid55_d5.yaml", 5)]


def qiskit_circuit(distance: int, layout=None):
    from qiskit import QuantumCircuit

    c = cn20_protocol(distance, layout)
    qc = QuantumCircuit(len(c.qubits), len(c.measurements))
    clbit = {op.key: i for i, op in enumerate(c.measurements)}
    for op in c.ops:
        t = op.targets
        if op.name in ("R", "RX", "RH"):
            qc.reset(t[0])
            if op.name == "RX":
                qc.h(t[0])
            elif op.name == "RH":
                qc.ry(math.pi / 4, t[0])
        elif op.name == "RY_P4":
            qc.ry(math.pi / 4, t[0])
        elif op.name == "RY_M4":
            qc.ry(-math.pi / 4, t[0])
        elif op.name == "CX":
            qc.cx(*t)
        elif op.name == "CZ":
            qc.cz(*t)
        elif op.name in ("M", "MX"):
            if op.name == "MX":
                qc.h(t[0])
            qc.measure(t[0], clbit[op.key])
    return qc


def qiskit_target(device, clock_hz: float | None = None):
    """The device as a Qiskit Target; with `clock_hz`, on that clock's grid (durations rounded up to
    whole cycles, as ctrl rounds them)."""
    from qiskit.circuit import Parameter
    from qiskit.circuit.library import CZGate, ECRGate, Measure, Reset, RZGate, SXGate, XGate
    from qiskit.transpiler import InstructionProperties, Target

    def span(seconds: float) -> float:
        if clock_hz is None:
            return seconds
        return max(0, math.ceil(seconds * clock_hz - 1e-6)) / clock_hz

    names = [q.name for q in device.qubits]
    index = {n: i for i, n in enumerate(names)}
    target = Target(num_qubits=len(names), dt=None if clock_hz is None else 1 / clock_hz)
    usable = [q for q in device.qubits if q.usable]
    one = lambda gate_of: {(index[q.name],): gate_of(q) for q in usable}  # noqa: E731
    target.add_instruction(SXGate(), one(lambda q: InstructionProperties(span(q.x90.duration_s), q.x90.error)))
    target.add_instruction(XGate(), one(lambda q: InstructionProperties(span(q.x180.duration_s), q.x180.error)))
    target.add_instruction(RZGate(Parameter("t")), one(lambda q: InstructionProperties(0.0, 0.0)))
    target.add_instruction(
        Measure(),
        one(lambda q: InstructionProperties(
            span(max(q.readout.pulse_duration_s, q.readout.time_of_flight_s + q.readout.window_s)),
            (q.readout.error_0to1 + q.readout.error_1to0) / 2)),
    )  # fmt: skip
    target.add_instruction(Reset(), one(lambda q: InstructionProperties(0.0, q.readout.error_1to0)))
    ecr, cz = {}, {}
    for c in device.couplers:
        if not c.usable or not all(device.qubit(n).usable for n in c.qubits):
            continue
        a, b = (index[n] for n in c.qubits)
        props = InstructionProperties(span(c.duration_s), c.error)
        if c.gate == "ecr":
            ctl = index[c.control]
            ecr[(ctl, b if ctl == a else a)] = props
        else:
            cz[(a, b)] = cz[(b, a)] = props
    if ecr:
        target.add_instruction(ECRGate(), ecr)
    if cz:
        target.add_instruction(CZGate(), cz)
    return target


def _transpile(qc, target):
    from qiskit import transpile

    return transpile(qc, target=target, optimization_level=2, scheduling_method="asap", seed_transpiler=0)


def _cold_ctrl(distance: int, layout, keep_protocol: bool) -> None:
    """Empty every in-process cache a compile can hit, so that a call pays for everything a new
    calibration makes it redo. A functools cache anywhere in ctrl, found by walking the loaded modules
    so that one added later is not missed; the compiler's dict caches by name (other module dicts are
    constants). Then rebuilt before the clock: the protocol circuit of the family ctrl places, the
    input, as the Qiskit circuit is on its side; with `keep_protocol`, also every protocol family at
    this distance and its fault-location counts, which depend on the distance and the stored designs
    only, so a process that has compiled once keeps them whatever the calibration (layouts adapted to
    a device are not kept)."""
    import sys

    from ctrl.compile import natives, placement, schedule

    for mod in [m for k, m in sys.modules.items() if k == "ctrl" or k.startswith("ctrl.")]:
        for value in list(vars(mod).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", "") == mod.__name__:
                value.cache_clear()
    for cache in (natives._DERIVED, natives._EVENTS, natives._FUSED, natives._IDENTITY, natives._CLOSED,
                  schedule._NEEDS):  # fmt: skip
        cache.clear()
    cn20_protocol(distance, layout)
    if keep_protocol:
        for _, family in variants(distance):
            placement._protocol(distance, family)


def _recalibrated(base: Path, folder: Path, k: int) -> Path:
    """The device file with every gate and readout error and every T1 scaled by 1 + k/1000: a new
    calibration hash per call and placement scores that differ, the topology unchanged."""
    import yaml

    doc = yaml.safe_load(base.read_text(encoding="utf-8"))
    f = 1 + (k + 1) / 1000
    for q in doc["calibration"]["qubits"]:
        q["t1_s"] = q["t1_s"] * f
        for gate in ("x90", "x180"):
            q[gate]["error"] = q[gate]["error"] * f
        for e in ("error_0to1", "error_1to0"):
            q["readout"][e] = q["readout"][e] * f
    for c in doc["calibration"]["couplers"]:
        if c.get("error") is not None:
            c["error"] = c["error"] * f
    path = folder / f"cold{k}_{base.name}"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def measure(name: str, distance: int, repeat: int, folder: Path) -> dict:
    from qiskit import __version__ as qiskit_version

    base = ROOT / "device_configs" / name
    device = load_device(base)
    target = qiskit_target(device)
    # Untimed, one call each: the process's first-use costs (lazy imports, first allocations) are no
    # calibration's; this one also names the protocol family ctrl places, which Qiskit is then given.
    layout = compile_program(device, distance).placement.layout
    qc = qiskit_circuit(distance, layout)
    _transpile(qc, qiskit_target(device))
    cold_ctrl, kept_ctrl, cold_qk, warm_ctrl, warm_qk = [], [], [], [], []
    for k in range(repeat):
        for keep, times in ((False, cold_ctrl), (True, kept_ctrl)):
            fresh = load_device(_recalibrated(base, folder, 2 * k + keep))
            _cold_ctrl(distance, layout, keep_protocol=keep)
            t0 = time.perf_counter()
            compile_program(fresh, distance)
            times.append(time.perf_counter() - t0)
        fresh_target = qiskit_target(fresh)
        t0 = time.perf_counter()
        _transpile(qc, fresh_target)
        cold_qk.append(time.perf_counter() - t0)
    compile_program(device, distance)  # the caches the cold calls emptied, back for this device
    for _ in range(repeat):
        t0 = time.perf_counter()
        compiled = compile_program(device, distance)
        warm_ctrl.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out = _transpile(qc, target)
        warm_qk.append(time.perf_counter() - t0)
    med = statistics.median
    clock_hz = compiled.program.clock_hz
    gridded = qiskit_target(device, clock_hz)
    out_grid = _transpile(qc, gridded)
    free = compile_program(device, distance, channels=False)
    alap = compile_program(device, distance, policy="alap")
    ctrl_s = compiled.report["last_operation_end_s"]
    free_s = free.report["last_operation_end_s"]
    qk_s = out.estimate_duration(target, unit="s")
    qk_grid_s = out_grid.estimate_duration(gridded, unit="s")
    return {
        "device": name, "distance": distance, "repeat": repeat, "qiskit_version": qiskit_version,
        "ctrl_cold_compile_s": med(cold_ctrl), "qiskit_cold_compile_s": med(cold_qk),
        "ctrl_warm_compile_s": med(warm_ctrl), "qiskit_warm_compile_s": med(warm_qk),
        "ctrl_cold_protocol_kept_compile_s": med(kept_ctrl),
        "ctrl_cold_protocol_kept_compile_min_s": min(kept_ctrl),
        "speedup_cold_protocol_kept": med(cold_qk) / med(kept_ctrl),
        "ctrl_cold_compile_min_s": min(cold_ctrl), "qiskit_cold_compile_min_s": min(cold_qk),
        "ctrl_warm_compile_min_s": min(warm_ctrl), "qiskit_warm_compile_min_s": min(warm_qk),
        "speedup_cold": med(cold_qk) / med(cold_ctrl), "speedup_warm": med(warm_qk) / med(warm_ctrl),
        "ctrl_passes_s": {p.name: p.seconds for p in compiled.passes},
        "ctrl_schedule_s": ctrl_s, "ctrl_alap_schedule_s": alap.report["last_operation_end_s"],
        "ctrl_attempt_s": compiled.report["duration_s"],
        "ctrl_channel_free_schedule_s": free_s,
        "qiskit_schedule_s": qk_s, "qiskit_grid_schedule_s": qk_grid_s,
        "schedule_ratio_hardware_vs_qiskit": ctrl_s / qk_s,
        "schedule_ratio_alap_hardware_vs_qiskit": alap.report["last_operation_end_s"] / qk_s,
        "schedule_ratio_like_for_like": free_s / qk_grid_s,
        "schedule_ratio_channel_free_vs_qiskit": free_s / qk_s,
        "ctrl_duration_over_critical_path": compiled.report["duration_over_critical_path"],
        "qiskit_two_qubit_gates": sum(out.count_ops().get(g, 0) for g in ("ecr", "cz")),
        "ctrl_two_qubit_gates": sum(compiled.native_counts.get(g, 0) for g in ("ECR", "CZ")),
        "qiskit_one_qubit_pulses": sum(out.count_ops().get(g, 0) for g in ("sx", "x")),
        "ctrl_one_qubit_pulses": sum(compiled.native_counts.get(g, 0) for g in ("RX", "RY")),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "firmware").symlink_to(ROOT / "device_configs" / "firmware")
        rows = [measure(name, d, args.repeat, folder) for name, d in CASES]
    us = 1e6
    print(f"compile time (ms), median of {args.repeat} per column; ratio = qiskit/ctrl (> 1: ctrl is faster)")
    print(f"{'device':<18} {'d':>2} | {'cold: ctrl':>10} {'qiskit':>8} {'ratio':>6} | "
          f"{'cold, protocol kept: ctrl':>25} {'ratio':>6} | "
          f"{'warm: ctrl':>10} {'qiskit':>8} {'ratio':>6}")  # fmt: skip
    for r in rows:
        print(
            f"{r['device']:<18} {r['distance']:>2} | {r['ctrl_cold_compile_s'] * 1e3:10.2f} "
            f"{r['qiskit_cold_compile_s'] * 1e3:8.2f} {r['speedup_cold']:5.2f}x | "
            f"{r['ctrl_cold_protocol_kept_compile_s'] * 1e3:25.2f} {r['speedup_cold_protocol_kept']:5.2f}x | "
            f"{r['ctrl_warm_compile_s'] * 1e3:10.2f} {r['qiskit_warm_compile_s'] * 1e3:8.2f} "
            f"{r['speedup_warm']:5.2f}x"
        )
    slower = [r["distance"] for r in rows if r["speedup_cold"] < 1 or r["speedup_cold_protocol_kept"] < 1]
    print("headline (cold, a new calibration): " + "; ".join(
        f"d={r['distance']} {r['speedup_cold']:.2f}x" for r in rows)
        + (f"; ctrl is SLOWER than Qiskit cold at d={slower}" if slower else ""))  # fmt: skip
    print("ctrl passes (last compile, ms): " + "; ".join(
        f"d={r['distance']}: " + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in r["ctrl_passes_s"].items()) for r in rows))
    print("\nschedule length, end of the last operation (us)")
    print(f"{'device':<18} {'d':>2} | {'(a) ctrl, every hw constraint':>29} {'qiskit':>8} {'ratio':>6} | "
          f"{'(b) ctrl, qubits only':>21} {'qiskit, on ctrl clock':>21} {'ratio':>6}")  # fmt: skip
    for r in rows:
        print(
            f"{r['device']:<18} {r['distance']:>2} | {r['ctrl_schedule_s'] * us:29.2f} "
            f"{r['qiskit_schedule_s'] * us:8.2f} "
            f"{r['schedule_ratio_hardware_vs_qiskit']:6.3f} | {r['ctrl_channel_free_schedule_s'] * us:21.2f} "
            f"{r['qiskit_grid_schedule_s'] * us:21.2f} {r['schedule_ratio_like_for_like']:6.3f}"
        )
    for r in rows:
        print(
            f"  d={r['distance']}: ctrl alap {r['ctrl_alap_schedule_s'] * us:.2f} us "
            f"({r['schedule_ratio_alap_hardware_vs_qiskit']:.3f} of qiskit); ctrl qubits-only against qiskit off the "
            f"clock grid {r['schedule_ratio_channel_free_vs_qiskit']:.3f}; ctrl duration / critical path "
            f"{r['ctrl_duration_over_critical_path']:.3f}; two-qubit gates ctrl {r['ctrl_two_qubit_gates']} qiskit "
            f"{r['qiskit_two_qubit_gates']}; one-qubit pulses ctrl {r['ctrl_one_qubit_pulses']} "
            f"qiskit {r['qiskit_one_qubit_pulses']}"
        )
    print(json.dumps({"bench_compile": rows}, sort_keys=True, allow_nan=False))


if __name__ == "__main__":
    main()
