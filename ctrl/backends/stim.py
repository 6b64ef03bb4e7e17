"""The compiled (timed, native) program as a Stim circuit: Clifford proxy, detectors, ideal round.

Qubit i of the Stim circuit is protocol qubit i (its device qubit is `program.qubits[i]`), so the
compiled circuit and the protocol circuit are directly comparable. Operations appear in time order;
every native op is lowered to its Clifford image in the chosen proxy (`ctrl.sim.lower` explains the
proxies): pulses by their proxy angle, VZ by its angle, ECR(c, t) = H t, SQRT_ZZ_DAG c t, H t, X c.

With `noise` (an object with `gate1`, `gate2`, `flip`, `idle` probabilities, e.g. `UniformNoise`),
each gate is followed by its channel, preparations and measurements flip, and every gap in a live
qubit's timeline gets one idle channel. Instruction tags carry the source gadget and the start cycle.
"""

from __future__ import annotations

import math

import stim

from ctrl.codes.color import color_code
from ctrl.compile.timed import TimedProgram
from ctrl.errors import CtrlError
from ctrl.sim.lower import ideal_round

_QUARTER = {
    "RY": ("I", "SQRT_Y", "Y", "SQRT_Y_DAG"),
    "RX": ("I", "SQRT_X", "X", "SQRT_X_DAG"),
    "VZ": ("I", "S", "Z", "S_DAG"),
}


def quarter_turns(angle: float) -> int:
    k = angle / (math.pi / 2)
    if abs(k - round(k)) > 1e-9:
        raise CtrlError(f"angle {angle} rad is not a multiple of pi/2: not a Clifford in this proxy")
    return int(round(k)) % 4


def timed_to_stim(program: TimedProgram, proxy: str = "X", noise=None, with_ideal_round: bool = True) -> stim.Circuit:
    if proxy not in ("X", "Z"):
        raise CtrlError(f"unknown proxy {proxy!r}: the compiled program lowers to proxy X or Z")
    index = {name: i for i, name in enumerate(program.qubits)}
    out = stim.Circuit()
    for i, name in enumerate(program.qubits):
        out.append("QUBIT_COORDS", [i], [float(i)])
    record: dict[str, int] = {}
    live_since: dict[int, int] = {}  # qubit -> end of its last op, while live
    checks_by_last: dict[str, list] = {}
    for name, kind, keys in program.checks:
        checks_by_last.setdefault(max(keys, key=program.record.index), []).append((name, keys))
    n_meas = 0
    for t in program.ops:
        op = t.op
        qs = [index[q] for q in op.qubits]
        tag = f"{op.tag}@{t.start}"
        if noise is not None:
            for q in qs:
                if q in live_since and live_since[q] < t.start:
                    out.append(stim.CircuitInstruction("DEPOLARIZE1", [q], [noise.idle], tag="idle"))
        if op.name == "PREP":
            out.append(stim.CircuitInstruction("R", qs, tag=tag))
            if noise is not None:
                out.append("X_ERROR", qs, [noise.flip])
        elif op.name in _QUARTER:
            angle = op.angle if op.name != "RY" else op.proxy[0 if proxy == "X" else 1]
            gate = _QUARTER[op.name][quarter_turns(angle)]
            if gate != "I" or noise is not None:
                out.append(stim.CircuitInstruction(gate, qs, tag=tag))
            if noise is not None and op.name != "VZ":
                out.append("DEPOLARIZE1", qs, [noise.gate1])
        elif op.name == "CZ":
            out.append(stim.CircuitInstruction("CZ", qs, tag=tag))
            if noise is not None:
                out.append("DEPOLARIZE2", qs, [noise.gate2])
        elif op.name == "ECR":
            c, tq = qs
            out.append(stim.CircuitInstruction("H", [tq], tag=tag))
            out.append(stim.CircuitInstruction("SQRT_ZZ_DAG", [c, tq], tag=tag))
            out.append(stim.CircuitInstruction("H", [tq], tag=tag))
            out.append(stim.CircuitInstruction("X", [c], tag=tag))
            if noise is not None:
                out.append("DEPOLARIZE2", qs, [noise.gate2])
        elif op.name == "MEASURE":
            args = [noise.flip] if noise is not None and noise.flip else []
            out.append(stim.CircuitInstruction("M", qs, args, tag=tag))
            record[op.key] = n_meas
            n_meas += 1
            for name, keys in checks_by_last.get(op.key, ()):
                recs = [stim.target_rec(record[k] - n_meas) for k in keys]
                out.append(stim.CircuitInstruction("DETECTOR", recs, [], tag=name))
        else:
            raise CtrlError(f"cannot lower native op {op.name} to Stim")
        for q in qs:
            if op.name == "MEASURE":
                live_since.pop(q, None)
            else:
                live_since[q] = t.end
    if with_ideal_round:
        ideal_round(out, color_code(program.distance), proxy)
    return out
