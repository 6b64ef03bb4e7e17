"""The compiled (timed, native) program as a Stim circuit: Clifford proxy, detectors, ideal round.

Qubit i of the Stim circuit is protocol qubit i (its device qubit is `program.qubits[i]`), so the
compiled circuit and the protocol circuit are directly comparable. Operations appear in time order;
every native op is lowered to its Clifford image in the chosen proxy (`ctrl.sim.lower` explains the
proxies): pulses by their proxy angle, VZ by its angle, ECR(c, t) = H t, SQRT_ZZ_DAG c t, H t, X c.

The noise model gives a rule per operation (`ctrl.noise.rules`); where the rules go depends on which fault
locations the model describes:

- a `DeviceNoise` model (`CalibrationNoise`: the device) is asked about every native operation (each
  pulse, two-qubit gate, the reset at the start of an attempt, every readout) and about every gap in a live
  qubit's timeline, by its length (T1, T2*; T2E next to an echo pulse of dynamical decoupling,
  `ctrl.compile.dd`).
- a `ProtocolNoise` model (`UniformNoise`: the paper's model, which the paper defines on the protocol's
  circuit) is asked about the protocol's fault locations as they appear in the compiled program. A native
  op knows which protocol operations it realises (`NativeOp.source`: protocol step and gate). A two-qubit
  protocol gate's rule goes around its native two-qubit gate; a measurement's around its readout; an
  attempt's first preparation's after the reset (moved back before the pulse that completes an RX or RH).
  The rules of one-qubit protocol gates, and of protocol steps in which a live qubit idles, are merged
  into one depolarizing channel just before the qubit's next preparation, two-qubit gate or measurement,
  or at the end. A one-qubit depolarizing channel commutes with every one-qubit unitary, so its place
  among the fused pulses in between does not matter, not even in the exact (non-Clifford) form; other
  channels could not move, and are refused there. The compiled program under `uniform:P` is therefore the
  protocol circuit of `ctrl simulate` up to equivalence, on every device, whatever its timing. The
  device's timing and errors are what calibration noise is for.

Instruction tags carry the source gadget, the start cycle and the duration ("r0.X.F1@1234+56"); idle
channels their length in cycles ("idle+120"), merged protocol-level channels the number of locations
merged ("uniform+3": the name predates other protocol-level models, and tags are locked outputs).
"""

from __future__ import annotations

import math
from dataclasses import replace

import stim

from ctrl.codes.color import color_code
from ctrl.compile.dd import is_dd
from ctrl.compile.timed import TimedProgram
from ctrl.errors import CtrlError
from ctrl.noise.rules import NOISELESS, DeviceNoise, NoiseRule, ProtocolNoise, merge_depolarizing
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
    """`noise`: None, a model of the protocol's fault locations (`ProtocolNoise`, such as `UniformNoise`) or
    of the device's (`DeviceNoise`, such as `CalibrationNoise`); see the module docstring."""
    if proxy not in ("X", "Z"):
        raise CtrlError(f"unknown proxy {proxy!r}: the compiled program lowers to proxy X or Z")
    where = _locations(noise, program)
    index = {name: i for i, name in enumerate(program.qubits)}
    out = stim.Circuit()
    for i, name in enumerate(program.qubits):
        out.append("QUBIT_COORDS", [i], [float(i)])
    record: dict[str, int] = {}
    last_end: dict[int, int] = {}  # live qubit -> end of its latest op
    echoed: set[int] = set()  # qubits whose latest op is an echo pulse
    touched: set[int] = set()  # qubits that already did something this attempt
    n_meas = 0
    for t in program.ops:
        op = t.op
        qs = [index[q] for q in op.qubits]
        tag = f"{op.tag}@{t.start}+{t.duration}"
        dd = is_dd(op)
        if where is not None:
            for q, name in zip(qs, op.qubits):
                if q in last_end and last_end[q] < t.start:
                    where.idle(out, q, name, t.start - last_end[q], echo=dd or q in echoed, live=last_end)
                if op.name in _ANCHORS:
                    where.anchor(out, q, op, q in last_end)
        if op.name == "PREP":
            # In hardware a PREP does nothing: the qubit is already in |0> (it passed its measurement, or
            # an encoder fan-out cleared it), so whatever error it carries stays. Only the reset that
            # starts an attempt re-prepares.
            if qs[0] not in touched:
                rule = NOISELESS if where is None else where.reset(qs, op)
                rule.append_before(out, qs)
                out.append(stim.CircuitInstruction("R", qs, tag=tag))
                rule.append_after(out, qs)
        elif op.name in _QUARTER:
            angle = op.angle if op.name == "RX" else op.proxy[0 if proxy == "X" else 1]
            gate = _QUARTER[op.name][quarter_turns(angle)]
            rule = NOISELESS if where is None else where.gate(qs, op)
            rule.append_before(out, qs)
            if gate != "I" or where is not None:
                out.append(stim.CircuitInstruction(gate, qs, tag=tag))
            rule.append_after(out, qs)
        elif op.name in ("CZ", "ECR"):
            rule = NOISELESS if where is None else where.gate(qs, op)
            rule.append_before(out, qs)
            if op.name == "CZ":
                out.append(stim.CircuitInstruction("CZ", qs, tag=tag))
            else:
                c, tq = qs
                out.append(stim.CircuitInstruction("H", [tq], tag=tag))
                out.append(stim.CircuitInstruction("SQRT_ZZ_DAG", [c, tq], tag=tag))
                out.append(stim.CircuitInstruction("H", [tq], tag=tag))
                out.append(stim.CircuitInstruction("X", [c], tag=tag))
            rule.append_after(out, qs)
        elif op.name == "MEASURE":
            rule = NOISELESS if where is None else where.measure(op)
            rule.append_before(out, qs)
            out.append(stim.CircuitInstruction("M", qs, rule.measure_args, tag=tag))
            rule.append_after(out, qs)
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
    if where is not None:
        where.finish(out, {q: q in last_end for q in range(len(program.qubits))})
    # The detectors are the decision program's record: its checks in the order they are decided.
    rule = program.decisions
    for d in rule.points:
        for r in rule.rules_of(d):
            recs = [stim.target_rec(record[k] - n_meas) for k in r.keys]
            out.append(stim.CircuitInstruction("DETECTOR", recs, [], tag=r.name))
    if with_ideal_round:
        ideal_round(out, color_code(program.distance), proxy)
    return out


