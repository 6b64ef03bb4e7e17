"""One noise model, rules per operation, read by both Stim lowerings (`ctrl.noise.rules`)."""

from dataclasses import dataclass

import pytest

from ctrl.backends.stim import timed_to_stim
from ctrl.compile.pipeline import compile_program
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.errors import CtrlError
from ctrl.noise.calibration import CalibrationNoise
from ctrl.noise.models import UniformNoise
from ctrl.noise.rules import NOISELESS, Channel, NoiseRule, merge_depolarizing
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.sim.lower import to_stim

NOISE = {"X_ERROR", "Y_ERROR", "Z_ERROR", "DEPOLARIZE1", "DEPOLARIZE2", "PAULI_CHANNEL_1", "PAULI_CHANNEL_2"}
TWO_QUBIT = ("CX", "CZ")


@pytest.fixture(scope="module")
def compiled():
    device = load_device(DEFAULT_DEVICE)
    c = compile_program(device, 3)
    return device, c.program, cn20_protocol(3, c.placement.layout)


@dataclass(frozen=True)
class Marked:
    """A protocol-level model whose every rule is recognisable by its tag or its numbers."""

    name = "marked"

    def prepare(self, gate):
        return NoiseRule(after=(Channel("Y_ERROR", (0.0125,), f"prep-{gate}"),))

    def gate(self, gate):
        if gate in TWO_QUBIT:
            return NoiseRule(before=(Channel("X_ERROR", (0.0375,), "before-2q"),), after=(Channel("DEPOLARIZE2", (0.0625,)),))
        return NoiseRule(after=(Channel("DEPOLARIZE1", (0.0025,)),))

    def measure(self, gate):
        return NoiseRule(flip_result=0.0875)

    def idle(self):
        return NoiseRule(after=(Channel("DEPOLARIZE1", (0.0025,)),))


def _instructions(circuit):
    return list(circuit.flattened())


def _count(circuit, name, args=None, tag=None):
    return sum(
        len(i.targets_copy())
        for i in _instructions(circuit)
        if i.name == name and (args is None or i.gate_args_copy() == args) and (tag is None or i.tag == tag)
    )


def test_a_models_rules_reach_both_lowerings(compiled):
    """Every rule of one custom model lands in the protocol circuit and in the compiled program alike:
    the two-qubit gates' channels before and after them, the flipped readouts, the resets' flips."""
    _, program, protocol = compiled
    model = Marked()
    a = to_stim(protocol, "X", model)
    b = timed_to_stim(program, "X", model)
    n_two = sum(len(op.targets) // 2 for _, ops in protocol.steps() for op in ops if op.name in TWO_QUBIT)
    n_meas = len(protocol.record)
    first = {}
    for _, ops in protocol.steps():
        for op in ops:
            if op.name in ("R", "RX", "RH"):
                first.setdefault(op.targets[0], op.name)
    for circuit in (a, b):
        assert _count(circuit, "X_ERROR", [0.0375], "before-2q") == 2 * n_two
        assert _count(circuit, "DEPOLARIZE2", [0.0625]) == 2 * n_two
        assert _count(circuit, "M", [0.0875]) == n_meas
        assert _count(circuit, "M") == n_meas  # every readout flips
        for gate in ("R", "RX", "RH"):
            assert _count(circuit, "Y_ERROR", [0.0125], f"prep-{gate}") == list(first.values()).count(gate)
    # in both, the before-channel is on the targets of the two-qubit gate that comes next (an ECR is
    # lowered as H t, SQRT_ZZ_DAG c t, H t, X c)
    for circuit in (a, b):
        ins = _instructions(circuit)
        marks = [i for i, inst in enumerate(ins) if inst.tag == "before-2q"]
        assert marks
        for i in marks:
            j = i + 1
            while ins[j].name == "H":
                j += 1
            assert ins[j].name in ("CX", "CZ", "SQRT_ZZ_DAG")
            assert ins[j].targets_copy() == ins[i].targets_copy()


def test_a_device_model_reaches_only_the_compiled_program(compiled):
    device, program, protocol = compiled
    noise = CalibrationNoise(device, program.clock_hz)
    with pytest.raises(CtrlError, match="compiled program"):
        to_stim(protocol, "X", noise)
    circuit = timed_to_stim(program, "X", noise)
    readouts = [i for i in _instructions(circuit) if i.name == "M"]
    # each readout's flip is the model's rule for that device qubit
    for inst in readouts:
        (q,) = [t.value for t in inst.targets_copy()]
        assert inst.gate_args_copy() == noise.native_measure(program.qubits[q]).measure_args


def test_a_preparation_flip_moves_back_before_the_pulse_that_completes_it(compiled):
    """In the compiled program the reset comes before the RX / RH pulse: a Z flip of |+> is an X flip of
    |0> there, a Y flip stays Y, and a flip that does not commute with R_y(pi/4) cannot move."""
    _, program, _ = compiled

    @dataclass(frozen=True)
    class PlusFlips(Marked):
        def prepare(self, gate):
            return NoiseRule(after=(Channel("Z_ERROR" if gate == "RX" else "Y_ERROR", (0.0125,), gate),))

    circuit = timed_to_stim(program, "X", PlusFlips())
    first = {}  # the reset that starts the attempt: each qubit's first op
    for t in program.ops:
        for q in t.op.qubits:
            first.setdefault(q, t.op)
    n_rx = sum(1 for op in first.values() if op.name == "PREP" and op.source[0][1] == "RX")
    assert n_rx and _count(circuit, "X_ERROR", [0.0125], "RX") == n_rx
    assert _count(circuit, "Z_ERROR", [0.0125]) == 0

    @dataclass(frozen=True)
    class HFlipsX(Marked):
        def prepare(self, gate):
            return NoiseRule(after=(Channel("X_ERROR", (0.0125,)),))

    with pytest.raises(CtrlError, match="RH"):
        timed_to_stim(program, "X", HFlipsX())


def test_uniform_zero_has_no_channels(compiled):
    _, program, protocol = compiled
    for rule in (UniformNoise(0.0).prepare("RH"), UniformNoise(0.0).gate("CX"), UniformNoise(0.0).idle()):
        assert rule == NOISELESS
    assert to_stim(protocol, "X", UniformNoise(0.0)) == to_stim(protocol, "X")
    assert not [i for i in _instructions(timed_to_stim(program, "X", UniformNoise(0.0))) if i.name in NOISE]
    assert UniformNoise(0.0).measure("M").measure_args == []


def test_merged_depolarizing_is_the_composition():
    # two depolarizing channels in turn leave a non-identity Pauli when exactly one acts, or both act
    # with different Paulis (2 of the 3 pairs)
    p1, p2 = 0.01, 0.03
    one = lambda p: NoiseRule(after=(Channel("DEPOLARIZE1", (p,)),))  # noqa: E731
    merged = merge_depolarizing([one(p1), one(p2)], "m")
    (channel,) = merged.after
    assert channel.name == "DEPOLARIZE1" and channel.tag == "m"
    assert channel.args[0] == pytest.approx(p1 * (1 - p2) + p2 * (1 - p1) + p1 * p2 * 2 / 3, rel=1e-12)
    assert merge_depolarizing([], "m") == NOISELESS
    with pytest.raises(CtrlError, match="depolarizing"):
        merge_depolarizing([NoiseRule(after=(Channel("X_ERROR", (p1,)),))], "m")
