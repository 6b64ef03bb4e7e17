"""The compiled (timed, native) program as a Stim circuit: Clifford proxy, detectors, ideal round.

Qubit i of the Stim circuit is protocol qubit i (its device qubit is `program.qubits[i]`), so the
compiled circuit and the protocol circuit are directly comparable. Operations appear in time order;
every native op is lowered to its Clifford image in the chosen proxy (`ctrl.sim.lower` explains the
proxies): pulses by their proxy angle, VZ by its angle, ECR(c, t) = H t, SQRT_ZZ_DAG c t, H t, X c.

With noise, each gate is followed by its channel, preparations and measurements flip, and every gap
in a live qubit's timeline gets an idle channel. Instruction tags carry the source gadget, the start
cycle and the duration ("r0.X.F1@1234+56"); idle channels carry their length in cycles.
"""

from __future__ import annotations

import math

import stim

from ctrl.codes.color import color_code
from ctrl.compile.timed import TimedProgram
from ctrl.errors import CtrlError
from ctrl.noise.calibration import CalibrationNoise
from ctrl.noise.models import UniformNoise
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
    """`noise`: None, a `UniformNoise` (the paper's model, one idle channel per gap) or a
    `CalibrationNoise` (the device's own numbers, idle channels by gap length)."""
    if proxy not in ("X", "Z"):
        raise CtrlError(f"unknown proxy {proxy!r}: the compiled program lowers to proxy X or Z")
    model = _model(noise)
    index = {name: i for i, name in enumerate(program.qubits)}
    out = stim.Circuit()
    for i, name in enumerate(program.qubits):
        out.append("QUBIT_COORDS", [i], [float(i)])
    record: dict[str, int] = {}
    last_end: dict[int, int] = {}  # live qubit -> end of its latest op
    touched: set[int] = set()  # qubits that already did something this attempt
    n_meas = 0
    for t in program.ops:
        op = t.op
        qs = [index[q] for q in op.qubits]
        tag = f"{op.tag}@{t.start}+{t.duration}"
        if model is not None:
            for q, name in zip(qs, op.qubits):
                if q in last_end and last_end[q] < t.start:
                    model.idle(out, q, name, t.start - last_end[q])
        if op.name == "PREP":
            # In hardware a PREP does nothing: the qubit is already in |0> (it passed its measurement, or
            # an encoder fan-out cleared it), so whatever error it carries stays. Only the reset that
            # starts an attempt re-prepares.
            if qs[0] not in touched:
                out.append(stim.CircuitInstruction("R", qs, tag=tag))
                if model is not None:
                    model.prep(out, qs, op.qubits)
        elif op.name in _QUARTER:
            angle = op.angle if op.name == "RX" else op.proxy[0 if proxy == "X" else 1]
            gate = _QUARTER[op.name][quarter_turns(angle)]
            if gate != "I" or model is not None:
                out.append(stim.CircuitInstruction(gate, qs, tag=tag))
            if model is not None and op.name != "VZ":
                model.pulse(out, qs, op.qubits, op.angle)
        elif op.name == "CZ":
            out.append(stim.CircuitInstruction("CZ", qs, tag=tag))
            if model is not None:
                model.two(out, qs, op.qubits)
        elif op.name == "ECR":
            c, tq = qs
            out.append(stim.CircuitInstruction("H", [tq], tag=tag))
            out.append(stim.CircuitInstruction("SQRT_ZZ_DAG", [c, tq], tag=tag))
            out.append(stim.CircuitInstruction("H", [tq], tag=tag))
            out.append(stim.CircuitInstruction("X", [c], tag=tag))
            if model is not None:
                model.two(out, qs, op.qubits)
        elif op.name == "MEASURE":
            flip = model.readout(op.qubits[0]) if model is not None else 0.0
            out.append(stim.CircuitInstruction("M", qs, [flip] if flip else [], tag=tag))
            record[op.key] = n_meas
            n_meas += 1
        else:
            raise CtrlError(f"cannot lower native op {op.name} to Stim")
        touched.update(qs)
        for q in qs:
            if op.name == "MEASURE":
                last_end.pop(q, None)
            else:
                last_end[q] = t.end
    # Checks in the order the controller decides them, so the detector record is the decision order.
    keys_of = {name: keys for name, _, keys in program.checks}
    for d in program.decisions:
        for name in d.checks:
            recs = [stim.target_rec(record[k] - n_meas) for k in keys_of[name]]
            out.append(stim.CircuitInstruction("DETECTOR", recs, [], tag=name))
    if with_ideal_round:
        ideal_round(out, color_code(program.distance), proxy)
    return out


def _model(noise):
    if noise is None:
        return None
    if isinstance(noise, UniformNoise):
        return _UniformModel(noise)
    if isinstance(noise, CalibrationNoise):
        return _CalibrationModel(noise)
    raise CtrlError(f"unsupported noise model {noise!r}")


class _UniformModel:
    """The paper's circuit-level model on the compiled program: every gap of a live qubit is one idle."""

    def __init__(self, noise: UniformNoise) -> None:
        self.n = noise

    def idle(self, out, q, name, cycles):
        out.append(stim.CircuitInstruction("DEPOLARIZE1", [q], [self.n.idle], tag=f"idle+{cycles}"))

    def prep(self, out, qs, names):
        out.append("X_ERROR", qs, [self.n.flip])

    def pulse(self, out, qs, names, angle):
        out.append("DEPOLARIZE1", qs, [self.n.gate1])

    def two(self, out, qs, names):
        out.append("DEPOLARIZE2", qs, [self.n.gate2])

    def readout(self, name):
        return self.n.flip


class _CalibrationModel:
    def __init__(self, noise: CalibrationNoise) -> None:
        self.n = noise

    def idle(self, out, q, name, cycles):
        px, py, pz = self.n.idle(name, cycles)
        if px + py + pz > 0:
            out.append(stim.CircuitInstruction("PAULI_CHANNEL_1", [q], [px, py, pz], tag=f"idle+{cycles}"))

    def prep(self, out, qs, names):
        out.append("X_ERROR", qs, [self.n.reset_flip(names[0])])

    def pulse(self, out, qs, names, angle):
        out.append("DEPOLARIZE1", qs, [self.n.pulse(names[0], angle)])

    def two(self, out, qs, names):
        out.append("DEPOLARIZE2", qs, [self.n.two_qubit(*names)])

    def readout(self, name):
        return self.n.readout_flip(name)
