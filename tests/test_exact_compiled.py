"""The exact d=3 check on the compiled program (ctrl.emulate.exact): every pulse at its real angle, the
device's timing and noise channels, run as a state vector; and the simulator features it needs
(ctrl.sim.statevector: rotations by any angle, SQRT_ZZ_DAG, PAULI_CHANNEL_1, fused gates)."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import stim

from ctrl.backends.stim import timed_to_stim
from ctrl.compile.pipeline import compile_program
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.emulate.exact import exact_circuit, exact_compiled, exact_target, fidelity
from ctrl.errors import CtrlError
from ctrl.noise.calibration import CalibrationNoise
from ctrl.noise.models import UniformNoise
from ctrl.sim import statevector as sv
from ctrl.sim.statevector.sample import _FaultModel
from ctrl.sim.statevector.target import _describe

NOISE = {"X_ERROR", "DEPOLARIZE1", "DEPOLARIZE2", "PAULI_CHANNEL_1"}


@pytest.fixture(scope="module")
def default():
    dev = load_device(DEFAULT_DEVICE)
    return dev, compile_program(dev, 3).program


@pytest.fixture(scope="module")
def uniform(default):
    return exact_target(default[1], UniformNoise(1e-3))


@pytest.fixture(scope="module")
def calibrated(default):
    """The device's own noise has a location at every native pulse and every idle gap, more than the
    paper's model at the protocol's locations: the single-fault check runs on it."""
    dev, program = default
    return exact_target(program, CalibrationNoise(dev, program.clock_hz))


@pytest.fixture(scope="module")
def singles(calibrated):
    return sv.single_faults(calibrated)


def _state(text: str, fuse: bool = False, faults=None) -> np.ndarray:
    program = sv.Program(stim.Circuit(text), np.complex128, fuse=fuse)
    (branch,) = program.run(faults).branches
    return program.amplitudes(branch)


def _same_up_to_phase(a, b) -> bool:
    return abs(abs(np.vdot(a, b)) - 1) < 1e-12 and np.isclose(np.vdot(a, a).real, np.vdot(b, b).real, atol=1e-12)


# ---- the simulator's new instructions ---------------------------------------------------------------


@pytest.mark.parametrize("fuse", [False, True])
def test_rotations_by_any_angle(fuse):
    c, s = math.cos(0.15), math.sin(0.15)
    assert np.allclose(_state("I[RY:0.3] 0", fuse), [c, s], atol=1e-14)
    assert np.allclose(_state("I[RX:0.3;some note] 0", fuse), [c, -1j * s], atol=1e-14)
    # RZ up to its global phase: H RZ H = RX
    assert _same_up_to_phase(_state("H 0\nI[RZ:0.3] 0\nH 0", fuse), [c, -1j * s])
    # the protocol's tags and the new ones are the same rotation
    assert _same_up_to_phase(_state(f"I[RY:{math.pi / 4!r}] 0", fuse), _state("I[RY_P4] 0", fuse))


@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("gate", ["SQRT_ZZ_DAG", "SQRT_ZZ"])
def test_sqrt_zz_matches_stim(gate, fuse):
    text = f"H 0 1 2\nX 2\n{gate} 0 2\nH 2\nY 1\n{gate} 2 1\nH 0\nY 0\nCX 0 1"
    sim = stim.TableauSimulator()
    sim.do(stim.Circuit(text))
    assert abs(abs(np.vdot(sim.state_vector(endian="little"), _state(text, fuse))) - 1) < 1e-6  # complex64


def test_complex_gates_are_refused_in_float64():
    for text in ("I[RX:0.3] 0", "I[RZ:0.3] 0", "SQRT_ZZ_DAG 0 1"):
        with pytest.raises(CtrlError, match="complex"):
            sv.Program(stim.Circuit(text), np.float64)
    with pytest.raises(CtrlError, match="complex128"):
        sv.Program(stim.Circuit("H 0"), np.float64, fuse=True)


def test_pauli_channel_1_is_one_weighted_location():
    program = sv.Program(stim.Circuit("PAULI_CHANNEL_1(0.1, 0, 0.3) 0\nM 0\nDETECTOR rec[-1]"))
    (loc,) = program.locations
    assert loc.paulis == ("X", "Y", "Z") and loc.probability == pytest.approx(0.4)
    assert loc.weights == pytest.approx((0.25, 0.0, 0.75))
    model = _FaultModel.build(tuple(program.locations))
    rng = np.random.default_rng(0)
    drawn = [model.sample(rng, 1)[0] for _ in range(4000)]
    assert "Y" not in drawn
    assert abs(drawn.count("X") / 4000 - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 4000)


@pytest.mark.parametrize("seed", range(4))
def test_fused_runs_agree_with_gate_by_gate(seed):
    """Random circuits over every kernel the fusion picks (embedded, controlled, dense, one-qubit, and
    one-qubit gates on inactive qubits), with faults in the middle."""
    rng = np.random.default_rng(seed)
    n = 6 if seed % 2 else 13
    c = stim.Circuit()
    for _ in range(120):
        kind = rng.choice(["1q", "rot", "2q", "ecr", "noise"])
        q = int(rng.integers(n))
        if kind == "1q":
            c.append(str(rng.choice(["H", "X", "Y", "Z"])), [q])
        elif kind == "rot":
            c.append(stim.CircuitInstruction("I", [q], tag=f"{rng.choice(['RX', 'RY', 'RZ'])}:{rng.normal()!r}"))
        elif kind == "2q":
            c.append(str(rng.choice(["CX", "CZ", "SQRT_ZZ", "SQRT_ZZ_DAG"])), [int(x) for x in rng.choice(n, 2, False)])
        elif kind == "ecr":
            a, b = (int(x) for x in rng.choice(n, 2, replace=False))
            c.append("H", [b])
            c.append("SQRT_ZZ_DAG", [a, b])
            c.append("H", [b])
            c.append("X", [a])
        else:
            c.append("DEPOLARIZE1", [q], [0.01])
    plain, fused = sv.Program(c), sv.Program(c, fuse=True)
    assert len(fused.ops) < len(plain.ops)
    faults = {int(loc): str(rng.choice(list("XYZ"))) for loc in rng.choice(len(plain.locations), 3, replace=False)}
    for f in ({}, faults):
        a, b = (p.amplitudes(p.run(f).branches[0]) for p in (plain, fused))
        assert _same_up_to_phase(a, b)


# ---- the exact form of the compiled program ---------------------------------------------------------


def test_exact_lowering_keeps_every_rotation_and_the_proxies_noise(default):
    dev, program = default
    rotations = [t.op for t in program.ops if t.op.name in ("RX", "RY", "VZ")]
    tags = [i.tag for i in exact_circuit(program) if i.name == "I" for _ in i.targets_copy()]
    assert len(tags) == len(rotations) > 200
    for tag, op in zip(tags, rotations):
        axis, rest = tag.split(":", 1)
        assert axis == {"RX": "RX", "RY": "RY", "VZ": "RZ"}[op.name]
        assert float(rest.split(";")[0]) == op.angle and rest.split(";")[1].startswith(op.tag + "@")
    assert any(abs(math.remainder(op.angle, math.pi / 2)) > 0.1 for op in rotations)  # not all Clifford

    def skeleton(circuit, names):
        return [(i.name, i.gate_args_copy(), i.targets_copy(), i.tag) for i in circuit if i.name in names]

    for noise in (UniformNoise(1e-3), CalibrationNoise(dev, program.clock_hz)):
        exact, proxy = exact_circuit(program, noise), timed_to_stim(program, "X", noise, with_ideal_round=False)
        assert skeleton(exact, NOISE | {"M", "R", "DETECTOR"}) == skeleton(proxy, NOISE | {"M", "R", "DETECTOR"})
        assert [i for i in exact if i.name == "SQRT_ZZ_DAG"] == [i for i in proxy if i.name == "SQRT_ZZ_DAG"]
    assert not any(i.name in NOISE for i in exact_circuit(program))


def test_noiseless_compiled_program_prepares_logical_h(default):
    _, program = default
    acceptance, fid = fidelity(program)
    assert acceptance == pytest.approx(1, abs=1e-9)
    assert fid > 1 - 1e-9

    def off(i: int):
        ops = list(program.ops)
        ops[i] = replace(ops[i], op=replace(ops[i].op, angle=ops[i].op.angle + 0.05))
        return fidelity(replace(program, ops=tuple(ops)))

    # the injection pulse a little off: the logical Hadamard checks catch it (acceptance drops, the
    # accepted state is still |H>_L); the last rotation on a data qubit a little off: nothing does
    non_clifford = [i for i, t in enumerate(program.ops) if abs(math.remainder(t.op.angle, math.pi / 2)) > 0.1]
    (inject,) = [i for i in non_clifford if program.ops[i].op.name == "RY"]
    acceptance, fid = off(inject)
    assert acceptance < 1 - 1e-4 and fid > 1 - 1e-9
    last = max(i for i, t in enumerate(program.ops) if t.op.name in ("RX", "RY", "VZ") and t.op.qubits == (program.qubits[0],))
    assert off(last)[1] < 1 - 1e-4


def test_a_decoupled_program_lowers_exactly_and_still_prepares_logical_h():
    """With echo pulses (--dd xy4) the exact lowering keeps them as the Clifford pulses they are (it used
    to retag them and lose what they were: uniform noise then refused them)."""
    dev = load_device(DEFAULT_DEVICE)
    program = compile_program(dev, 3, dd="xy4").program
    echoes = sum(t.op.tag == "dd" for t in program.ops)
    assert echoes > 0
    for noise in (None, UniformNoise(1e-3), CalibrationNoise(dev, program.clock_hz)):
        circuit = exact_circuit(program, noise)
        assert sum(len(i.targets_copy()) for i in circuit if i.name == "I" and i.tag[:3] in ("RX:", "RY:", "RZ:")) == sum(
            t.op.name in ("RX", "RY", "VZ") and t.op.tag != "dd" for t in program.ops)
    acceptance, fid = fidelity(program)
    assert acceptance == pytest.approx(1, abs=1e-9) and fid > 1 - 1e-9


def test_calibration_idles_are_weighted_locations(default):
    dev, program = default
    noise = CalibrationNoise(dev, program.clock_hz)
    target = exact_target(program, noise)
    assert target.p is None
    idles = [loc for loc in target.program.locations if loc.instruction.startswith("PAULI_CHANNEL_1")]
    assert len(idles) > 100
    for loc in idles[:: max(1, len(idles) // 10)]:
        cycles = int(loc.context.split()[0].removeprefix("idle+"))
        px, py, pz = noise.idle(program.qubits[loc.qubits[0]], cycles)
        assert loc.probability == pytest.approx(px + py + pz)
        assert loc.weights == pytest.approx((px / (px + py + pz), py / (px + py + pz), pz / (px + py + pz)))


def test_distance_5_is_refused(default):
    with pytest.raises(CtrlError, match="distance 3 only"):
        exact_target(replace(default[1], distance=5))


def test_fused_and_gate_by_gate_agree_on_the_compiled_program(default, uniform):
    _, program = default
    plain = sv.Target(
        sv.Program(exact_circuit(program, UniformNoise(1e-3)), np.complex128), uniform.code, uniform.data, uniform.kinds
    )
    assert plain.key != uniform.key
    rng = np.random.default_rng(2)
    locations = uniform.program.locations
    for _ in range(4):
        faults = {int(loc): "".join(rng.choice(list("XYZ"), len(locations[loc].qubits))) for loc in rng.choice(len(locations), 2)}
        a, b = sv.evaluate(plain, faults), sv.evaluate(uniform, faults)
        assert a.acceptance == pytest.approx(b.acceptance, abs=1e-12)
        assert a.error == pytest.approx(b.error, abs=1e-12)
        assert np.allclose(a.losses, b.losses, atol=1e-12)


# ---- faults -------------------------------------------------------------------------------------------


def test_every_single_fault_of_the_compiled_program_is_harmless(default, calibrated, singles):
    """Fault distance >= 2 of the real compiled circuit: no single fault (every location, every Pauli) is
    accepted with a logical error after the ideal round."""
    pulses = sum(t.op.name in ("RX", "RY") for t in default[1].ops)
    assert len(singles.pauli) == sum(len(loc.paulis) for loc in calibrated.program.locations)
    assert len(calibrated.program.locations) > pulses  # every pulse is a location, and more
    bad = [
        _describe(calibrated, singles.locations[singles.location[i]], singles.pauli[i])
        | {"acceptance": float(singles.acceptance[i]), "error": float(singles.error[i])}
        for i in singles.failures()
    ]
    assert not bad, "single faults that break the compiled program:\n" + "\n".join(map(str, bad))
    # not vacuous: single faults get through (with correctable errors) and others are caught
    assert (singles.acceptance > 0.999).sum() > 100
    assert (singles.acceptance < 1e-12).sum() > 100


def test_two_faults_after_the_last_check_break_it(uniform):
    """Negative control: X on data qubits 0 and 1 after everything else is a weight-2 error, accepted and
    miscorrected."""
    last = {}
    for loc in uniform.program.locations:
        if len(loc.qubits) == 1 and loc.qubits[0] in (0, 1) and "X" in loc.paulis:
            last[loc.qubits[0]] = loc.index
    outcome = sv.evaluate(uniform, {last[0]: "X", last[1]: "X"})
    assert outcome.acceptance == pytest.approx(1, abs=1e-12)
    assert outcome.error > 0.4


def test_exact_acceptance_agrees_with_the_proxies(default, singles):
    """At uniform:0.001 both are well measured. Faults that cross a non-Clifford rotation are always
    caught by one proxy and never by the other, so the real acceptance lies between the proxies'."""
    dev, program = default
    r = exact_compiled(dev, program, "uniform:0.001", runs=200, seed=1, proxy_shots=200_000)
    exact, proxy = r["exact"], r["proxy"]
    assert exact["exact"]["single_fault_failures"] == []
    lo, hi = exact["acceptance_ci95"]
    assert lo <= exact["acceptance"] <= hi and hi - lo < 0.01
    by_proxy = proxy["acceptance_by_proxy"]
    assert by_proxy["X"] == proxy["acceptance"]
    slack = 3 * math.sqrt(((hi - lo) / 3.92) ** 2 + 0.25 / proxy["shots"])
    assert min(by_proxy.values()) - slack < exact["acceptance"] < max(by_proxy.values()) + slack
    assert abs(exact["acceptance"] - proxy["acceptance"]) < 0.02
    assert sum(exact["discards"].values()) == pytest.approx((1 - exact["acceptance"]) * exact["shots"], abs=0.05)
    assert exact["first_order_coefficient"] < 1e-12  # the single faults: no logical error at first order
    assert r["factor"] == pytest.approx(proxy["logical_error_rate"] / exact["logical_error_rate"])


def test_exact_compiled_is_deterministic(default, singles):
    dev, program = default
    a, b, c = (exact_compiled(dev, program, "uniform:0.003", runs=40, seed=s, proxy_shots=20_000) for s in (7, 7, 8))
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    # another seed samples other fault configurations: the discard shares (probabilities, not 0/1
    # outcomes, so two small samples cannot coincide by chance as the per-stratum acceptances can)
    assert a["exact"]["discards"] != c["exact"]["discards"]
