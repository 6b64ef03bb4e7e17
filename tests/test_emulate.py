"""The emulator runs the compiled program, post-selected by the program's own decision points."""

import collections
import dataclasses
import math
import json
from pathlib import Path

import numpy as np
import pytest

from ctrl.backends.stim import timed_to_stim
from ctrl.cli import main
from ctrl.errors import CtrlError
from ctrl.compile.pipeline import compile_program
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.emulate.run import emulate
from ctrl.noise.calibration import CalibrationNoise
from ctrl.realtime.decision import reference_accepts
from ctrl.sim.lower import IDEAL


@pytest.fixture(scope="module")
def default():
    dev = load_device(DEFAULT_DEVICE)
    return dev, compile_program(dev, 3).program


def test_decision_points_accept_exactly_when_no_check_fired(default):
    dev, program = default
    decisions = program.decisions
    circuit = timed_to_stim(program, "X", CalibrationNoise(dev, program.clock_hz))
    det = circuit.compile_detector_sampler(seed=5).sample(5000)
    tags = [i.tag for i in circuit.flattened() if i.name == "DETECTOR"]
    checks = det[:, [t != IDEAL for t in tags]]
    assert [t for t in tags if t != IDEAL] == list(decisions.record)
    from ctrl.realtime.decision import evaluate_batch

    aborts = evaluate_batch(decisions, np.packbits(checks, axis=1, bitorder="little"))
    assert ((aborts < 0) == ~checks.any(axis=1)).all()
    assert ((aborts < 0) == reference_accepts(decisions, checks.astype(np.uint8))).all()


def test_worse_calibration_means_fewer_accepted_attempts(default):
    dev, program = default
    good = emulate(dev, program, 20000, "calibration*0.1", seed=3)
    bad = emulate(dev, program, 20000, "calibration", seed=3)
    assert good["acceptance"] > bad["acceptance"]
    assert good["acceptance_ci95"][0] > bad["acceptance_ci95"][1]
    assert good["mean_aborted_attempt_s"] < good["attempt_slot_s"], "early abort saves time"
    assert good["aborted_in_real_time"] == good["shots"] - good["accepted"]  # one board: every check aborts
    assert good["provenance"]["calibration_hash"] == dev.calibration_hash
    assert (good["noise"], bad["noise"]) == ("calibration*0.1", "calibration")  # results say which noise


def test_slot_timing_is_what_the_qick_program_plays(default):
    """The emulator's times are the emitted program's: interpret the QICK program with every result
    passing, then with the first decision failing, and compare the slot lengths."""
    from ctrl.backends.qick import emit_qick, interpret
    from ctrl.emulate.run import slot_timing

    dev, program = default
    reset, tails, attempt = slot_timing(dev, program)
    assert reset >= round(max(dev.qubit(q).readout.reset.duration_s for q in program.qubits) * program.clock_hz)
    assert attempt == program.duration
    assert len(tails) == len(program.decisions.points) and tails[0] > 0  # the first abort still has readouts to fire
    (board,) = emit_qick(dev, program, attempts=2).boards
    dump, firmware = (json.loads(x) if isinstance(x, str) else x for x in (board.dump, board.firmware))
    trace = interpret(dump, firmware, lambda ro, t: -1e9)  # every result reads 0: both slots complete
    starts = sorted(e.t for e in trace.events if e.kind == "trigger")
    per_slot = len(starts) // 2
    assert len(starts) == 2 * per_slot
    assert starts[per_slot] - starts[0] == reset + attempt  # one slot: the reset block, then the attempt


def test_emulation_is_deterministic(default):
    dev, program = default
    a = emulate(dev, program, 3000, "uniform:0.002", seed=9)
    b = emulate(dev, program, 3000, "uniform:0.002", seed=9)
    assert a == b


