"""The compiled (timed, native) program as a Stim circuit: Clifford proxy, detectors, ideal round.

Qubit i of the Stim circuit is protocol qubit i (its device qubit is `program.qubits[i]`), so the
compiled circuit and the protocol circuit are directly comparable. Operations appear in time order;
every native op is lowered to its Clifford image in the chosen proxy (`ctrl.sim.lower` explains the
proxies): pulses by their proxy angle, VZ by its angle, ECR(c, t) = H t, SQRT_ZZ_DAG c t, H t, X c.

Two noise models, two ways of counting fault locations:

- `CalibrationNoise` is the device: each pulse and each two-qubit gate is followed by a channel matched to
  its calibrated error, the reset at the start of an attempt and every readout flip, and every gap in a
  live qubit's timeline is an idle channel of that gap's length (T1, T2*; T2E next to an echo pulse of
  dynamical decoupling, `ctrl.compile.dd`).
- `UniformNoise` is the paper's model, and the paper defines it on the protocol's circuit. So it goes at
  the protocol's fault locations as they appear in the compiled program. A native op knows which
  protocol operations it realises (`NativeOp.source`: protocol step and gate). A two-qubit protocol gate
  gets its channel after its native two-qubit gate; a measurement flips its readout; an attempt's first
  preparation flips after the reset. Each one-qubit protocol gate, and each protocol step in which a live
  qubit idles, gets one depolarizing channel. That channel goes just before the qubit's next preparation,
  two-qubit gate or measurement, or at the end. A one-qubit depolarizing channel commutes with every
  one-qubit unitary, so its place among the fused pulses in between does not matter, not even in the
  exact (non-Clifford) form. The compiled program under `uniform:P` is therefore the protocol circuit of
  `ctrl simulate` up to equivalence, on every device, whatever its timing. The device's timing and
  errors are what calibration noise is for.

Instruction tags carry the source gadget, the start cycle and the duration ("r0.X.F1@1234+56"); idle
channels carry their length in cycles (calibration) or in protocol steps (uniform).
"""

from __future__ import annotations

import math

import stim

from ctrl.codes.color import color_code
from ctrl.compile.dd import is_dd
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
    if isinstance(noise, CalibrationNoise):  # its numbers are one device file's: the program's own
        noise.target.check_program(program)
    model = _model(noise)
    index = {name: i for i, name in enumerate(program.qubits)}
    out = stim.Circuit()
    for i, name in enumerate(program.qubits):
        out.append("QUBIT_COORDS", [i], [float(i)])
    record: dict[str, int] = {}
    last_end: dict[int, int] = {}  # live qubit -> end of its latest op
    echoed: set[int] = set()  # qubits whose latest op is an echo pulse
    touched: set[int] = set()  # qubits that already did something this attempt
    n_meas = 0
    if model is not None:
        model.start(program)
    for t in program.ops:
        op = t.op
        qs = [index[q] for q in op.qubits]
        tag = f"{op.tag}@{t.start}+{t.duration}"
        dd = is_dd(op)
        if model is not None:
            for q, name in zip(qs, op.qubits):
                if q in last_end and last_end[q] < t.start:
                    model.idle(out, q, name, t.start - last_end[q], echo=dd or q in echoed, live=last_end)
                if op.name in _ANCHORS:
                    model.anchor(out, q, op, q in last_end)
        if op.name == "PREP":
            # In hardware a PREP does nothing: the qubit is already in |0> (it passed its measurement, or
            # an encoder fan-out cleared it), so whatever error it carries stays. Only the reset that
            # starts an attempt re-prepares.
            if qs[0] not in touched:
                out.append(stim.CircuitInstruction("R", qs, tag=tag))
                if model is not None:
                    model.prep(out, qs, op)
        elif op.name in _QUARTER:
            angle = op.angle if op.name == "RX" else op.proxy[0 if proxy == "X" else 1]
            gate = _QUARTER[op.name][quarter_turns(angle)]
            if gate != "I" or model is not None:
                out.append(stim.CircuitInstruction(gate, qs, tag=tag))
            if model is not None:
                model.pulse(out, qs, op)
        elif op.name == "CZ":
            out.append(stim.CircuitInstruction("CZ", qs, tag=tag))
            if model is not None:
                model.two(out, qs, op)
        elif op.name == "ECR":
            c, tq = qs
            out.append(stim.CircuitInstruction("H", [tq], tag=tag))
            out.append(stim.CircuitInstruction("SQRT_ZZ_DAG", [c, tq], tag=tag))
            out.append(stim.CircuitInstruction("H", [tq], tag=tag))
            out.append(stim.CircuitInstruction("X", [c], tag=tag))
            if model is not None:
                model.two(out, qs, op)
        elif op.name == "MEASURE":
            flip = model.readout(op.qubits[0]) if model is not None else 0.0
            out.append(stim.CircuitInstruction("M", qs, [flip] if flip else [], tag=tag))
            record[op.key] = n_meas
            n_meas += 1
        else:
            raise CtrlError(f"cannot lower native op {op.name} to Stim")
        touched.update(qs)
        (echoed.update if dd else echoed.difference_update)(qs)
        for q in qs:
            if op.name == "MEASURE":
                last_end.pop(q, None)
            else:
                last_end[q] = t.end
    if model is not None:
        model.finish(out, {q: q in last_end for q in range(len(program.qubits))})
    # The detectors are the decision program's record: its checks in the order they are decided.
    rule = program.decisions
    for d in rule.points:
        for r in rule.rules_of(d):
            recs = [stim.target_rec(record[k] - n_meas) for k in r.keys]
            out.append(stim.CircuitInstruction("DETECTOR", recs, [], tag=r.name))
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


