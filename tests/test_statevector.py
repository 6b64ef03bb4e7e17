"""The exact state-vector check (ctrl.sim.statevector): the simulator against closed forms and Stim, the
ideal-round scoring, the exact single-fault (first-order) analysis and agreement with the Clifford proxies."""

import json
import math

import numpy as np
import pytest
import stim

from ctrl.cli import main
from ctrl.errors import CtrlError
from ctrl.noise.models import UniformNoise
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.sim import statevector as sv
from ctrl.codes.decode import logical_flip_table
from ctrl.sim.lower import IDEAL, to_stim
from ctrl.collect.run import collect
from ctrl.sim.report import protocol_task
from ctrl.sim.statevector.ideal import _apply_pauli
from ctrl.sim.statevector.sample import _FaultModel, _Pairs, _decided
from ctrl.sim.statevector.target import _program

C8, S8 = math.cos(math.pi / 8), math.sin(math.pi / 8)


@pytest.fixture(scope="module")
def circuit():
    return cn20_protocol(3)


@pytest.fixture(scope="module")
def singles(circuit):
    return sv.single_faults(circuit)


def _run(text, dtype=np.complex128, faults=None):
    program = sv.Program(stim.Circuit(text), dtype)
    return program, program.run(faults)


# ---- the simulator on hand-built circuits -----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.complex128, np.float64])
@pytest.mark.parametrize(
    "text, amplitudes",
    [
        ("H 0\nCX 0 1", [math.sqrt(0.5), 0, 0, math.sqrt(0.5)]),  # Bell pair, little-endian
        ("I[RY_P4] 0\nI 1", [C8, S8, 0, 0]),
        ("I[RY_M4] 0\nI 1", [C8, -S8, 0, 0]),
        ("I[RY_P4] 0\nCX 0 1", [C8, 0, 0, S8]),
        ("H 0\nI[RY_P4] 1\nCZ 0 1\nH 0", [C8, 0, 0, S8]),  # a CZ between two Hadamards is a CX
        ("X 1\nI[RY_P4] 1\nI[RY_P4] 1\nI 0", [-math.sqrt(0.5), 0, math.sqrt(0.5), 0]),  # R_y(pi/2)|1>
    ],
)
def test_closed_form_amplitudes(text, amplitudes, dtype):
    program, run = _run(text, dtype)
    (psi,) = run.branches
    assert np.allclose(program.amplitudes(psi), amplitudes, atol=1e-14)


@pytest.mark.parametrize("seed", range(6))
def test_clifford_circuits_match_stim(seed):
    rng = np.random.default_rng(seed)
    c = stim.Circuit()
    for _ in range(40):
        gate = str(rng.choice(["H", "X", "Z", "CX", "CZ"]))
        if gate in ("CX", "CZ"):
            c.append(gate, [int(x) for x in rng.choice(5, 2, replace=False)])
        else:
            c.append(gate, [int(rng.integers(5))])
    c.append("I", [4])
    sim = stim.TableauSimulator()
    sim.do(c)
    expected = sim.state_vector(endian="little")  # complex64: compare to its precision
    for dtype in (np.complex128, np.float64):
        program, run = _run(str(c), dtype)
        assert abs(abs(np.vdot(expected, program.amplitudes(run.branches[0]))) - 1) < 1e-6


def test_measurement_is_a_projection_onto_zero():
    _, run = _run("I[RY_P4] 0\nMX 0\nDETECTOR rec[-1]")
    # accepted with probability |<+|H>|^2 = (1 + sin(pi/4)) / 2
    accepted = sum(np.vdot(b.psi, b.psi).real for b in run.branches)
    assert accepted == pytest.approx((1 + math.sin(math.pi / 4)) / 2, abs=1e-14)
    assert run.losses[0] == pytest.approx((1 - math.sin(math.pi / 4)) / 2, abs=1e-14)
    # a flipped result on a deterministic check rejects the attempt
    program, run = _run("R 0\nM(0.1) 0\nDETECTOR rec[-1]", faults={0: "X"})
    assert program.locations[0].paulis == ("X",) and run.branches == [] and run.losses[0] == pytest.approx(1)