def _locations(noise, program: TimedProgram):
    """Where the model's rules go in the compiled program: None (no noise), at the protocol's fault
    locations or at the native operations."""
    if noise is None:
        return None
    if isinstance(noise, ProtocolNoise):
        return _AtProtocolLocations(noise, program)
    if isinstance(noise, DeviceNoise):
        noise.check_program(program)  # its numbers are one device file's: the program's own
        return _AtNativeOps(noise, program)
    raise CtrlError(f"unsupported noise model {noise!r}")


_ANCHORS = ("PREP", "CZ", "ECR", "MEASURE")
# A first PREP is the native reset to |0>; the basis change of RX (R_y(pi/2)) and RH (R_y(pi/4)) is a later
# pulse. A preparation's channels, stated on the prepared state, move back before that pulse: Y and
# depolarizing commute with R_y, X and Z trade places through R_y(pi/2).
_BEFORE_BASIS_CHANGE = {
    "R": {"X_ERROR": "X_ERROR", "Y_ERROR": "Y_ERROR", "Z_ERROR": "Z_ERROR", "DEPOLARIZE1": "DEPOLARIZE1"},
    "RX": {"X_ERROR": "Z_ERROR", "Y_ERROR": "Y_ERROR", "Z_ERROR": "X_ERROR", "DEPOLARIZE1": "DEPOLARIZE1"},
    "RH": {"Y_ERROR": "Y_ERROR", "DEPOLARIZE1": "DEPOLARIZE1"},
}


class _AtProtocolLocations:
    """A `ProtocolNoise` model at the protocol's fault locations (module docstring)."""

    def __init__(self, noise: ProtocolNoise, program: TimedProgram) -> None:
        self.n = noise
        index = {name: i for i, name in enumerate(program.qubits)}
        self.steps: dict[int, set[int]] = {}  # protocol steps in which each qubit does something
        last = 0
        for t in program.ops:
            if is_dd(t.op):
                continue  # an identity of the protocol: no fault location of the paper's model
            if not t.op.source:
                raise CtrlError(f"{t.op!r} does not say which protocol operation it realises: {noise.name} noise needs it")
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
        """Merge the rules of q's one-qubit protocol gates and idle protocol steps since its last anchor."""
        rules = [self.n.gate(gate) for _, gate in sorted(self.pending.pop(q, ()))]
        if until is not None and q in self.anchor_step:
            rules += [self.n.idle() for s in range(self.anchor_step[q] + 1, until) if s not in self.steps[q]]
        if rules:
            merge_depolarizing(rules, f"uniform+{len(rules)}").append_after(out, [q])

    def reset(self, qs, op) -> NoiseRule:
        self.first_prep.add(qs[0])
        gate = op.source[0][1]
        rule = self.n.prepare(gate)
        moved = _BEFORE_BASIS_CHANGE[gate]
        if any(c.name not in moved for c in rule.after):
            raise CtrlError(f"{self.n.name}: {rule!r} of {gate} cannot move before the pulse that completes it")
        return replace(rule, after=tuple(replace(c, name=moved[c.name]) for c in rule.after))

    def gate(self, qs, op) -> NoiseRule:
        if len(qs) == 2:
            return self.n.gate(op.source[0][1])
        q = qs[0]
        for step, gate in op.source:
            prep_again = gate in ("RX", "RH") and (q, step) in self.again
            if gate in ("RY_P4", "RY_M4") or prep_again:
                self.pending.setdefault(q, set()).add((step, gate))
        return NOISELESS

    def measure(self, op) -> NoiseRule:
        return self.n.measure(op.source[0][1])


class _AtNativeOps:
    """A `DeviceNoise` model at the native operations and the idle gaps between them."""

    def __init__(self, noise: DeviceNoise, program: TimedProgram) -> None:
        self.n = noise
        self.index = {name: i for i, name in enumerate(program.qubits)}

    def anchor(self, out, q, op, live):
        pass

    def finish(self, out, live):
        pass

    def idle(self, out, q, name, cycles, echo=False, live=()):
        # the neighbours live when the gap ends stand for those live through it
        self.n.native_idle(name, cycles, echo, _Live(self.index, live)).append_both(out, [q])

    def reset(self, qs, op) -> NoiseRule:
        return self.n.native_reset(op.qubits[0])

    def gate(self, qs, op) -> NoiseRule:
        return self.n.native_gate(op.name, op.qubits, op.angle)

    def measure(self, op) -> NoiseRule:
        return self.n.native_measure(op.qubits[0])


class _Live:
    """The device qubits holding state, looked up in the lowering's live set by name: no set is built per
    idle, as the model asks only about the idling qubit's static-ZZ neighbours (most devices have none)."""

    def __init__(self, index: dict[str, int], live) -> None:
        self.index, self.live = index, live

    def __contains__(self, name: str) -> bool:
        i = self.index.get(name)  # a neighbour the program does not use holds no state
        return i is not None and i in self.live