_ANCHORS = ("PREP", "CZ", "ECR", "MEASURE")


class _UniformModel:
    """The paper's model at the protocol's fault locations (module docstring)."""

    def __init__(self, noise: UniformNoise) -> None:
        self.n = noise

    def start(self, program: TimedProgram) -> None:
        index = {name: i for i, name in enumerate(program.qubits)}
        self.steps: dict[int, set[int]] = {}  # protocol steps in which each qubit does something
        last = 0
        for t in program.ops:
            if is_dd(t.op):
                continue  # an identity of the protocol: no fault location of the paper's model
            if not t.op.source:
                raise CtrlError(f"{t.op!r} does not say which protocol operation it realises: uniform noise needs it")
            for q in t.op.qubits:
                self.steps.setdefault(index[q], set()).update(s for s, _ in t.op.source)
            last = max([last] + [s for s, _ in t.op.source])
        self.n_steps = last + 1
        self.anchor_step: dict[int, int] = {}
        self.pending: dict[int, set] = {}  # one-qubit protocol gates since the qubit's last anchor
        self.first_prep: set[int] = set()
        self.again: set[tuple[int, int]] = set()  # (qubit, step) of preparations that are gates

    def idle(self, out, q, name, cycles, echo=False, live=()):
        pass

    def anchor(self, out, q, op, live):
        step = op.source[0][0]
        self._flush(out, q, step if live else None)
        self.anchor_step[q] = step
        if op.name == "PREP" and q in self.first_prep:
            self.again.add((q, step))  # the hardware does not reset here: what follows is a gate

    def finish(self, out, live):
        for q in sorted(self.steps):
            self._flush(out, q, self.n_steps if live[q] else None)

    def _flush(self, out, q, until):
        """Depolarize q once per one-qubit gate and per idle protocol step since its last anchor."""
        k = len(self.pending.pop(q, ()))
        if until is not None and q in self.anchor_step:
            k += sum(1 for s in range(self.anchor_step[q] + 1, until) if s not in self.steps[q])
        if k:
            p = 0.75 * (1 - (1 - 4 * self.n.p / 3) ** k)
            out.append(stim.CircuitInstruction("DEPOLARIZE1", [q], [p], tag=f"uniform+{k}"))

    def prep(self, out, qs, op):
        self.first_prep.add(qs[0])
        out.append("Y_ERROR" if op.source[0][1] == "RH" else "X_ERROR", qs, [self.n.flip])

    def pulse(self, out, qs, op):
        q = qs[0]
        for step, gate in op.source:
            prep_again = gate in ("RX", "RH") and (q, step) in self.again
            if gate in ("RY_P4", "RY_M4") or prep_again:
                self.pending.setdefault(q, set()).add((step, gate))

    def two(self, out, qs, op):
        out.append("DEPOLARIZE2", qs, [self.n.gate2])

    def readout(self, name):
        return self.n.flip
class _CalibrationModel:
    def __init__(self, noise: CalibrationNoise) -> None:
        self.n = noise
        self.zz = bool(noise.device.zz_neighbours)
        self.names: tuple[str, ...] = ()

    def start(self, program):
        self.names = program.qubits

    def anchor(self, out, q, op, live):
        pass

    def finish(self, out, live):
        pass

    def idle(self, out, q, name, cycles, echo=False, live=()):
        # the neighbours live when the gap ends stand for those live through it
        names = self.names
        px, py, pz = self.n.idle(name, cycles, echo, frozenset(names[i] for i in live) if self.zz else frozenset())
        if px + py + pz > 0:
            out.append(stim.CircuitInstruction("PAULI_CHANNEL_1", [q], [px, py, pz], tag=f"idle+{cycles}"))

    def prep(self, out, qs, op):
        out.append("X_ERROR", qs, [self.n.reset_flip(op.qubits[0])])

    def pulse(self, out, qs, op):
        if op.name != "VZ":  # a frame change: no pulse, no error
            out.append("DEPOLARIZE1", qs, [self.n.pulse(op.qubits[0], op.angle)])

    def two(self, out, qs, op):
        out.append("DEPOLARIZE2", qs, [self.n.two_qubit(*op.qubits)])

    def readout(self, name):
        return self.n.readout_flip(name)