def test_dry_run_writes_everything(tmp_path, capsys):
    assert main(["dry-run", "--shots", "2000", "--out", str(tmp_path)]) == 0
    for name in ("program.json", "program.stim", "report.json", "emulation.json", "timeline.png", "summary.txt"):
        assert (tmp_path / name).stat().st_size > 0, name
    r = json.loads((tmp_path / "emulation.json").read_text())
    assert r["shots"] == 2000 and r["device"] == "planar16_d3"
    assert "acceptance" in capsys.readouterr().out
    # the dry run's folder is where a daily recompile can start: nothing changed, every file as it was
    args = ["recompile", "--from", str(tmp_path), "--device", str(DEFAULT_DEVICE), "--cache", str(tmp_path / "c")]
    assert main(args + ["--out", str(tmp_path / "today")]) == 0
    for name in ("program.json", "program.stim", "qick_zcu216.json"):
        assert (tmp_path / "today" / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_emulate_refuses_bad_noise(capsys):
    assert main(["emulate", "--device", str(DEFAULT_DEVICE), "-d", "3", "--shots", "10", "--noise", "calibration*x"]) == 2
    assert "calibration*SCALE" in capsys.readouterr().err


def _with_t1(device, qubit: str, factor: float):
    """A copy of the device with one qubit's T1 (and T2, which T1 bounds) divided by `factor`."""
    from ctrl.device import Device
    from ctrl.device.model import DeviceFile

    doc = device.spec.model_dump()
    for q in doc["calibration"]["qubits"]:
        if q["name"] == qubit:
            for key in ("t1_s", "t2_ramsey_s", "t2_echo_s"):
                q[key] /= factor
    return Device(device.path, DeviceFile.model_validate(doc), device.firmware)


def test_noise_scaling_d3_is_quadratic(default):
    dev, program = default
    # Scales where 300k shots see hundreds of errors (at 0.05 a handful: the slope would be noise).
    scales = (0.4, 0.2, 0.1)
    rates = [emulate(dev, program, 300_000, f"calibration*{s}", seed=11)["logical_error_rate"] for s in scales]
    slope = np.polyfit(np.log(scales), np.log(rates), 1)[0]
    assert 1.6 < slope < 2.5, rates


def test_noise_scaling_d5_is_cubic():
    """Logical error per accepted state to leading order (sampling cannot reach p^3 at d=5 in a test)."""
    from ctrl.sim.faults import leading_order

    dev = load_device(DEFAULT_DEVICE.parent / "grid55_d5.yaml")
    program = compile_program(dev, 5).program
    wrong = []
    for s in (0.02, 0.01):
        _, err = leading_order(timed_to_stim(program, "X", CalibrationNoise(dev, program.clock_hz, s)), "X", 5, 9)
        wrong.append(err)
    assert np.log2(wrong[0] / wrong[1]) == pytest.approx(3.0, abs=0.15)


def test_a_bad_qubit_changes_the_prediction_and_the_placement():
    dev = load_device(DEFAULT_DEVICE.parent / "grid55_d5.yaml")
    before = compile_program(dev, 3)
    # A qubit of the chosen placement that some other embedding can do without.
    from ctrl.compile.placement import _subgraph_embeddings

    embeddings = list(_subgraph_embeddings(dev.graph(usable_only=True), cn20_protocol_3(before.placement.layout), 100))
    avoidable = [q for q in before.placement.qubits if any(q not in e for e in embeddings)]
    assert avoidable, "the device gives the placement no choice; pick another device for this test"
    bad = min(avoidable, key=lambda q: dev.qubit(q).t1_s)
    worse = _with_t1(dev, bad, 10.0)
    assert worse.calibration_hash != dev.calibration_hash
    a = emulate(dev, before.program, 100_000, "calibration*0.3", seed=2)
    # T1 sets no duration: the same program, kept for the new calibration as a recompile keeps it
    kept = dataclasses.replace(before.program, calibration_hash=worse.calibration_hash)
    b = emulate(worse, kept, 100_000, "calibration*0.3", seed=2)
    assert b["acceptance_ci95"][1] < a["acceptance_ci95"][0], "a qubit ten times worse lowers acceptance"
    assert b["logical_error_rate"] >= a["logical_error_rate"]
    after = compile_program(worse, 3)
    assert bad not in after.placement.qubits, "the placement moves off the bad qubit"


def cn20_protocol_3(layout=None):
    from ctrl.protocol.cn20 import cn20_protocol

    return cn20_protocol(3, layout)


def _mechanisms(circuit, names) -> dict:
    """The circuit's error mechanisms as {(detector names..., observables...): probability}, detectors
    named so that two circuits whose detectors come in different orders can be compared."""
    out: dict = {}
    for inst in circuit.detector_error_model(approximate_disjoint_errors=True).flattened():
        if inst.type != "error":
            continue
        key = tuple(sorted(names[t.val] if t.is_relative_detector_id() else f"L{t.val}" for t in inst.targets_copy()))
        p, q = out.get(key, 0.0), inst.args_copy()[0]
        out[key] = p * (1 - q) + q * (1 - p)  # two independent mechanisms with one symptom: it shows if one fires
    return out


def _detector_names(circuit) -> list[str]:
    names, ideal = [], 0
    for inst in circuit.flattened():
        if inst.name == "DETECTOR":
            if inst.tag == IDEAL:
                names.append(f"ideal{ideal}")
                ideal += 1
            else:
                names.append(inst.tag)
    return names


@pytest.mark.parametrize("name", ["planar16_d3", "grid25_cz", "heavyhex65_ecr", "grid55_d5"])
def test_uniform_noise_on_the_compiled_program_is_the_protocols(name):
    """Under uniform:P the compiled program has exactly the protocol's error mechanisms: same detectors
    (matched by check name), same observable, same probabilities. Placement, native gates, fused pulses,
    reordering and the decision order change nothing the paper's model can see."""
    from ctrl.noise.models import UniformNoise
    from ctrl.protocol.cn20 import cn20_protocol
    from ctrl.sim.lower import to_stim

    dev = load_device(Path(DEFAULT_DEVICE).parent / f"{name}.yaml")
    compiled = compile_program(dev, 3)
    protocol = cn20_protocol(3, compiled.placement.layout)
    noise = UniformNoise(1e-3)
    for proxy in "XZ":
        a = to_stim(protocol, proxy, noise)
        b = timed_to_stim(compiled.program, proxy, noise)
        ma, mb = _mechanisms(a, _detector_names(a)), _mechanisms(b, _detector_names(b))
        assert ma.keys() == mb.keys()
        assert max(abs(ma[k] - mb[k]) for k in ma) < 1e-12


def test_uniform_emulation_agrees_with_simulate(default):
    """The must-show, statistically: `ctrl emulate --noise uniform:P` and `ctrl simulate` agree."""
    from ctrl.noise.models import UniformNoise
    from ctrl.sim.report import simulate

    dev, program = default
    shots, p = 40_000, 2e-3
    e = emulate(dev, program, shots, f"uniform:{p}", seed=11)
    s = simulate(3, UniformNoise(p), shots, seed=12)
    for key in ("acceptance", "logical_error_rate"):
        lo = max(e[f"{key}_ci95"][0], s[f"{key}_ci95"][0])
        hi = min(e[f"{key}_ci95"][1], s[f"{key}_ci95"][1])
        assert lo <= hi, (key, e[f"{key}_ci95"], s[f"{key}_ci95"])


def test_a_program_across_boards_never_aborts_early():
    """grid55_d5 spreads d=3 over several boards with no link: every check is post-selected after the
    run, so every attempt plays to the end."""
    dev = load_device(Path(DEFAULT_DEVICE).parent / "grid55_d5.yaml")
    program = compile_program(dev, 3).program
    assert not any(d.realtime for d in program.decisions.points)
    r = emulate(dev, program, 4000, "calibration*0.3", seed=2)
    assert 0 < r["accepted"] < r["shots"]
    assert r["aborted_in_real_time"] == 0
    assert r["mean_attempt_s"] == pytest.approx(r["attempt_slot_s"])


def test_program_json_reads_back_to_the_same_noisy_circuit(default, tmp_path):
    """program.json keeps what the emulator needs, the protocol source of every op included: the program
    read back lowers to the same circuit under both noise models."""
    from ctrl.compile.timed import read_program
    from ctrl.noise.models import UniformNoise

    dev, program = default
    (tmp_path / "program.json").write_text(program.to_json())
    back = read_program(tmp_path / "program.json")
    assert back.to_json() == program.to_json()
    for noise in (UniformNoise(1e-3), CalibrationNoise(dev, program.clock_hz)):
        assert str(timed_to_stim(back, "X", noise)) == str(timed_to_stim(program, "X", noise))


@pytest.mark.parametrize("name", ["planar16_d3", "grid25_cz", "heavyhex65_ecr", "grid55_d5"])
def test_calibration_noise_probabilities_recomputed_from_the_device_file(name):
    """Every readout flip, reset flip, pulse, two-qubit and idle channel in the Stim circuit of a compiled
    program, recomputed from the YAML file read here (not through ctrl.device or ctrl.noise): a readout
    flips with error_0to1, the reset leaves |1> with error_1to0, a pulse is depolarizing at 3/2 of its gate
    error, a two-qubit gate at 5/4 of its coupler's error (the average-infidelity matches), and an idle of t
    seconds, a gap between two of the qubit's operations in the timed program, is the twirled T1/T2*
    decay p_x = p_y = (1 - exp(-t/T1))/4, p_z = (1 - exp(-t/T2*))/2 - p_x."""
    import yaml

    path = DEFAULT_DEVICE.parent / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())["calibration"]
    qubits = {q["name"]: q for q in raw["qubits"]}
    couplers = {frozenset(c["qubits"]): c for c in raw["couplers"]}
    dev = load_device(path)
    program = compile_program(dev, 3).program
    circuit = timed_to_stim(program, "X", CalibrationNoise(dev, program.clock_hz))
    gaps = collections.defaultdict(set)  # qubit -> idle gaps between its consecutive operations, in cycles
    for q in program.qubits:
        mine = sorted((t.start, t.end) for t in program.ops if q in t.op.qubits)
        gaps[q] = {b[0] - a[1] for a, b in zip(mine, mine[1:]) if b[0] > a[1]}
    seen = collections.Counter()
    previous = previous_tag = None
    for inst in circuit.flattened():
        names = [program.qubits[t.value] for t in inst.targets_copy() if t.is_qubit_target]
        args = inst.gate_args_copy()
        if inst.name == "M" and args:
            assert args[0] == pytest.approx(qubits[names[0]]["readout"]["error_0to1"]), names
            seen["readout"] += 1
        elif inst.name == "X_ERROR" and previous == "R":
            assert args[0] == pytest.approx(qubits[names[0]]["readout"]["error_1to0"]), names
            seen["reset"] += 1
        elif inst.name == "DEPOLARIZE2":
            assert args[0] == pytest.approx(1.25 * couplers[frozenset(names)]["error"]), names
            seen["two-qubit"] += 1
        elif inst.name == "DEPOLARIZE1":
            q = qubits[names[0]]
            # the pulse: the instruction just before, tagged with its start cycle; up to a quarter turn it
            # is the calibrated x90 pulse scaled, beyond it the x180
            start = int(previous_tag.split("@")[1].split("+")[0])
            (angle,) = [t.op.angle for t in program.ops
                        if t.start == start and t.op.qubits == (names[0],) and t.op.name in ("RX", "RY")]
            gate = "x90" if abs(angle) <= math.pi / 2 + 1e-12 else "x180"
            assert args[0] == pytest.approx(1.5 * q[gate]["error"]), (names, angle)
            seen["pulse"] += 1
        elif inst.name == "PAULI_CHANNEL_1":
            q = qubits[names[0]]
            cycles = int(inst.tag.rsplit("+", 1)[1])
            assert cycles in gaps[names[0]], (names, cycles)
            t = cycles / program.clock_hz
            px = (1 - math.exp(-t / q["t1_s"])) / 4
            pz = (1 - math.exp(-t / q["t2_ramsey_s"])) / 2 - px
            assert args == pytest.approx([px, px, max(pz, 0.0)], rel=1e-9, abs=1e-15), (names, cycles)
            seen["idle"] += 1
        previous, previous_tag = inst.name, inst.tag
    assert min(seen.values()) > 0 and len(seen) == 5, seen


