"""The emulator runs the compiled program, post-selected by the program's own decision points."""

import json
from pathlib import Path

import numpy as np
import pytest

from ctrl.backends.stim import timed_to_stim
from ctrl.cli import main
from ctrl.compile.pipeline import compile_program
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.emulate.run import emulate, program_decisions
from ctrl.noise.calibration import CalibrationNoise
from ctrl.realtime.decision import reference_accepts
from ctrl.sim.lower import IDEAL


@pytest.fixture(scope="module")
def default():
    dev = load_device(DEFAULT_DEVICE)
    return dev, compile_program(dev, 3).program


def test_decision_points_accept_exactly_when_no_check_fired(default):
    dev, program = default
    decisions = program_decisions(program)
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
    assert good["mean_aborted_attempt_s"] < good["attempt_s"], "early abort saves time"
    assert good["provenance"]["calibration_hash"] == dev.calibration_hash


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


def test_emulate_refuses_bad_noise(capsys):
    assert main(["emulate", "--device", str(DEFAULT_DEVICE), "-d", "3", "--shots", "10", "--noise", "calibration*x"]) == 2
    assert "calibration*SCALE" in capsys.readouterr().err