def test_reset_of_an_entangled_qubit_is_a_mixture():
    program, run = _run("H 0\nCX 0 1\nR 1\nI 1")
    rho = sum(np.outer(program.amplitudes(b), program.amplitudes(b).conj()) for b in run.branches)
    assert len(run.branches) == 2
    assert np.allclose(rho, np.diag([0.5, 0.5, 0, 0]), atol=1e-14)


def test_unsupported_input_is_refused():
    with pytest.raises(CtrlError, match="one measurement per DETECTOR"):
        sv.Program(stim.Circuit("M 0 1\nDETECTOR rec[-1] rec[-2]"))
    with pytest.raises(CtrlError, match="in no DETECTOR"):
        sv.Program(stim.Circuit("M 0"))
    with pytest.raises(CtrlError, match="does not support"):
        sv.Program(stim.Circuit("S 0"))


def test_distance_5_is_refused(circuit):
    with pytest.raises(CtrlError, match="distance 3 only"):
        sv.sample_exact(cn20_protocol(5), UniformNoise(1e-3), 10, 0)


# ---- the ideal round --------------------------------------------------------------------------------


def test_logical_h_state_is_the_transversal_hadamard_eigenstate(circuit):
    h = sv.logical_h_state(circuit.code)
    transversal = np.ones((1, 1))
    for _ in range(circuit.code.n):
        transversal = np.kron(transversal, np.array([[1, 1], [1, -1]]) / math.sqrt(2))
    assert np.allclose(transversal @ h, h, atol=1e-14)
    for f in circuit.code.faces:
        assert np.allclose(_apply_pauli(h, xs=f.qubits), h) and np.allclose(_apply_pauli(h, zs=f.qubits), h)


def test_corrections_agree_with_the_proxy_decoder(circuit):
    table = sv.minimum_weight_corrections(circuit.code)
    flips = logical_flip_table(3)
    for syndrome, qubits in table.items():
        assert len(qubits) <= 1
        assert int(flips[syndrome]) == len(set(qubits) & set(circuit.code.logical)) % 2


def test_score(circuit):
    code = circuit.code
    h = sv.logical_h_state(code)
    for q in range(code.n):  # every weight-1 error is corrected
        for xs, zs in (((q,), ()), ((), (q,)), ((q,), (q,))):
            assert sv.score(code, 0.5 * _apply_pauli(h, xs, zs)) == pytest.approx((0.25, 0.0), abs=1e-14)
    # logical X or Z turn |H> by pi/4 (fidelity 1/2); logical Y is orthogonal
    assert sv.score(code, _apply_pauli(h, xs=code.logical))[1] == pytest.approx(0.5)
    assert sv.score(code, _apply_pauli(h, zs=code.logical))[1] == pytest.approx(0.5)
    assert sv.score(code, _apply_pauli(h, xs=code.logical, zs=code.logical))[1] == pytest.approx(1.0)
    assert sv.score(code, _apply_pauli(h, xs=(0, 3)))[1] > 0.4  # weight 2: miscorrected


# ---- the protocol -------------------------------------------------------------------------------------


def test_noiseless_protocol_prepares_logical_h(circuit):
    program = _program(circuit, 1e-3)
    run = program.run()
    (psi,) = run.branches
    out = program.output(psi, circuit.data)
    h = sv.logical_h_state(circuit.code)
    assert abs(sum(run.losses)) < 1e-12
    assert np.vdot(out, out).real == pytest.approx(1, abs=1e-12)
    assert abs(np.vdot(h, out)) ** 2 > 1 - 1e-12
    outcome = sv.evaluate(circuit, {})
    assert outcome.acceptance == pytest.approx(1, abs=1e-12) and outcome.error < 1e-12


def test_real_and_complex_runs_agree(circuit):
    """float64 drops the global phase of Y faults; complex128 keeps it. The figures must not differ."""
    real = _program(circuit, 1e-3)
    cplx = sv.Program(to_stim(circuit, "exact", UniformNoise(1e-3)), np.complex128)
    rng = np.random.default_rng(5)
    for _ in range(4):
        locs = sorted(rng.choice(len(real.locations), 2, replace=False))
        faults = {int(l): "Y" * len(real.locations[l].qubits) for l in locs}
        results = []
        for program in (real, cplx):
            scores = [sv.score(circuit.code, program.output(b, circuit.data)) for b in program.run(faults).branches]
            results.append(np.sum(scores, axis=0) if scores else np.zeros(2))
        assert np.allclose(results[0], results[1], atol=1e-12)