def test_undefined_figures_are_null_and_say_why(default):
    """Nothing accepted (noise at the top of its range): every per-accepted figure is null, with the reason,
    and the result is strict JSON."""
    device, program = default
    r = emulate(device, program, 200, "uniform:0.5", seed=1)
    assert r["accepted"] == 0
    for k in ("logical_error_rate", "expected_attempts_per_accepted_state", "time_per_accepted_state_s"):
        assert r[k] is None and r["undefined"][k] == "no attempt was accepted"
    json.dumps(r, allow_nan=False)
    assert "undefined" not in emulate(device, program, 2000, "calibration", seed=1)


@pytest.mark.parametrize("spec", ["calibration*inf", "calibration*", "calibration*-1", "calibration*nan", "calibration*x"])
def test_emulate_and_sweep_refuse_the_same_calibration_scales(spec, capsys):
    """One reading of calibration*SCALE: emulate once took an infinite scale and sweep an empty one (as 1)."""
    from ctrl.emulate.sweep import noise_params

    with pytest.raises(CtrlError, match="finite SCALE >= 0"):
        noise_params(spec)
    assert main(["emulate", "--device", str(DEFAULT_DEVICE), "-d", "3", "--shots", "10", "--noise", spec]) == 2
    assert "finite SCALE >= 0" in capsys.readouterr().err


def test_emulate_and_sweep_read_a_calibration_scale_alike():
    from ctrl.emulate.run import calibration_scale
    from ctrl.emulate.sweep import noise_params

    assert [calibration_scale(s) for s in ("calibration", "calibration*0.25", "calibration*2e-1")] == [1.0, 0.25, 0.2]
    assert [noise_params(s)["scale"] for s in ("calibration", "calibration*0.25", "calibration*2e-1")] == [1.0, 0.25, 0.2]
    assert calibration_scale("uniform:0.001") is None and noise_params("uniform:1e-3")["noise"] == "uniform:0.001"
