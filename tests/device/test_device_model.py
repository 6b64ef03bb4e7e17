"""The device API: lookups, immutability, content hashes, schema upgrades, JSON Schema, the CLI."""

import json
import re
from pathlib import Path

import pydantic
import pytest
import yaml

from ctrl.cli import main
from ctrl.device import (
    SCHEMA_VERSION,
    DEFAULT_DEVICE,
    Device,
    DeviceError,
    json_schema,
    load_device,
    validate,
    validate_text,
)
from ctrl.device.schema import json_schema_text
from ctrl.errors import CtrlError

HERE = Path(__file__).resolve().parent
MINIMAL = HERE / "minimal.yaml"
TEXT = MINIMAL.read_text()


def _load_text(text: str) -> Device:
    """A Device from text, resolving firmware paths like minimal.yaml does."""
    assert validate_text(text, "t.yaml", HERE) == []
    path = HERE / ".tmp_device.yaml"
    try:
        path.write_text(text)
        return load_device(path)
    finally:
        path.unlink()


def _dump(data) -> str:
    return yaml.safe_dump(data, sort_keys=False)


# ------------------------------------------------------------------------------------ API


def test_lookups():
    dev = load_device(MINIMAL)
    assert dev.name == "minimal4" and [q.name for q in dev.qubits] == ["Q0", "Q1", "Q2", "Q3"]
    assert dev.qubit("Q1").frequency_hz == 5.12e9
    assert dev.qubit("Q1").x90.pulse.drag_coefficient == 0.6
    assert dev.coupler("Q1", "Q0") is dev.coupler("Q0", "Q1")
    assert dev.coupler("Q2", "Q1").control == "Q1"
    assert dev.qubit_wiring("Q3").flux.gen == 9
    assert dev.coupler_wiring("Q1", "Q0").flux.gen == 10 and dev.coupler_wiring("Q1", "Q2") is None
    assert dev.qubit("Q0").readout.error_0to1 == 0.006 and dev.qubit("Q0").readout.error_1to0 == 0.018
    assert dev.wiring.controller.readout_to_decision_latency_s == 4.0e-7
    with pytest.raises(CtrlError, match="no qubit 'Q9'"):
        dev.qubit("Q9")
    with pytest.raises(CtrlError, match="no coupler Q0-Q3"):
        dev.coupler("Q0", "Q3")


def test_graph_is_fresh_and_carries_positions_and_gates():
    dev = load_device(MINIMAL)
    g = dev.graph()
    assert g.nodes["Q2"]["position"] == (2.0, 0.0) and g.edges["Q1", "Q2"]["gate"] == "ecr"
    g.remove_node("Q0")
    assert "Q0" in dev.graph()


def test_device_and_models_are_frozen_with_short_reprs():
    dev = load_device(MINIMAL)
    with pytest.raises(pydantic.ValidationError):
        dev.qubit("Q0").t1_s = 1.0
    with pytest.raises(AttributeError):
        dev.spec = None
    with pytest.raises(TypeError):
        dev.firmware["x"] = None
    assert re.fullmatch(r"Device\('minimal4', 4 qubits, 3 couplers, 1 board\(s\), calibration sha256:[0-9a-f]{12}\)", repr(dev))
    fw = dev.firmware["zcu216"]
    assert "tProc v2 rev 21" in repr(fw) and len(repr(fw)) < 120
    assert fw.gens[4].mux and fw.gens[4].n_tones == 8 and not fw.gens[5].mux
    assert fw.readouts[0].dynamic and not fw.readouts[2].dynamic and not fw.readouts[8].feeds_tproc


def test_load_device_raises_one_error_listing_every_problem():
    with pytest.raises(DeviceError) as e:
        load_device(HERE / "broken" / "duplicate_qubit.yaml")
    assert len(e.value.problems) >= 2 and str(e.value) == "\n".join(e.value.problems)
    with pytest.raises(CtrlError, match="no such file"):
        load_device(HERE / "nope.yaml")


# ------------------------------------------------------------------------------------ hashes


