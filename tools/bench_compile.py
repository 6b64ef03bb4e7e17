"""Compile time and schedule length: ctrl against Qiskit, same logical circuit, same device, one run.

    pip install -e .[bench]   # qiskit: benchmark-only dependency
    python tools/bench_compile.py [--repeat N]

What each side does (both get the protocol circuit and the device, built before the clock starts):

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

Compile time: one warm-up call each (reported as "first"), then --repeat calls each, interleaved;
the figure is the median. ctrl caches what depends only on the distance and the device's coupling
graph (the protocol on its layout, the subgraph embeddings), and, per loaded device (a Device is
immutable), each op kind's duration and channels, as Qiskit gets one Target object for every call. A
new calibration is a new Device: nothing calibrated carries over.

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
from ctrl.protocol.cn20 import cn20_protocol

ROOT = Path(__file__).resolve().parents[1]
CASES = [("planar16_d3.yaml", 3), ("grid55_d5.yaml", 5)]


def qiskit_circuit(distance: int):
    from qiskit import QuantumCircuit

    c = cn20_protocol(distance)
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


def measure(name: str, distance: int, repeat: int) -> dict:
    from qiskit import __version__ as qiskit_version

    device = load_device(ROOT / "device_configs" / name)
    qc = qiskit_circuit(distance)
    target = qiskit_target(device)
    t0 = time.perf_counter()
    compiled = compile_program(device, distance)
    ctrl_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = _transpile(qc, target)
    qiskit_first = time.perf_counter() - t0
    t_ctrl, t_qk = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        compiled = compile_program(device, distance)
        t_ctrl.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out = _transpile(qc, target)
        t_qk.append(time.perf_counter() - t0)
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
        "ctrl_compile_s": statistics.median(t_ctrl), "qiskit_compile_s": statistics.median(t_qk),
        "ctrl_compile_min_s": min(t_ctrl), "qiskit_compile_min_s": min(t_qk),
        "ctrl_first_compile_s": ctrl_first, "qiskit_first_compile_s": qiskit_first,
        "speedup": statistics.median(t_qk) / statistics.median(t_ctrl),
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
    rows = [measure(name, d, args.repeat) for name, d in CASES]
    us = 1e6
    print(f"compile time, median of {args.repeat} (first call in brackets)")
    print(f"{'device':<18} {'d':>2} | {'ctrl':>17} | {'qiskit':>17} | {'qiskit/ctrl':>11}")
    for r in rows:
        print(
            f"{r['device']:<18} {r['distance']:>2} | {r['ctrl_compile_s'] * 1e3:6.2f} ms "
            f"({r['ctrl_first_compile_s'] * 1e3:4.0f}) | {r['qiskit_compile_s'] * 1e3:6.2f} ms "
            f"({r['qiskit_first_compile_s'] * 1e3:4.0f}) | {r['speedup']:10.1f}x"
        )
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
    print(json.dumps({"bench_compile": rows}, sort_keys=True))


if __name__ == "__main__":
    main()