def test_every_single_fault_is_harmless(circuit, singles):
    """The exact first-order term: no single fault of the real circuit (every location, every Pauli)
    leaves an accepted logical error after the ideal round. Fault distance >= 2 beyond the proxies."""
    program = _program(circuit, 1e-3)
    assert len(singles.pauli) == sum(len(loc.paulis) for loc in program.locations)
    bad = [
        sv.describe(circuit, singles.locations[singles.location[i]], singles.pauli[i])
        | {"acceptance": float(singles.acceptance[i]), "error": float(singles.error[i])}
        for i in singles.failures()
    ]
    assert not bad, "single faults that break the protocol:\n" + "\n".join(map(str, bad))
    assert singles.error.max() < 1e-12
    # not vacuous: single faults do get through, with correctable errors on the output
    assert (singles.acceptance > 0.999).sum() > 100


def test_single_fault_table_agrees_with_plain_runs(circuit, singles):
    """The table is built the fast way (the noiseless state continued op by op, and no run at all for a
    fault that is a stabilizer of the state where it happens), and `evaluate` starts from a noiseless
    checkpoint; each must give what a plain run of the whole circuit from |0...0> with that fault gives."""
    program = _program(circuit, 1e-3)
    noiseless = sv.evaluate(circuit, {})
    like_noiseless = np.flatnonzero((singles.acceptance == noiseless.acceptance) & (singles.error == noiseless.error))
    rng = np.random.default_rng(11)
    picked = np.concatenate([rng.choice(len(singles.pauli), 40, replace=False), rng.choice(like_noiseless, 20)])
    rejected = 0
    for c in picked:
        faults = {int(singles.location[c]): singles.pauli[c]}
        run = program.run(faults)
        scores = [sv.score(circuit.code, program.output(b, circuit.data)) for b in run.branches]
        acceptance, error = np.sum(scores, axis=0) if scores else (0.0, 0.0)
        assert singles.acceptance[c] == pytest.approx(acceptance, abs=1e-12)
        assert singles.error[c] == pytest.approx(error, abs=1e-12)
        assert np.allclose(singles.losses[c], run.losses, atol=1e-12)
        assert singles.rejected_at[c] == (len(program.ops) if run.branches else run.rejected_at)
        outcome = sv.evaluate(circuit, faults)
        assert outcome.acceptance == pytest.approx(acceptance, abs=1e-12)
        assert outcome.error == pytest.approx(error, abs=1e-12)
        assert np.allclose(outcome.losses, run.losses, atol=1e-12)
        rejected += not run.branches
    assert 0 < rejected < len(picked)  # both kinds of outcome were compared


def test_two_faults_can_break_it(circuit):
    """Negative control: two X faults on data qubits 0 and 1 after the last check are a weight-2 error,
    accepted and miscorrected."""
    program = _program(circuit, 1e-3)
    last = {}
    for loc in program.locations:
        if loc.instruction.startswith("DEPOLARIZE1") and loc.qubits[0] in (0, 1):
            last[loc.qubits[0]] = loc.index
    outcome = sv.evaluate(circuit, {last[0]: "X", last[1]: "X"})
    assert outcome.acceptance == pytest.approx(1, abs=1e-12)
    assert outcome.error > 0.4


def test_first_order_rejection_lies_between_the_proxies(circuit, singles):
    """Exact, no sampling: P(reject) = c p + O(p^2). The real circuit's c must lie between those of the
    two Clifford proxies (which detect the faults crossing R_y(pi/4) always or never, the real one with
    some probability in between)."""
    exact = sv.sample_exact(circuit, UniformNoise(1e-3), 20, 0)["exact"]["first_order_rejection_coefficient"]
    coefficients = []
    p = 1e-6
    for proxy in "XZ":
        c = to_stim(circuit, proxy, UniformNoise(p))
        tags = [i.tag for i in c.flattened() if i.name == "DETECTOR"]
        checks = {d for d, t in enumerate(tags) if t != IDEAL}
        dem = c.detector_error_model(decompose_errors=False, approximate_disjoint_errors=True)
        total = sum(
            e.args_copy()[0]
            for e in dem.flattened()
            if e.type == "error" and any(t.is_relative_detector_id() and t.val in checks for t in e.targets_copy())
        )
        coefficients.append(total / p)
    assert min(coefficients) < exact < max(coefficients)