def test_calibration_hash_ignores_key_order_float_spelling_and_list_order():
    base = load_device(MINIMAL)
    data = yaml.safe_load(TEXT)
    cal = data["calibration"]
    cal["qubits"].reverse()
    cal["couplers"].reverse()
    cal["couplers"][0]["qubits"].reverse()
    data["calibration"] = dict(reversed(list(cal.items())))
    data["calibration"]["qubits"][0] = dict(reversed(list(data["calibration"]["qubits"][0].items())))
    text = _dump(data)
    text = text.replace("duration_s: 3.2e-08", "duration_s: 0.000000032")
    text = text.replace("frequency_hz: 4900000000.0", "frequency_hz: 4.900e+9")
    assert "0.000000032" in text and "4.900e+9" in text
    assert _load_text(text).calibration_hash == base.calibration_hash


def test_calibration_hash_changes_with_any_calibrated_number_and_only_then():
    base = load_device(MINIMAL)
    changed = _load_text(TEXT.replace("      t1_s: 1.2e-04\n", "      t1_s: 1.21e-04\n"))
    assert changed.calibration_hash != base.calibration_hash
    assert changed.wiring_hash == base.wiring_hash
    rewired = _load_text(TEXT.replace("      drive: {board: zcu216, gen: 7}", "      drive: {board: zcu216, gen: 11}"))
    assert rewired.calibration_hash == base.calibration_hash
    assert rewired.wiring_hash != base.wiring_hash
    # an int where a float is expected is the same number
    same = _load_text(TEXT.replace("position: [1.0, 0.0]", "position: [1, 0]"))
    assert same.calibration_hash == base.calibration_hash


def test_hash_is_pinned():
    # the canonical form must not drift silently: caches key on it. A deliberate change updates this value.
    assert load_device(MINIMAL).calibration_hash == "sha256:2219977a07fdd06bb863bfee771d9280675883ebb32bf0b5000b66dd1584c1fb"


# ------------------------------------------------------------------------------------ schema versions


def _as_v1(text: str) -> str:
    data = yaml.safe_load(text)
    data["schema_version"] = 1
    ctl = data["wiring"].pop("controller")
    data["wiring"] = {"boards": data["wiring"]["boards"], "decision_latency_s": ctl["readout_to_decision_latency_s"],
                      **{k: v for k, v in data["wiring"].items() if k != "boards"}}
    for q in data["calibration"]["qubits"]:
        ro = q["readout"]
        ro["assignment_error"] = ro.pop("error_0to1")
        ro.pop("error_1to0")
    return _dump(data)


def test_v1_files_are_upgraded():
    v1 = _as_v1(TEXT)
    assert "decision_latency_s" in v1 and "assignment_error" in v1
    assert validate_text(v1, "v1.yaml", HERE) == []
    dev = _load_text(v1)
    assert dev.spec.schema_version == SCHEMA_VERSION
    assert dev.wiring.controller.readout_to_decision_latency_s == 4.0e-7
    assert dev.qubit("Q0").readout.error_0to1 == dev.qubit("Q0").readout.error_1to0 == 0.006


def test_errors_in_v1_files_point_at_the_v1_line():
    v1 = _as_v1(TEXT).replace("assignment_error: 0.007", "assignment_error: 7.0")
    [msg] = [m for m in validate_text(v1, "v1.yaml", HERE) if "error_0to1" in m]
    line = next(i + 1 for i, ln in enumerate(v1.splitlines()) if "assignment_error: 7.0" in ln)
    assert msg.startswith(f"v1.yaml:{line}:") and "percent" in msg
    late = _as_v1(TEXT).replace("decision_latency_s: 4.0e-07", "decision_latency_s: 400.0")
    [msg] = validate_text(late, "v1.yaml", HERE)
    line = next(i + 1 for i, ln in enumerate(late.splitlines()) if "decision_latency_s: 400.0" in ln)
    assert msg.startswith(f"v1.yaml:{line}:") and "ns" in msg


@pytest.mark.parametrize("version, fragment", [("0", "must be 1..3"), ('"2"', "must be an integer"), ("true", "must be an integer")])
def test_bad_schema_versions(version, fragment):
    [msg] = validate_text(TEXT.replace("schema_version: 3", f"schema_version: {version}"), "t.yaml", HERE)
    assert fragment in msg and msg.startswith("t.yaml:4:")


# ------------------------------------------------------------------------------------ checks with parameters


