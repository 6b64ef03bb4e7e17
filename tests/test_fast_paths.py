"""Each fenced fast path gives the bytes of the plain reference path beside it.

The others have their own files: ctrl.jsontext against json.dumps (tests/test_jsontext.py), the recompile's
output reuse against write_outputs (tests/test_recompile.py)."""

import gc
from pathlib import Path

import pytest

from ctrl.backends.stim import timed_to_stim
from ctrl.compile import pipeline
from ctrl.device import load_device

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
