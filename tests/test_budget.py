"""The error budget (ctrl.emulate.budget): baseline, per-source shares and break-even scale, each checked
against a computation that does not go through the budget's own code."""

import json
import math
import re

import numpy as np
import pytest
import yaml

from ctrl.backends.stim import timed_to_stim
from ctrl.cli import main
from ctrl.codes.color import color_code
from ctrl.compile.pipeline import compile_program
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.emulate.budget import SourceNoise, baseline, budget, logical_error
from ctrl.noise.calibration import CalibrationNoise
from ctrl.sim.faults import faults, leading_order, mechanisms
from ctrl.sim.lower import IDEAL

N_FACES = len(color_code(3).faces)


@pytest.fixture(scope="module")
def default():
    dev = load_device(DEFAULT_DEVICE)
    program = compile_program(dev, 3).program
    return dev, program, budget(dev, program)


def test_mechanisms_are_the_fault_models_and_the_logical_error_its_leading_order(default):
    # the budget matches mechanisms across noise settings by their symptom, which must say what the fault does
    dev, program, b = default
    total = 0.0
    for proxy in "XZ":
        circuit = timed_to_stim(program, proxy, CalibrationNoise(dev, program.clock_hz))
        found = mechanisms(circuit, proxy, N_FACES)
        assert [f for _, f in found] == faults(circuit, proxy, N_FACES)
        assert all((sum(kind == "L" for kind, _ in key) % 2 == 1) == f.flip for key, f in found)
        assert all((f.checks != 0) <= any(kind == "D" for kind, _ in key) for key, f in found)
        acc, p_l = leading_order(circuit, proxy, 3, N_FACES)
        total += p_l
        if proxy == "X":
            assert b["protocol"]["acceptance_leading_order"] == pytest.approx(acc, rel=1e-12)
    assert b["protocol"]["logical_error_leading_order"] == pytest.approx(total, rel=1e-12)
    assert logical_error(dev, program, 1.0) == pytest.approx(total, rel=1e-12)


def test_sources_with_every_one_on_are_the_calibration_noise(default):
    # SourceNoise with all sources on must lower to exactly the calibration circuit
    dev, program, b = default
    every = frozenset(b["sources"])
    for proxy in "XZ":
        want = timed_to_stim(program, proxy, CalibrationNoise(dev, program.clock_hz))
        assert timed_to_stim(program, proxy, SourceNoise(dev, program.clock_hz, 1.0, every)) == want
        assert timed_to_stim(program, proxy, SourceNoise(dev, program.clock_hz)) == want


def test_source_discards_add_up_to_the_first_order_discard(default):
    dev, program, b = default
    assert set(b["sources"]) == {"two_qubit:ecr", "pulse", "idle", "readout", "reset"}
    # the all-sources first-order discard, straight from ctrl.sim.faults
    circuit = timed_to_stim(program, "X", CalibrationNoise(dev, program.clock_hz))
    first = sum(f.p for f in faults(circuit, "X", N_FACES) if f.checks)
    assert b["protocol"]["discard_first_order"] == pytest.approx(first, rel=1e-12)
    # adding per-source probabilities vs composing them in one DEM: equal to first order only (a 2-3 %
    # effect per merged mechanism at these rates, far less on the sum)
    parts = sum(r["discard_first_order"] for r in b["sources"].values())
    assert parts == pytest.approx(first, rel=1e-2)
    assert sum(r["discard_share"] for r in b["sources"].values()) == pytest.approx(1, rel=1e-2)


def test_logical_shares_add_up_to_the_leading_order(default):
    # the Euler split gives every failing set's weight out in full, so the shares sum exactly
    _, _, b = default
    assert sum(r["logical_error"] for r in b["sources"].values()) == pytest.approx(
        b["protocol"]["logical_error_leading_order"], rel=1e-9)
    assert all(r["logical_error"] >= 0 and r["discard_first_order"] >= 0 for r in b["sources"].values())


@pytest.mark.parametrize("source", ["readout", "pulse", "reset"])
def test_one_source_discard_is_what_stim_samples(default, source):
    """With one source alone, discard ~ 1 - exp(-first-order sum); sampled directly from that circuit."""
    dev, program, b = default
    circuit = timed_to_stim(program, "X", SourceNoise(dev, program.clock_hz, 1.0, frozenset({source})))
    tags = [i.tag for i in circuit.flattened() if i.name == "DETECTOR"]
    shots = 20_000
    det = circuit.compile_detector_sampler(seed=11).sample(shots)
    sampled = det[:, [t != IDEAL for t in tags]].any(axis=1).mean()
    predicted = 1 - math.exp(-b["sources"][source]["discard_first_order"])
    sigma = math.sqrt(predicted * (1 - predicted) / shots)
    # 5 sigma of sampling, plus a 2 % relative allowance for what first order leaves out (two faults
    # whose checks cancel, the Poisson form of a product of (1 - p))
    assert abs(sampled - predicted) < 5 * sigma + 0.02 * predicted, (source, sampled, predicted)


