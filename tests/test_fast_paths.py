"""Each fenced fast path gives the bytes of the plain reference path beside it.

The others have their own files: ctrl.jsontext against json.dumps (tests/test_jsontext.py), the recompile's
patch and output reuse against a full compile and write_outputs (tests/test_recompile.py), the QICK patch
against a full emission (tests/test_qick.py, tests/test_recompile.py). docs/architecture.md lists them."""

import gc
import json
from pathlib import Path

import pytest

from ctrl.backends.stim import timed_to_stim
from ctrl.compile import pipeline
from ctrl.device import Calibration, load_device
from ctrl.outputs.folder import compile_inputs, read_inputs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, dd", [("planar16_d3", None), ("grid25_cz", "xy4")])
def test_compile_with_the_collector_paused_equals_the_compile_with_it_running(name, dd):
    fast = pipeline.compile_program(load_device(ROOT / "device_configs" / f"{name}.yaml"), 3, dd=dd)
    assert gc.isenabled()  # given back as it was
    threshold = gc.get_threshold()
    gc.set_threshold(50, 2, 2)  # collections all through the reference compile, not one by chance
    try:
        ref = pipeline._compile(load_device(ROOT / "device_configs" / f"{name}.yaml"), 3, "asap", frozenset(), None,
                                True, dd)  # fmt: skip
    finally:
        gc.set_threshold(*threshold)
    assert fast.program.to_json() == ref.program.to_json()
    assert str(timed_to_stim(fast.program, "X")) == str(timed_to_stim(ref.program, "X"))
    assert fast.report == ref.report


def test_the_collector_stays_off_when_it_was_off():
    gc.disable()
    try:
        pipeline.compile_program(load_device(ROOT / "device_configs" / "planar16_d3.yaml"), 3)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_compile_inputs_read_by_splitting_off_the_calibration_equals_reading_it_as_json(tmp_path):
    """compile_inputs.json keeps the calibration as pydantic wrote it, last, so that reading it back splits
    that text off and validates it directly (read_inputs) instead of parsing and hashing it again."""
    device = load_device(ROOT / "device_configs" / "grid25_cz.yaml")
    compiled = pipeline.compile_program(device, 3)
    path = tmp_path / "compile_inputs.json"
    path.write_text(compile_inputs(device, compiled.placement, 3, dd="xy4"))
    doc, cal_text = read_inputs(path)
    assert cal_text is not None  # the split was taken
    plain = json.loads(path.read_text())
    assert json.loads(cal_text) == plain.pop("calibration")
    del plain["inputs_sha256"]
    assert doc == plain
    assert Calibration.model_validate_json(cal_text) == device.calibration
