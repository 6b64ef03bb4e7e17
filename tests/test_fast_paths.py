"""Each fenced fast path gives the bytes of the plain reference path beside it.

The others have their own files: ctrl.jsontext against json.dumps (tests/test_jsontext.py), the recompile's
patch and output reuse against a full compile and write_outputs (tests/test_recompile.py), the QICK patch
against a full emission (tests/test_qick.py, tests/test_recompile.py). docs/architecture.md lists them."""

import gc
import json
from pathlib import Path

import pytest
import yaml

from ctrl.backends.stim import timed_to_stim
from ctrl.compile import pipeline
from ctrl.device import Calibration, Device, load_device
from ctrl.outputs.folder import compile_inputs, read_inputs, write_compiled
from ctrl.recompile import load_previous
from ctrl.recompile.previous import _old_device as old_device

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


def test_the_previous_device_carries_the_hashes_it_would_compute(tmp_path):
    """A recompile rebuilds the previous device from the recorded calibration and seeds its hashes with the
    recorded ones (load_previous checked the calibration's text against its digest) instead of hashing it
    again: they must be what hashing gives."""
    (tmp_path / "firmware").symlink_to(ROOT / "device_configs" / "firmware")
    doc = yaml.safe_load((ROOT / "device_configs" / "planar16_d3.yaml").read_text())
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    for q in doc["calibration"]["qubits"]:
        q["x90"]["pulse"]["amplitude"] = round(q["x90"]["pulse"]["amplitude"] * 1.01, 6)
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    old, new = load_device(tmp_path / "old.yaml"), load_device(tmp_path / "new.yaml")
    write_compiled(pipeline.compile_program(old, 3), tmp_path / "day0", old)
    seeded = old_device(load_previous(tmp_path / "day0", new), new)
    hashed = Device(seeded.path, seeded.spec, seeded.firmware)
    assert seeded.calibration_hash == hashed.calibration_hash == old.calibration_hash != new.calibration_hash
    assert seeded.wiring_hash == hashed.wiring_hash


def test_a_command_on_a_frozen_heap_writes_what_it_writes_on_a_scanned_one(tmp_path, monkeypatch):
    """The CLI freezes what the imports made out of the collector's reach while a command runs
    (cli.settled_heap). The reference: the same command with every object scanned, and collections all
    through it. Both write the same files, and an in-process caller gets its heap back unfrozen."""
    import contextlib

    import ctrl.cli as cli

    device = str(ROOT / "device_configs" / "planar16_d3.yaml")
    assert cli.main(["compile", "--device", device, "-d", "3", "--out", str(tmp_path / "fast"),
                     "--cache", str(tmp_path / "c1")]) == 0  # fmt: skip
    assert gc.get_freeze_count() == 0
    monkeypatch.setattr(cli, "settled_heap", lambda modules=(): contextlib.nullcontext())
    threshold = gc.get_threshold()
    gc.set_threshold(50, 2, 2)
    try:
        assert cli.main(["compile", "--device", device, "-d", "3", "--out", str(tmp_path / "ref"),
                         "--cache", str(tmp_path / "c2")]) == 0  # fmt: skip
    finally:
        gc.set_threshold(*threshold)
    fast = {p.name: p.read_bytes() for p in (tmp_path / "fast").iterdir() if p.name != "report.json"}
    ref = {p.name: p.read_bytes() for p in (tmp_path / "ref").iterdir() if p.name != "report.json"}
    assert fast == ref and len(fast) > 3
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("fast", "ref"))
    assert [p["name"] for p in a.pop("passes")] == [p["name"] for p in b.pop("passes")]  # timings differ
    assert a == b


def test_the_heap_is_frozen_while_a_command_runs():
    import ctrl.cli as cli

    seen = []
    with cli.settled_heap(("ctrl.recompile",)):
        seen.append(gc.get_freeze_count())
    assert seen[0] > 10_000 and gc.get_freeze_count() == 0