def test_baseline_is_the_best_qubit_of_the_device_file(default):
    dev, _, b = default
    # from the YAML, not through Target: error_1to0 + x90 error - twice their product, usable qubits only
    doc = yaml.safe_load(DEFAULT_DEVICE.read_text())
    errors = {}
    for q in doc["calibration"]["qubits"]:
        if q.get("usable", True) is False:
            continue
        p_r, r = q["readout"]["error_1to0"], q["x90"]["error"]
        errors[q["name"]] = p_r + r - 2 * p_r * r
    best = min(errors, key=errors.get)
    assert b["baseline"]["qubit"] == best
    assert b["baseline"]["state_error"] == pytest.approx(errors[best], rel=1e-12)


def test_baseline_formula_is_the_density_matrix_infidelity(default):
    # reset leaves |1> with p_r, RY(pi/4), depolarizing p = 3r/2: compute 1 - <H|rho|H> with matrices
    dev, _, b = default
    q = dev.target.qubit(b["baseline"]["qubit"])
    p_r, p = q.readout_error_1to0, 1.5 * q.x90_error
    c, s = math.cos(math.pi / 8), math.sin(math.pi / 8)
    ry = np.array([[c, -s], [s, c]])
    rho = ry @ np.diag([1 - p_r, p_r]) @ ry.T
    paulis = [np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1, -1])]
    rho = (1 - p) * rho + p / 3 * sum(P @ rho @ P.conj().T for P in paulis)
    h = ry @ np.array([1, 0])
    assert b["baseline"]["state_error"] == pytest.approx(1 - (h @ rho @ h).real, rel=1e-9)


def test_break_even_scale_is_where_the_two_cross(default):
    dev, program, b = default
    s = b["break_even_scale"]
    assert s is not None and 1e-3 <= s <= 1
    assert logical_error(dev, program, s) == pytest.approx(baseline(dev, s)["state_error"], rel=1e-6)
    # protocol worse above (the device as calibrated, here), better below
    assert not b["protocol_beats_baseline"]
    assert logical_error(dev, program, s / 2) < baseline(dev, s / 2)["state_error"]


def test_ten_times_worse_two_qubit_gates_raise_their_share(default, tmp_path):
    dev, _, b = default
    text = DEFAULT_DEVICE.read_text()
    head, couplers = text.split("\n  couplers:\n", 1)
    couplers, n = re.subn(r"(^      error: )([0-9.e+-]+)", lambda m: f"{m[1]}{float(m[2]) * 10:.4g}", couplers, flags=re.M)
    assert n > 10
    (tmp_path / "firmware").symlink_to(DEFAULT_DEVICE.parent / "firmware")
    path = tmp_path / "worse.yaml"
    path.write_text(head + "\n  couplers:\n" + couplers)
    worse = load_device(path)
    program = compile_program(worse, 3).program
    w = budget(worse, program)
    for key in ("discard_share", "logical_share"):
        assert w["sources"]["two_qubit:ecr"][key] > b["sources"]["two_qubit:ecr"][key], key
    assert w["baseline"] == b["baseline"]  # no two-qubit gate in the physical baseline


def test_budget_is_strict_json_and_dry_run_writes_it(default, tmp_path, capsys):
    dev, program, b = default
    assert json.loads(json.dumps(b, allow_nan=False)) == b
    assert main(["dry-run", "--shots", "2000", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "error budget" in out and "two_qubit:ecr" in out
    assert "error budget" not in (tmp_path / "summary.txt").read_text()  # stdout only: summary.txt is locked
    assert json.loads((tmp_path / "budget.json").read_text()) == b


def test_a_cz_device_has_its_own_family(tmp_path):
    dev = load_device(DEFAULT_DEVICE.parent / "grid25_cz.yaml")
    b = budget(dev, compile_program(dev, 3).program)
    assert "two_qubit:cz" in b["sources"] and "two_qubit:ecr" not in b["sources"]
    assert json.loads(json.dumps(b, allow_nan=False)) == b


def test_the_budget_says_when_leading_order_is_rough(default):
    # as calibrated, ~2.7 check-firing faults per attempt: leading order is rough and the result says so;
    # at a hundredth of the noise (~0.03 per attempt) it is in its regime and says nothing
    dev, program, b = default
    assert "caveat" in b and b["protocol"]["discard_first_order"] > 1
    quiet = budget(dev, program, 0.01)
    assert "caveat" not in quiet and quiet["protocol"]["discard_first_order"] < 0.1
    assert quiet["noise"] == "calibration*0.01"
    assert quiet["break_even_scale"] == pytest.approx(b["break_even_scale"], rel=1e-9)  # a property of the device
