"""Importers for lab calibration files: qibolab 0.1 runcards (`qibolab`) and slab_qick_calib YAML (`qick-lab`).

The fixtures in tests/device/lab/ are small files written in each format; expectations are computed from
the fixture's own numbers (an SI value is the source's decimal spelling with the unit's exponent)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from ctrl.device import load_device
from ctrl.device.importers import FORMATS, import_device
from ctrl.device.importers.qibolab import (
    DEFAULT_1Q_ERROR_FLOOR,
    DEFAULT_2Q_ERROR_FLOOR,
    DEFAULT_READOUT_ERROR,
)
from ctrl.errors import CtrlError

LAB = Path(__file__).parent / "lab"


def si(x, exponent: int) -> float:
    """The value a person would write for `x` units of 10**exponent: its decimal spelling with the exponent."""
    return float(f"{x!r}e{exponent}")


def imported(tmp_path, fmt, src):
    text = import_device(fmt, src)
    out = tmp_path / (Path(src).stem + ".yaml")
    out.write_text(text)
    return text, load_device(out)


def header(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith("#"))


def one_line_error(fmt, src, *needles):
    with pytest.raises(CtrlError) as e:
        import_device(fmt, src)
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert "Traceback" not in msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_formats_registered():
    assert FORMATS["qibolab"] == "qibolab" and FORMATS["qick-lab"] == "slab"


# --------------------------------------------------------------------------------------------- qibolab


@pytest.fixture
def runcard():
    return json.loads((LAB / "qibolab_4q.json").read_text())


def _limit_1q(t, t1, t2):
    return 1 - (3 + math.exp(-t / t1) + 2 * math.exp(-t / t2)) / 6


def test_qibolab_numbers_survive(tmp_path, runcard):
    text, dev = imported(tmp_path, "qibolab", LAB / "qibolab_4q.json")
    assert [q.name for q in dev.qubits] == [f"Q{i}" for i in runcard["qubits"]]
    ch, nat = runcard["characterization"]["single_qubit"], runcard["native_gates"]["single_qubit"]
    relax = runcard["settings"]["relaxation_time"]
    for qid in map(str, runcard["qubits"]):
        q, c, rx, mz = dev.qubit(f"Q{qid}"), ch[qid], nat[qid]["RX"], nat[qid]["MZ"]
        assert q.frequency_hz == c["drive_frequency"]
        assert q.t1_s == (si(c["T1"], -9) if c["T1"] else None)
        assert q.t2_ramsey_s == (si(c["T2"], -9) if c["T2"] else None)
        assert q.t2_echo_s == (si(c["T2_spin_echo"], -9) if c.get("T2_spin_echo") else None)
        assert q.x180.duration_s == q.x90.duration_s == si(rx["duration"], -9)
        assert q.readout.pulse_duration_s == si(mz["duration"], -9)
        assert q.readout.frequency_hz == (mz["frequency"] or c["readout_frequency"])
        assert q.readout.reset.method == "passive" and q.readout.reset.duration_s == si(relax, -9)
        assert q.readout.window_s is None and q.readout.time_of_flight_s is None
        assert q.usable == bool(c["T1"])
        if c["threshold"] or c["iq_angle"]:
            assert (q.readout.threshold, q.readout.iq_rotation_rad) == (c["threshold"], c["iq_angle"])
        else:
            assert q.readout.threshold is None and q.readout.iq_rotation_rad is None
    assert dev.qubit("Q2").note and "T1" in dev.qubit("Q2").note
    # anharmonicity: a negative one kept, a positive one read as a magnitude (and said), a 0 left out
    assert dev.qubit("Q0").anharmonicity_hz == ch["0"]["anharmonicity"]
    assert dev.qubit("Q1").anharmonicity_hz == -ch["1"]["anharmonicity"]
    assert dev.qubit("Q2").anharmonicity_hz is None
    assert "positive anharmonicity" in header(text)
    # readout errors: 1 - assignment fidelity, else (1 - readout fidelity)/2, else the stated default
    assert dev.qubit("Q0").readout.error_0to1 == dev.qubit("Q0").readout.error_1to0 == 1 - ch["0"]["assignment_fidelity"]
    assert dev.qubit("Q1").readout.error_1to0 == (1 - ch["1"]["readout_fidelity"]) / 2
    assert dev.qubit("Q3").readout.error_0to1 == DEFAULT_READOUT_ERROR
    assert f"DEFAULT {DEFAULT_READOUT_ERROR:g} each, NOT MEASURED" in header(text) and "Q2, Q3" in header(text)


def test_qibolab_pulses(tmp_path, runcard):
    _, dev = imported(tmp_path, "qibolab", LAB / "qibolab_4q.json")
    nat = runcard["native_gates"]["single_qubit"]
    q0, rx0 = dev.qubit("Q0"), nat["0"]["RX"]  # Gaussian(5)
    assert q0.x180.pulse.shape == "gaussian" and q0.x180.pulse.amplitude == rx0["amplitude"]
    assert q0.x180.pulse.sigma_s == pytest.approx(rx0["duration"] / 5 * 1e-9, rel=1e-15)
    assert q0.x90.pulse.shape == "gaussian" and q0.x90.pulse.amplitude == rx0["amplitude"] / 2
    assert q0.x90.pulse.sigma_s == q0.x180.pulse.sigma_s
    q1, rx1 = dev.qubit("Q1"), nat["1"]["RX"]  # Drag(4, -0.25)
    assert q1.x180.pulse.shape == "drag" and q1.x180.pulse.drag_coefficient == -0.25
    assert q1.x180.pulse.sigma_s == pytest.approx(rx1["duration"] / 4 * 1e-9, rel=1e-15)
    assert q1.x90.pulse.amplitude == rx1["amplitude"] / 2
    q3 = dev.qubit("Q3")  # Exponential(...): no ctrl shape, pulse left out, duration kept
    assert q3.x180.pulse is None and q3.x180.duration_s == si(nat["3"]["RX"]["duration"], -9)
    assert dev.qubit("Q2").readout.pulse.shape == "const"
    assert dev.qubit("Q2").readout.pulse.amplitude == nat["2"]["MZ"]["amplitude"]


def test_qibolab_couplers(tmp_path, runcard):
    text, dev = imported(tmp_path, "qibolab", LAB / "qibolab_4q.json")
    two = runcard["native_gates"]["two_qubit"]
    assert sorted(tuple(sorted(c.qubits)) for c in dev.couplers) == [("Q0", "Q1"), ("Q1", "Q2"), ("Q2", "Q3")]
    for key, gates in two.items():
        a, b = (f"Q{x}" for x in key.split("-"))
        (cz,) = dev.gates(a, b)  # the iSWAP is left out
        flux = gates["CZ"][0]
        assert cz.gate == "cz" and cz.duration_s == si(flux["duration"], -9)
        assert cz.flux_pulse.element == f"Q{flux['qubit']}" and cz.flux_pulse.pulse.amplitude == flux["amplitude"]
        assert cz.phase_corrections_rad == {f"Q{v['qubit']}": v["phase"] for v in gates["CZ"][1:]}
        assert cz.conditional_phase_rad is None
    assert dev.coupler("Q1", "Q2").flux_pulse.pulse.shape == "gaussian"
    assert dev.coupler("Q0", "Q1").flux_pulse.pulse.shape == "const"
    h = header(text)
    assert "topology pairs without a CZ (no coupler written): Q3-Q0" in h
    assert "iSWAP on Q2-Q3" in h


def test_qibolab_gate_errors_are_stated_defaults(tmp_path, runcard):
    text, dev = imported(tmp_path, "qibolab", LAB / "qibolab_4q.json")
    assert "gate errors: DEFAULTS, NOT MEASURED" in header(text)
    for q in dev.qubits:
        t2 = q.t2_ramsey_s or q.t2_echo_s or q.t1_s
        limit = _limit_1q(q.x180.duration_s, q.t1_s, t2) if q.t1_s else 0.0
        assert q.x180.error == q.x90.error == pytest.approx(max(DEFAULT_1Q_ERROR_FLOOR, limit), rel=1e-12)
    # Q3 (T1 ~ 10 us, T2 ~ 4 us) is coherence-limited above the floor
    assert dev.qubit("Q3").x180.error > DEFAULT_1Q_ERROR_FLOOR
    for c in dev.couplers:
        assert c.error >= DEFAULT_2Q_ERROR_FLOOR


def test_qibolab_positions_and_determinism(tmp_path):
    a = import_device("qibolab", LAB / "qibolab_4q.json")
    b = import_device("qibolab", LAB / "qibolab_4q.json")
    assert a == b
    pos = [q["position"] for q in yaml.safe_load(a)["calibration"]["qubits"]]
    assert len({tuple(p) for p in pos}) == len(pos)
    assert all(round(x, 3) == x for p in pos for x in p)
    assert "spring layout" in header(a)


def test_qibolab_yaml_runcard(tmp_path):
    src = LAB / "qibolab_1q.yml"
    raw = yaml.safe_load(src.read_text())
    text, dev = imported(tmp_path, "qibolab", src)
    (q,) = dev.qubits
    c, rx = raw["characterization"]["single_qubit"]["q0"], raw["native_gates"]["single_qubit"]["q0"]["RX"]
    assert q.name == "q0" and q.usable
    assert q.t1_s == si(c["T1"], -9) and q.t2_ramsey_s == si(c["T2"], -9) and q.t2_echo_s is None
    assert q.frequency_hz == c["drive_frequency"] and q.anharmonicity_hz is None
    assert q.readout.error_0to1 == 1 - c["assignment_fidelity"]
    assert q.readout.reset.duration_s == si(raw["settings"]["relaxation_time"], -9)
    assert q.x90.pulse.amplitude == rx["amplitude"] / 2
    assert dev.couplers == ()
    assert "half amplitude" in header(text)


def test_qibolab_disconnected_cz_graph_refused(tmp_path, runcard):
    del runcard["native_gates"]["two_qubit"]["1-2"]
    src = tmp_path / "split.json"
    src.write_text(json.dumps(runcard))
    msg = one_line_error("qibolab", src, "split.json", "2 unconnected groups", "Q0 Q1; Q2 Q3", "Q1-Q2")
    assert msg.count("split.json") == 1


def test_qibolab_02_without_qubits_refused(tmp_path):
    # told from a 0.1 runcard by its content (tests/device/test_import_qibolab02.py imports real ones)
    src = tmp_path / "parameters.json"
    src.write_text(json.dumps({"settings": {}, "configs": {"0/drive": {"kind": "iq", "frequency": 4e9}},
                               "native_gates": {"single_qubit": {}, "two_qubit": {}}}))
    one_line_error("qibolab", src, "parameters.json", "native_gates.single_qubit", "no qubit with an RX and an MZ")


@pytest.mark.parametrize("mutate, needle", [
    (lambda t: t[: len(t) // 2], "invalid JSON"),
    (lambda t: t.replace('"qubits": [0, 1, 2, 3]', '"qubits": "0123"'), "qubits"),
    (lambda t: t.replace('"duration": 40, "amplitude": 0.1234', '"duration": "40ns", "amplitude": 0.1234'),
     "native_gates.single_qubit.0.RX.duration"),
    (lambda t: t.replace('"Gaussian(5)"', '"Gaussian 5"'), "shape"),
    (lambda t: t.replace('"0-1": {', '"0-7": {'), "native_gates.two_qubit.0-7"),
    (lambda t: t.replace('"single_qubit": {\n      "0"', '"single_qubit": [\n      "0"', 1), "invalid JSON"),
])
def test_qibolab_malformed(tmp_path, mutate, needle):
    src = tmp_path / "bad.json"
    src.write_text(mutate((LAB / "qibolab_4q.json").read_text()))
    before = sorted(tmp_path.iterdir())
    one_line_error("qibolab", src, "bad.json", needle)
    assert sorted(tmp_path.iterdir()) == before  # nothing written


def test_qibolab_bad_yaml(tmp_path):
    src = tmp_path / "bad.yml"
    src.write_text("qubits: [0\nnative_gates: {")
    one_line_error("qibolab", src, "bad.yml", "invalid YAML")


# ------------------------------------------------------------------------------------------ qick-lab


def test_slab_without_couplers_refused():
    n = len(yaml.safe_load((LAB / "slab_3q.yml").read_text())["device"]["qubit"]["f_ge"])
    one_line_error("qick-lab", LAB / "slab_3q.yml", "slab_3q.yml", f"describes {n} qubits and no two-qubit gates",
                   "needs couplers")


def test_slab_one_qubit_imports(tmp_path):
    raw = yaml.safe_load((LAB / "slab_1q.yml").read_text())
    text, dev = imported(tmp_path, "qick-lab", LAB / "slab_1q.yml")
    qd, rd = raw["device"]["qubit"], raw["device"]["readout"]
    pi = qd["pulses"]["pi_ge"]
    (q,) = dev.qubits
    assert q.name == "Q0" and q.usable
    assert q.frequency_hz == si(qd["f_ge"][0], 6)
    assert q.anharmonicity_hz == pytest.approx((qd["f_ef"][0] - qd["f_ge"][0]) * 1e6, rel=1e-12)
    assert q.anharmonicity_hz == float(f"{round(qd['f_ef'][0] - qd['f_ge'][0], 4)!r}e6")
    assert (q.t1_s, q.t2_ramsey_s, q.t2_echo_s) == (si(qd["T1"][0], -6), si(qd["T2r"][0], -6), si(qd["T2e"][0], -6))
    assert q.x180.pulse.shape == "gaussian" and q.x180.pulse.amplitude == pi["gain"][0]
    assert q.x180.pulse.sigma_s == si(pi["sigma"][0], -6)
    assert q.x180.duration_s == pytest.approx(pi["sigma"][0] * pi["sigma_inc"][0] * 1e-6, rel=1e-12)
    assert q.x90.duration_s == q.x180.duration_s and q.x90.pulse.amplitude == pi["gain"][0] / 2
    ro = q.readout
    lo = raw["hw"]["soc"]["dacs"]["readout"]["lo_freq"][0]
    assert ro.frequency_hz == pytest.approx((lo + rd["frequency"][0]) * 1e6, rel=1e-12)
    assert ro.pulse_duration_s == ro.window_s == si(rd["readout_length"][0], -6)
    assert ro.time_of_flight_s == si(rd["trig_offset"][0], -6)
    assert ro.iq_rotation_rad == math.radians(rd["phase"][0])
    assert ro.threshold == rd["threshold"][0]
    assert ro.error_0to1 == ro.error_1to0 == (1 - rd["fidelity"][0]) / 2
    assert ro.pulse.shape == "const" and ro.pulse.amplitude == rd["gain"][0]
    assert ro.reset.method == "passive" and ro.reset.duration_s == si(rd["final_delay"][0], -6)
    h = header(text)
    assert "gate errors: DEFAULTS, NOT MEASURED" in h and "upper sideband ASSUMED" in h and "half the gain" in h
    assert q.x180.error >= DEFAULT_1Q_ERROR_FLOOR
    assert import_device("qick-lab", LAB / "slab_1q.yml") == text


def test_slab_untuned_and_active_reset(tmp_path):
    raw = yaml.safe_load((LAB / "slab_1q.yml").read_text())
    raw["device"]["qubit"]["tuned_up"] = [False]
    raw["device"]["readout"]["active_reset"] = [True]
    del raw["hw"]
    src = tmp_path / "untuned.yml"
    src.write_text(yaml.safe_dump(raw))
    text, dev = imported(tmp_path, "qick-lab", src)
    (q,) = dev.qubits
    assert not q.usable and "tuned_up: false" in q.note
    assert q.readout.reset is None and "active_reset" in header(text)
    assert q.readout.frequency_hz == si(raw["device"]["readout"]["frequency"][0], 6)  # no LO: direct


@pytest.mark.parametrize("mutate, needle", [
    (lambda t: t.replace("f_ge: [4519.8613]", "f_ge: 4519.8613"), "device.qubit.f_ge"),
    (lambda t: t.replace("T1: [27.31]", "T1: [27.31, 3.0]"), "device.qubit.T1: expected a list of 1 values"),
    (lambda t: t.replace("gain: [0.2365]", "gain: [high]"), "device.qubit.pulses.pi_ge.gain[0]"),
    (lambda t: t.replace("  readout:\n", "  readout: [\n", 1), "invalid YAML"),
    (lambda t: "- just\n- a list\n", "expected a slab_qick_calib configuration"),
])
def test_slab_malformed(tmp_path, mutate, needle):
    src = tmp_path / "bad.yml"
    src.write_text(mutate((LAB / "slab_1q.yml").read_text()))
    before = sorted(tmp_path.iterdir())
    one_line_error("qick-lab", src, "bad.yml", needle)
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize("fmt, text", [("qibolab", "[" * 100000), ("qibolab", "a:\n" + "- " * 50000 + "1\n"),
                                       ("qick-lab", "[" * 100000)])
def test_deeply_nested_refused(tmp_path, fmt, text):
    src = tmp_path / "deep.txt"
    src.write_text(text)
    one_line_error(fmt, src, "deep.txt")