def test_decided_pairs_really_are_decided(circuit, singles):
    """The sampler skips pairs whose first fault alone is rejected before the second: running them must
    give rejection with the first fault's losses. And the skipped share matches random pairs."""
    program = _program(circuit, 1e-3)
    model = _FaultModel.build(tuple(program.locations))
    q = np.array([loc.probability for loc in program.locations])
    n = np.array([len(loc.paulis) for loc in program.locations])
    pairs = _Pairs(singles, (q / (1 - q) / n)[singles.location])
    rng = np.random.default_rng(3)
    configs = [model.sample(rng, 2) for _ in range(3000)]
    decided = [f for f in configs if _decided(singles, f) is not None]
    share = len(decided) / len(configs)
    assert abs(share - (1 - pairs.undecided)) < 4 * math.sqrt(share * (1 - share) / len(configs))
    for f in decided[:6]:
        shortcut, ran = _decided(singles, f), sv.evaluate(circuit, f)
        assert ran.acceptance == 0 and np.allclose(ran.losses, shortcut.losses, atol=1e-14)
    for _ in range(20):
        assert _decided(singles, pairs.sample(rng)) is None


def test_fault_count_law_is_exact():
    locations = tuple(
        sv.Location(i, 0, 0, "", (0,), ("X",), p) for i, p in enumerate([0.1, 0.1, 0.2, 0.1, 0.2, 0.3])
    )
    model = _FaultModel.build(locations)
    probs = np.array([loc.probability for loc in locations])
    expected = np.zeros(len(locations) + 1)
    for mask in range(1 << len(locations)):
        bits = np.array([mask >> i & 1 for i in range(len(locations))])
        expected[bits.sum()] += np.prod(np.where(bits, probs, 1 - probs))
    assert np.allclose(model.k_distribution, expected, atol=1e-15)
    # given k = 2, location i is among the two with probability sum over pairs containing it
    rng = np.random.default_rng(0)
    counts = np.zeros(len(locations))
    for _ in range(4000):
        for loc in model.sample(rng, 2):
            counts[loc] += 1
    odds = probs / (1 - probs)
    pair = np.array([sum(odds[i] * odds[j] for j in range(len(odds)) if j != i) for i in range(len(odds))])
    assert np.allclose(counts / 4000, 2 * pair / pair.sum(), atol=0.04)


def test_exact_acceptance_agrees_with_the_proxies(circuit):
    exact = sv.sample_exact(circuit, UniformNoise(1e-3), 300, seed=1)
    proxies = collect([protocol_task(3, UniformNoise(1e-3), proxy) for proxy in "XZ"], max_shots=50_000, seed=1)
    accept = [t.accepted / t.shots for t in proxies]
    assert min(accept) - 0.01 < exact["acceptance"] < max(accept) + 0.01
    assert abs(exact["acceptance"] - accept[0]) < 0.03
    lo, hi = exact["acceptance_ci95"]
    assert lo <= exact["acceptance"] <= hi and hi - lo < 0.02
    assert sum(exact["discards"].values()) == pytest.approx((1 - exact["acceptance"]) * exact["shots"], abs=0.05)


def test_sampling_is_deterministic(circuit):
    a = sv.sample_exact(circuit, UniformNoise(1e-3), 40, seed=7, workers=1)
    b = sv.sample_exact(circuit, UniformNoise(1e-3), 40, seed=7, workers=2)
    c = sv.sample_exact(circuit, UniformNoise(1e-3), 40, seed=8, workers=1)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["exact"]["strata"] != c["exact"]["strata"]


def test_cli_statevector(capsys):
    argv = ["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "30", "--method", "statevector", "--json"]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("shots", "accepted", "acceptance", "acceptance_ci95", "logical_errors", "logical_error_rate",
                "logical_error_rate_ci95", "discards", "first_order_coefficient"):
        assert key in r
    assert r["method"] == "statevector" and r["shots"] == 30
    # Acceptance does not depend on the non-Clifford angles: the Clifford proxy's error model gives it too.
    from ctrl.sim.faults import leading_order

    dem_acceptance, _ = leading_order(to_stim(cn20_protocol(3), "X", UniformNoise(1e-3)), "X", 3, 3)
    assert r["acceptance"] == pytest.approx(dem_acceptance, abs=0.01)
    assert r["exact"]["single_fault_failures"] == []
