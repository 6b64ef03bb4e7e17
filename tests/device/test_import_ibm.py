"""The IBM backend properties importer (`ctrl import ibm`), on a small file in the real format.

Expectations are computed from the fixture JSON, never copied from an earlier run.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from ctrl.cli import main
from ctrl.device import load_device
from ctrl.device.importers import import_device
from ctrl.device.importers.ibm import zz_pair
from ctrl.device.model import COMPILED_KINDS
from ctrl.errors import CtrlError

FIXTURE = Path(__file__).parent / "ibm" / "props_small.json"
SCALE = {"": 1, "s": 1, "ms": Fraction(1, 10**3), "us": Fraction(1, 10**6), "ns": Fraction(1, 10**9),
         "Hz": 1, "kHz": 10**3, "MHz": 10**6, "GHz": 10**9}  # fmt: skip


def si(entry: dict) -> float:
    """The exactly rounded SI value of an IBM {unit, value} entry (independent of the importer's arithmetic)."""
    return float(Fraction(entry["value"]) * SCALE[entry["unit"]])


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    text = import_device("ibm", FIXTURE)
    path = tmp_path_factory.mktemp("ibm") / "small.yaml"
    path.write_text(text)
    return text, load_device(path)


def qubit_params(raw: dict, i: int) -> dict:
    return {p["name"]: p for p in raw["qubits"][i]}


def gate(raw: dict, kind: str, qubits: list[int]) -> dict | None:
    for g in raw["gates"]:
        if g["gate"] == kind and g["qubits"] == qubits:
            return {p["name"]: p for p in g["parameters"]}
    return None


def test_every_measured_qubit_number_survives_exactly(raw, imported):
    _, dev = imported
    assert len(dev.qubits) == len(raw["qubits"])
    for i in range(len(raw["qubits"])):
        p, q = qubit_params(raw, i), dev.qubit(f"Q{i}")
        assert q.t1_s == si(p["T1"]) and q.t2_echo_s == si(p["T2"]) and q.t2_ramsey_s is None
        assert q.frequency_hz == si(p["frequency"]) and q.anharmonicity_hz == si(p["anharmonicity"])
        assert q.readout.pulse_duration_s == si(p["readout_length"])
        if "prob_meas1_prep0" in p:
            assert q.readout.error_0to1 == si(p["prob_meas1_prep0"])
            assert q.readout.error_1to0 == si(p["prob_meas0_prep1"])
        else:  # said in the header, both = readout_error
            assert q.readout.error_0to1 == q.readout.error_1to0 == si(p["readout_error"])
        sx = gate(raw, "sx", [i])
        assert q.x90.duration_s == si(sx["gate_length"]) and q.x90.error == si(sx["gate_error"])
        x = gate(raw, "x", [i])
        if x is not None:
            assert q.x180.duration_s == si(x["gate_length"]) and q.x180.error == si(x["gate_error"])
        else:
            assert q.x180.duration_s == 2 * si(sx["gate_length"]) and q.x180.error == 2 * si(sx["gate_error"])
        reset = gate(raw, "reset", [i])
        if reset is None:
            assert q.readout.reset is None
        else:
            assert q.readout.reset.method == "active" and q.readout.reset.duration_s == si(reset["gate_length"])


def test_the_fixture_exercises_what_it_should(raw):
    """The cases below exist in the fixture (so the other tests cannot pass vacuously)."""
    units = {p["unit"] for q in raw["qubits"] for p in q} | {p["unit"] for g in raw["gates"] for p in g["parameters"]}
    assert {"ns", "us", "ms", "GHz", "MHz"} <= units
    assert any(gate(raw, "x", [i]) is None for i in range(len(raw["qubits"])))
    assert any("prob_meas1_prep0" not in qubit_params(raw, i) for i in range(len(raw["qubits"])))
    kinds = {g["gate"] for g in raw["gates"] if len(g["qubits"]) == 2}
    assert {"ecr", "cx", "cz", "rzz"} <= kinds


def _expected_gates(raw: dict) -> dict:
    """(kind, pair, control) -> the IBM parameters the importer must keep (cz/rzz: the lower error of the directions)."""
    out: dict = {}
    for g in raw["gates"]:
        if len(g["qubits"]) != 2:
            continue
        a, b = g["qubits"]
        params = {p["name"]: p for p in g["parameters"]}
        kind = "ecr" if g["gate"] in ("ecr", "cx") else g["gate"]
        key = (kind, frozenset((f"Q{a}", f"Q{b}")), f"Q{a}" if kind == "ecr" else None)
        if key not in out or si(params["gate_error"]) < si(out[key]["gate_error"]):
            out[key] = params
    return out


def test_gates_every_direction_and_kind_with_their_numbers(raw, imported):
    _, dev = imported
    want = _expected_gates(raw)
    got = {(c.gate, frozenset(c.qubits), getattr(c, "control", None)): c for c in dev.couplers}
    assert set(got) == set(want)
    assert len(dev.couplers) == len(want)  # one entry per key: cz listed both ways is kept once
    for key, params in want.items():
        assert got[key].error == si(params["gate_error"])
        assert got[key].duration_s == si(params["gate_length"])
        if key[0] == "ecr":
            assert got[key].qubits[0] == key[2]  # as IBM lists it: control first


def test_the_chosen_gate_of_a_pair_is_its_best_compiled_one(raw, imported):
    _, dev = imported
    want = _expected_gates(raw)
    for pair in {k[1] for k in want}:
        options = [(si(p["gate_error"]), kind) for (kind, pr, _), p in want.items()
                   if pr == pair and kind in COMPILED_KINDS and si(p["gate_error"]) < 1]
        a, b = sorted(pair)
        chosen = dev.coupler(a, b)
        if options:
            assert chosen.usable and chosen.error == min(options)[0]
    # the fixture has a pair with two kinds (cz and rzz) and a pair with both CR directions
    assert any(len(dev.gates(*sorted(k[1]))) >= 2 and {c.gate for c in dev.gates(*sorted(k[1]))} == {"cz", "rzz"}
               for k in want)


def test_unusable_markers_with_notes(raw, imported):
    text, dev = imported
    for i in range(len(raw["qubits"])):
        p = qubit_params(raw, i)
        bad = p["readout_error"]["value"] >= 0.4 or p.get("operational", {"value": 1})["value"] == 0
        q = dev.qubit(f"Q{i}")
        assert q.usable is (not bad)
        assert (q.note is not None) is bad
        if bad:
            assert "readout_error" in q.note
    broken = [(g["qubits"], g["gate"]) for g in raw["gates"] if len(g["qubits"]) == 2
              and any(p["name"] == "gate_error" and p["value"] >= 1 for p in g["parameters"])]
    assert broken
    for (a, b), kind in broken:
        c = next(c for c in dev.gates(f"Q{a}", f"Q{b}") if getattr(c, "control", f"Q{a}") == f"Q{a}")
        assert not c.usable and "gate_error" in c.note
    assert sum(not c.usable for c in dev.couplers) == len(broken)
    assert f"usable: false on {sum(not q.usable for q in dev.qubits)} qubit(s) and {len(broken)} gate(s)" in text


def test_static_zz(raw, imported):
    text, dev = imported
    coupled = {frozenset(c.qubits) for c in dev.couplers}
    expected = {}
    for e in raw["general"]:
        if e["name"].startswith("zz_") and e["value"] != 0:
            a, b = (f"Q{d}" for d in e["name"][3:])  # one-digit indices in the fixture
            if frozenset((a, b)) in coupled:
                expected[frozenset((a, b))] = si(e)
    assert expected and {frozenset(z.qubits): z.zz_hz for z in dev.calibration.static_zz} == expected
    zeros = sum(1 for e in raw["general"] if e["name"].startswith("zz_") and e["value"] == 0)
    assert f"{zeros} exactly-zero values skipped" in text


def test_header_names_source_and_what_was_computed(raw, imported):
    text, dev = imported
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert header[0].startswith("# imported from props_small.json (sha256:")
    assert any("positions are computed" in line for line in header)
    assert any("cx imported as gate: ecr" in line for line in header)
    assert any("no t2_ramsey_s" in line for line in header)
    assert dev.calibration.calibrated_at == raw["last_update_date"]
    assert f"description: IBM backend properties of {raw['backend_name']}, last update" in text
    assert all(len(q.position) == 2 for q in dev.qubits)
    assert len({q.position for q in dev.qubits}) == len(dev.qubits)


def test_deterministic_bytes():
    assert import_device("ibm", FIXTURE) == import_device("ibm", FIXTURE)


def _variant(tmp_path: Path, raw: dict, change) -> Path:
    doc = json.loads(json.dumps(raw))
    change(doc)
    path = tmp_path / "props_variant.json"
    path.write_text(json.dumps(doc))
    return path


def test_implausible_number_is_left_out_and_marked(tmp_path, raw):
    def t1_in_wrong_unit(doc):
        t1 = next(p for p in doc["qubits"][1] if p["name"] == "T1")
        t1["unit"] = "ns"  # 0.1873 ns: implausible

    dev_path = tmp_path / "v.yaml"
    dev_path.write_text(import_device("ibm", _variant(tmp_path, raw, t1_in_wrong_unit)))
    q = load_device(dev_path).qubit("Q1")
    assert not q.usable and q.t1_s is None and "t1_s" in q.note


@pytest.mark.parametrize("content, words", [
    (b'{"qubits": [', "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"qubits": [], "gates": []}', "no qubits"),
    (b'{"qubits": [[{"name": "T1", "unit": "fortnights", "value": 3}]], "gates": []}', "qubit 0 parameter 0 T1: unknown unit"),
    (b'{"qubits": [[{"name": "T1", "unit": "us", "value": "long"}]], "gates": []}', "must be a number"),
    (b'{"qubits": [[]], "gates": [{"gate": "cz", "qubits": [0, 7], "parameters": []}]}', "qubits must be indices"),
    (b"\xff\xfe{}", "not UTF-8"),
])  # fmt: skip
def test_malformed_source_is_one_line_and_writes_nothing(tmp_path, capsys, content, words):
    src = tmp_path / "props_bad.json"
    src.write_bytes(content)
    with pytest.raises(CtrlError) as e:
        import_device("ibm", src)
    assert words in str(e.value) and "\n" not in str(e.value) and str(src) in str(e.value)
    out = tmp_path / "dev.yaml"
    capsys.readouterr()
    assert main(["import", "ibm", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ctrl: error:") and "Traceback" not in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["props_bad.json"]


def test_unknown_unit_on_a_gate_names_the_gate(tmp_path, raw):
    def bad_unit(doc):
        doc["gates"][-2]["parameters"][1]["unit"] = "cycles"

    with pytest.raises(CtrlError, match=r"gate \d+ \(ecr on \[5, 4\]\).*gate_length: unknown unit 'cycles'"):
        import_device("ibm", _variant(tmp_path, raw, bad_unit))


def test_cli_round_trip(tmp_path, capsys, raw):
    out = tmp_path / "small.yaml"
    assert main(["import", "ibm", str(FIXTURE), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    n = len(raw["qubits"])
    good = sum(qubit_params(raw, i)["readout_error"]["value"] < 0.4 for i in range(n))
    assert said.startswith(f"wrote {out}: ") and f"{n} qubits ({good} usable)" in said
    assert out.read_text() == import_device("ibm", FIXTURE)
    assert main(["validate", str(out)]) == 0
    assert "ok" in capsys.readouterr().out
    out.write_text("keep me")
    assert main(["import", "ibm", str(FIXTURE), "--out", str(out)]) == 2  # refuses to overwrite
    assert "--force" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main(["import", "ibm", str(FIXTURE), "--out", str(out), "--force"]) == 0
    assert out.read_text() == import_device("ibm", FIXTURE)


def test_zz_names_are_split_by_the_coupling_map():
    assert zz_pair("1213", 27, {(12, 13)}) == (12, 13)
    assert zz_pair("1213", 300, {(1, 213)}) == (1, 213)
    assert zz_pair("1213", 300, {(12, 13), (1, 213)}) is None  # both splits are coupled pairs: ambiguous
    assert zz_pair("1213", 27, {(1, 2)}) is None  # no split is a coupled pair
    assert zz_pair("1213", 200, {(1, 213)}) is None  # 213 is not a qubit of a 200-qubit device
    assert zz_pair("1020", 30, {(10, 20), (1, 20)}) == (10, 20)  # "020" is no index
    assert zz_pair("7", 30, {(0, 7)}) is None