def test_frequency_guard_is_configurable():
    assert validate(DEFAULT_DEVICE) == []
    wide = validate(DEFAULT_DEVICE, frequency_guard_hz=60e6)
    assert wide and all("collision" in m and "guard 60 MHz" in m for m in wide)
    assert validate(MINIMAL, frequency_guard_hz=0.0) == []


def test_unusable_qubits_are_exempt_from_collision_checks():
    collide = TEXT.replace("      frequency_hz: 5.0e+09\n", "      frequency_hz: 5.11e+09\n")
    assert any("frequency collision" in m for m in validate_text(collide, "t.yaml", HERE))
    marked = collide.replace("    - name: Q2\n      position: [2.0, 0.0]\n",
                             "    - name: Q2\n      position: [2.0, 0.0]\n      usable: false\n      note: parked\n")
    assert validate_text(marked, "t.yaml", HERE) == []


# ------------------------------------------------------------------------------------ JSON Schema and CLI


def test_json_schema_describes_units_ranges_and_closed_objects():
    s = json_schema()
    defs = s["$defs"]
    t1 = defs["QubitCalibration"]["properties"]["t1_s"]["anyOf"]  # optional: a number or null
    assert (t1[0]["x-unit"], t1[0]["minimum"], t1[0]["maximum"], t1[1]) == ("s", 1e-7, 0.1, {"type": "null"})
    assert all(d.get("additionalProperties") is False for d in defs.values() if d.get("type") == "object")
    gates = set()
    for name in ("CZGate", "RZZGate", "ISwapGate", "CrossResonanceGate"):
        g = defs[name]["properties"]["gate"]
        gates |= set(g.get("enum", [g.get("const")]))
    assert gates == {"cz", "rzz", "iswap", "sqrt_iswap", "fsim", "cr", "ecr"}
    assert json_schema_text() == json_schema_text()


def test_cli_validate_and_schema(capsys, tmp_path):
    assert main(["validate", str(MINIMAL), str(DEFAULT_DEVICE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(": ok: " in ln and "calibration sha256:" in ln for ln in out)
    assert main(["validate", str(MINIMAL), str(HERE / "broken" / "t1_in_us.yaml")]) == 2
    cap = capsys.readouterr()
    assert ": ok: " in cap.out and len(cap.err.splitlines()) == 1 and "if that is 120 us" in cap.err
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()
    assert main(["schema", "--out", str(tmp_path / "s.json")]) == 0
    assert (tmp_path / "s.json").read_text() == json_schema_text()
    assert main(["validate", "--frequency-guard", "-1", str(MINIMAL)]) == 2
    assert "--frequency-guard" in capsys.readouterr().err


def _edited(tmp_path, old: str, new: str):
    text = MINIMAL.read_text()
    assert text.count(old) == 1
    path = tmp_path / "dev.yaml"
    path.write_text(text.replace(old, new).replace("firmware: ../../", f"firmware: {MINIMAL.parents[2]}/"))
    return path


@pytest.mark.parametrize("old, new, said", [
    ("      t2_echo_s: 5.5e-05\n", "      t2_echo_s: 2.5e-04\n", "t2_echo_s = 0.00025 s exceeds 2*T1 = 0.00012 s"),
    ("      frequency_hz: 5.0e+09\n", "      frequency_hz: 4.91e+09\n", "Q0 and Q2 share neighbour Q1"),
])  # fmt: skip
def test_what_real_devices_show_is_a_warning_and_strict_refuses_it(tmp_path, capsys, old, new, said):
    """T2 above 2 T1 (fit scatter) and a spectator frequency collision: real snapshots have both, so the
    device loads, with a located warning printed by every command; --strict makes them errors."""
    from ctrl.device import DeviceError, device_warnings

    path = _edited(tmp_path, old, new)
    with device_warnings() as heard:
        load_device(path)
    assert len(heard) == 1 and said in heard[0] and f"{path}:" in heard[0]
    with device_warnings(strict=True), pytest.raises(DeviceError, match=re.escape(said)):
        load_device(path)
    assert main(["validate", str(path)]) == 0
    assert said in capsys.readouterr().err
    assert main(["--strict", "validate", str(path)]) == 2
    assert said in capsys.readouterr().err
    assert main(["protocol", "-d", "3", "--out", str(tmp_path / "p")]) == 0  # no device: nothing to say
    assert "warning" not in capsys.readouterr().err
