"""Compile time and schedule length: ctrl against Qiskit, same logical circuit, same device, one run.

    pip install qiskit   # benchmark-only dependency
    python tools/bench_compile.py [--repeat N]

Qiskit gets the protocol as a QuantumCircuit (resets, R_y rotations, CX/CZ, mid-circuit measurements)
and a Target built from the device file: the usable couplers with their native gate (ECR with its
calibrated direction, or CZ), sx/x/rz single-qubit gates, measure and reset, each with the calibrated
duration and error. It runs its noise-aware layout (VF2Layout/VF2PostLayout on those errors), routing,
translation and ASAP scheduling at optimization level 2. Resets after a measurement are free in both
(ctrl leaves a qubit that passed its check in |0>), so both schedule the same work; ctrl also honours
the controller's channel constraints (shared drive generators, multiplexed readout), which Qiskit does
not know about. The last line is JSON with every figure.
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


def qiskit_target(device):
    from qiskit.circuit import Parameter
    from qiskit.circuit.library import CZGate, ECRGate, Measure, Reset, RZGate, SXGate, XGate
    from qiskit.transpiler import InstructionProperties, Target

    names = [q.name for q in device.qubits]
    index = {n: i for i, n in enumerate(names)}
    target = Target(num_qubits=len(names), dt=None)
    usable = [q for q in device.qubits if q.usable]
    one = lambda gate_of: {(index[q.name],): gate_of(q) for q in usable}  # noqa: E731
    target.add_instruction(SXGate(), one(lambda q: InstructionProperties(q.x90.duration_s, q.x90.error)))
    target.add_instruction(XGate(), one(lambda q: InstructionProperties(q.x180.duration_s, q.x180.error)))
    target.add_instruction(RZGate(Parameter("t")), one(lambda q: InstructionProperties(0.0, 0.0)))
    target.add_instruction(
        Measure(),
        one(lambda q: InstructionProperties(
            max(q.readout.pulse_duration_s, q.readout.time_of_flight_s + q.readout.window_s),
            (q.readout.error_0to1 + q.readout.error_1to0) / 2)),
    )  # fmt: skip
    target.add_instruction(Reset(), one(lambda q: InstructionProperties(0.0, q.readout.error_1to0)))
    ecr, cz = {}, {}
    for c in device.couplers:
        if not c.usable or not all(device.qubit(n).usable for n in c.qubits):
            continue
        a, b = (index[n] for n in c.qubits)
        props = InstructionProperties(c.duration_s, c.error)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from qiskit import __version__ as qiskit_version
    from qiskit import transpile

    rows = []
    print(f"{'device':<18} {'d':>2} | {'ctrl compile':>12} {'qiskit':>10} {'speed-up':>8} | "
          f"{'ctrl schedule':>13} {'qiskit':>10} {'ratio':>6}")  # fmt: skip
    for name, d in CASES:
        device = load_device(ROOT / "device_configs" / name)
        qc = qiskit_circuit(d)
        target = qiskit_target(device)
        t_ctrl, t_qk = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            compiled = compile_program(device, d)
            t_ctrl.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = transpile(qc, target=target, optimization_level=2, scheduling_method="asap", seed_transpiler=0)
            t_qk.append(time.perf_counter() - t0)
        # Qiskit's schedule ends with its last operation; so does this figure (ctrl's attempt also waits
        # for its last decision, the readout-to-decision latency after the last readout).
        ctrl_s = compiled.report["last_operation_end_s"]
        qk_s = out.estimate_duration(target, unit="s")
        row = {
            "device": name, "distance": d,
            "ctrl_compile_s": statistics.median(t_ctrl), "qiskit_compile_s": statistics.median(t_qk),
            "speedup": statistics.median(t_qk) / statistics.median(t_ctrl),
            "ctrl_schedule_s": ctrl_s, "qiskit_schedule_s": qk_s, "schedule_ratio": ctrl_s / qk_s,
            "qiskit_two_qubit_gates": sum(out.count_ops().get(g, 0) for g in ("ecr", "cz")),
            "ctrl_two_qubit_gates": sum(compiled.native_counts.get(g, 0) for g in ("ECR", "CZ")),
            "qiskit_version": qiskit_version,
        }  # fmt: skip
        rows.append(row)
        print(
            f"{name:<18} {d:>2} | {row['ctrl_compile_s']:>10.3f} s {row['qiskit_compile_s']:>8.3f} s "
            f"{row['speedup']:>7.1f}x | {ctrl_s * 1e6:>10.2f} us {qk_s * 1e6:>7.2f} us {row['schedule_ratio']:>6.2f}"
        )
    print(json.dumps({"bench_compile": rows}, sort_keys=True))


if __name__ == "__main__":
    main()
