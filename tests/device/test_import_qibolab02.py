"""The qibolab >= 0.2 importer: parameters.json (with qibocal's calibration.json beside it).

The platform below is synthetic, written in the schema of qibolab 0.2's pydantic models (`Parameters`:
settings, configs keyed by channel, native_gates {single_qubit, coupler, two_qubit} as [[channel,
instruction], ...]) and qibocal's `Calibration` ([mean, error] measures in ns); expectations are computed
from its own numbers."""

from __future__ import annotations

import copy
import json
import math

import pytest

from ctrl.device import load_device
from ctrl.device.importers import import_device
from ctrl.device.importers.qibolab import DEFAULT_1Q_ERROR_FLOOR, DEFAULT_2Q_ERROR_FLOOR, DEFAULT_READOUT_ERROR
from ctrl.device.importers.qibolab02 import PULSES_PER_CLIFFORD
from ctrl.errors import CtrlError


def si(x, exponent: int) -> float:
    return float(f"{x!r}e{exponent}")


def pulse(duration, amplitude, envelope):
    return {"kind": "pulse", "duration": duration, "amplitude": amplitude, "envelope": envelope,
            "relative_phase": 0.0, "chirp": None}


def readout(channel, probe_ns, window_ns, amplitude, envelope=None):
    return [[channel, {"kind": "readout", "acquisition": {"kind": "acquisition", "duration": window_ns},
                       "probe": pulse(probe_ns, amplitude, envelope or {"kind": "rectangular"}),
                       "time_of_flight": 0.0}]]


def acquisition(delay, threshold, iq_angle):
    return {"kind": "acquisition", "delay": delay, "smearing": 0.0, "threshold": threshold, "iq_angle": iq_angle,
            "kernel": None}


PARAMETERS = {
    "settings": {"nshots": 1000, "relaxation_time": 150000},
    "configs": {
        "0/drive": {"kind": "iq", "frequency": 4812345678.0},
        "0/drive12": {"kind": "iq", "frequency": 4601234567.5},
        "0/probe": {"kind": "iq", "frequency": 7101234567.25},
        "0/acquisition": acquisition(212.0, 0.00123, -1.25),
        "0/flux": {"kind": "dc", "offset": 0.0, "filters": []},
        "1/drive": {"kind": "iq", "frequency": 5123456789.0},
        "1/probe": {"kind": "iq", "frequency": 7298765432.0},
        "1/acquisition": acquisition(212.0, None, None),
        "1/flux": {"kind": "dc", "offset": 0.21, "filters": []},
        "2/drive": {"kind": "iq", "frequency": 4923456789.0},
        "2/acquisition": acquisition(0.0, 0.5, 0.25),
        "2/flux": {"kind": "dc", "offset": 0.0, "filters": []},
        "coupler_0/flux": {"kind": "dc", "offset": 0.1, "filters": []},
    },
    "native_gates": {
        "single_qubit": {
            "0": {"RX": [["0/drive", pulse(40.0, 0.3456, {"kind": "drag", "rel_sigma": 0.25, "beta": -0.5})]],
                  "RX90": [["0/drive", pulse(20.0, 0.1789, {"kind": "gaussian", "rel_sigma": 0.2})]],
                  "RX12": [["0/drive12", pulse(40.0, 0.25, {"kind": "rectangular"})]],
                  "MZ": readout("0/acquisition", 1500.0, 1600.0, 0.2), "CP": None},
            "1": {"RX": [["1/drive", pulse(32.5, 0.41, {"kind": "gaussian", "rel_sigma": 0.2})]],
                  "RX90": None, "RX12": None,
                  "MZ": readout("1/acquisition", 2000.0, 2000.0, 0.1,
                                {"kind": "gaussian_square", "risefall": 10, "sigma": 2}),
                  "CP": None},
            "2": {"RX": [["2/drive", pulse(48.0, 0.5, {"kind": "rectangular"})]],
                  "MZ": readout("2/acquisition", 1000.0, 1000.0, 0.3)},
        },
        "coupler": {"c0": {"CP": [["coupler_0/flux", pulse(30.0, 0.1, {"kind": "rectangular"})]]}},
        "two_qubit": {
            "0-1": {"CZ": [["1/flux", pulse(56.0, -0.2345, {"kind": "rectangular"})],
                           ["1/drive", {"kind": "delay", "duration": 56.0}],
                           ["1/drive", {"kind": "virtualz", "phase": 0.4}],
                           ["0/drive", {"kind": "delay", "duration": 56.0}],
                           ["0/drive", {"kind": "virtualz", "phase": 1.5}],
                           ["2/drive", {"kind": "virtualz", "phase": 0.125}]],
                    "CNOT": None, "iSWAP": None},
            "1-2": {"CZ": None, "CNOT": [],
                    "iSWAP": [["2/flux", pulse(30.0, 0.3, {"kind": "rectangular"})],
                              ["2/drive", {"kind": "delay", "duration": 20.0}],
                              ["2/drive", {"kind": "delay", "duration": 24.5}],
                              ["1/drive", {"kind": "delay", "duration": 24.5}],
                              ["1/drive", {"kind": "delay", "duration": 20.0}]]},
            "0-2": {"CNOT": [["0/drive", pulse(100.0, 0.1, {"kind": "rectangular"})]]},
        },
    },
}

CALIBRATION = {
    "single_qubits": {
        "0": {"resonator": {"bare_frequency": 7.1e9, "dressed_frequency": 7101234999.0},
              "qubit": {"frequency_01": 4812345678.0, "frequency_12": 4601230000.0},
              "readout": {"fidelity": 0.913, "ground_state": [], "excited_state": [], "qudits_frequency": {}},
              "t1": [23456.7, 512.3], "t2": [12345.6, 200.0], "t2_spin_echo": [34567.8, 100.0],
              "rb_fidelity": [0.9972, 0.0004]},
        "1": {"qubit": {"frequency_01": 5123456000.0},
              "readout": {"fidelity": None},
              "t1": [41000.0, 900.0], "t2": None, "t2_spin_echo": [0.0, None], "rb_fidelity": [0.0, None]},
        "2": {"t1": None},
    },
    "two_qubits": {"1-0": {"rb_fidelity": [0.0, None], "cz_fidelity": [0.962, 0.01], "coupling": None}},
    "readout_mitigation_matrix": None,
    "flux_crosstalk_matrix": None,
}


def platform(tmp_path, parameters=PARAMETERS, calibration=CALIBRATION, folder="lab5"):
    d = tmp_path / folder
    d.mkdir()
    (d / "parameters.json").write_text(json.dumps(parameters, indent=4))
    if calibration is not None:
        (d / "calibration.json").write_text(json.dumps(calibration, indent=4))
    return d / "parameters.json"


def imported(tmp_path, src):
    text = import_device("qibolab", src)
    out = tmp_path / "out.yaml"
    out.write_text(text)
    return text, load_device(out)


def header(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith("#"))


def one_line_error(src, *needles):
    with pytest.raises(CtrlError) as e:
        import_device("qibolab", src)
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


@pytest.fixture
def lab(tmp_path):
    text, dev = imported(tmp_path, platform(tmp_path))
    return text, dev


def test_qubits_frequencies_coherence_and_readout(lab):
    text, dev = lab
    cfg, cal = PARAMETERS["configs"], CALIBRATION["single_qubits"]
    assert dev.name == "lab5"  # the platform's folder
    assert [q.name for q in dev.qubits] == ["Q0", "Q1", "Q2"]
    q0, q1, q2 = dev.qubits
    assert q0.frequency_hz == cfg["0/drive"]["frequency"] and q1.frequency_hz == cfg["1/drive"]["frequency"]
    assert q0.anharmonicity_hz == cfg["0/drive12"]["frequency"] - cfg["0/drive"]["frequency"] < 0
    assert q1.anharmonicity_hz is None
    c0 = cal["0"]
    assert (q0.t1_s, q0.t2_ramsey_s, q0.t2_echo_s) == tuple(si(c0[k][0], -9) for k in ("t1", "t2", "t2_spin_echo"))
    assert (q1.t1_s, q1.t2_ramsey_s, q1.t2_echo_s) == (si(cal["1"]["t1"][0], -9), None, None)  # null, 0: not measured
    assert q0.usable and q1.usable and not q2.usable and "T1" in q2.note
    ro0 = q0.readout
    assert ro0.frequency_hz == cfg["0/probe"]["frequency"]  # what is played, not the resonator's fit
    assert (ro0.pulse_duration_s, ro0.window_s, ro0.time_of_flight_s) == (si(1500.0, -9), si(1600.0, -9),
                                                                          si(212.0, -9))
    assert (ro0.threshold, ro0.iq_rotation_rad) == (0.00123, -1.25)
    assert ro0.pulse.shape == "const" and ro0.pulse.amplitude == 0.2
    assert ro0.error_0to1 == ro0.error_1to0 == pytest.approx((1 - 0.913) / 2, rel=1e-15)
    assert q1.readout.threshold is None and q1.readout.iq_rotation_rad is None
    assert q1.readout.pulse is None  # gaussian_square: no ctrl shape
    assert q1.readout.error_0to1 == DEFAULT_READOUT_ERROR
    assert q2.readout.frequency_hz is None and q2.readout.time_of_flight_s == 0.0
    for q in dev.qubits:
        assert q.readout.reset.method == "passive" and q.readout.reset.duration_s == si(150000, -9)
    h = header(text)
    assert "coherence and fidelities from calibration.json (sha256:" in h
    assert f"readout errors: DEFAULT {DEFAULT_READOUT_ERROR:g} each, NOT MEASURED" in h and "on Q1, Q2" in h
    assert "frequency_01 differs from the RX channel's on Q1" in h
    assert "Q1 MZ (envelope gaussian_square)" in h
    assert "readout.frequency_hz: left out (no probe config) on Q2" in h


def test_single_qubit_pulses_and_errors(lab):
    text, dev = lab
    nat = PARAMETERS["native_gates"]["single_qubit"]
    q0, q1, q2 = dev.qubits
    rx0, rx90 = nat["0"]["RX"][0][1], nat["0"]["RX90"][0][1]
    assert q0.x180.duration_s == si(rx0["duration"], -9)
    assert q0.x180.pulse.shape == "drag" and q0.x180.pulse.amplitude == rx0["amplitude"]
    assert q0.x180.pulse.sigma_s == pytest.approx(0.25 * 40e-9, rel=1e-15)
    assert q0.x180.pulse.drag_coefficient == -0.5
    # RX90 given: the x90 is that pulse, not half the RX
    assert q0.x90.pulse.shape == "gaussian" and q0.x90.pulse.amplitude == rx90["amplitude"]
    assert q0.x90.pulse.sigma_s == pytest.approx(0.2 * 20e-9, rel=1e-15)
    assert q0.x90.duration_s == si(rx90["duration"], -9) != q0.x180.duration_s
    # no RX90: RX at half amplitude, as qibolab's R(pi/2) plays it
    assert q1.x90.pulse.amplitude == nat["1"]["RX"][0][1]["amplitude"] / 2
    assert q1.x90.duration_s == q1.x180.duration_s == si(32.5, -9)
    assert q2.x180.pulse.shape == "const"
    # measured RB: per-Clifford fidelity over qibocal's 1.875 pulses per Clifford
    want = (1 - 0.9972) / float(PULSES_PER_CLIFFORD)
    assert q0.x180.error == q0.x90.error == pytest.approx(want, rel=1e-12)
    assert q1.x180.error >= DEFAULT_1Q_ERROR_FLOOR  # rb_fidelity 0: not measured, the default
    h = header(text)
    assert "(1 - rb_fidelity) / 1.875" in h and "on Q0" in h
    assert "gate errors: DEFAULTS, NOT MEASURED elsewhere" in h
    assert "x90: RX90 on Q0; elsewhere RX at half amplitude" in h


def test_two_qubit_gates(lab):
    text, dev = lab
    two = PARAMETERS["native_gates"]["two_qubit"]
    assert sorted(tuple(sorted(c.qubits)) for c in dev.couplers) == [("Q0", "Q1"), ("Q1", "Q2")]
    (cz,) = dev.gates("Q0", "Q1")
    flux = two["0-1"]["CZ"][0][1]
    assert cz.gate == "cz" and cz.duration_s == si(56.0, -9)
    assert cz.flux_pulse.element == "Q1" and cz.flux_pulse.pulse.amplitude == flux["amplitude"]
    assert cz.phase_corrections_rad == {"Q0": 1.5, "Q1": 0.4}  # Q2's virtual Z: a spectator, reported
    assert cz.error == pytest.approx(1 - 0.962, rel=1e-12)  # cz_fidelity measured on "1-0"
    (isw,) = dev.gates("Q1", "Q2")
    assert isw.gate == "iswap" and isw.swap_angle_rad == math.pi / 2 and isw.conditional_phase_rad == 0.0
    assert isw.duration_s == si(44.5, -9)  # the sequence's: each drive channel's delays outlast the flux pulse
    assert isw.flux_pulse is None  # a 30 ns pulse in a 44.5 ns gate: ctrl plays flux over the whole gate
    assert isw.error >= DEFAULT_2Q_ERROR_FLOOR
    h = header(text)
    assert "iSWAP Q1-Q2 (2/flux pulse not the whole gate)" in h
    assert "CZ Q0-Q1 on Q2 (0.125 rad)" in h
    assert "CNOT on Q1-Q2 (empty: not calibrated)" in h and "CNOT on Q0-Q2" in h
    assert "CZ error: 1 - cz_fidelity" in h and "on Q0-Q1" in h
    assert "coupler natives left out" in h and "c0" in h


def test_without_calibration_json(tmp_path):
    text, dev = imported(tmp_path, platform(tmp_path, calibration=None))
    assert not any(q.usable for q in dev.qubits)
    assert all(q.t1_s is None and q.readout.error_0to1 == DEFAULT_READOUT_ERROR for q in dev.qubits)
    assert "no calibration.json beside it" in header(text)
    assert dev.qubit("Q0").frequency_hz == PARAMETERS["configs"]["0/drive"]["frequency"]


def test_calibration_fills_what_the_configs_lack(tmp_path):
    p = copy.deepcopy(PARAMETERS)
    del p["configs"]["0/drive"], p["configs"]["0/probe"], p["configs"]["0/drive12"]
    text, dev = imported(tmp_path, platform(tmp_path, p))
    q = CALIBRATION["single_qubits"]["0"]
    assert dev.qubit("Q0").frequency_hz == q["qubit"]["frequency_01"]
    assert dev.qubit("Q0").anharmonicity_hz == q["qubit"]["frequency_12"] - q["qubit"]["frequency_01"]
    assert dev.qubit("Q0").readout.frequency_hz == q["resonator"]["dressed_frequency"]
    assert "resonator dressed_frequency (no probe config) on Q0" in header(text)


def test_deterministic_and_platform_py_never_run(tmp_path):
    src = platform(tmp_path)
    marker = tmp_path / "ran"
    (src.parent / "platform.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit(3)\n")
    assert import_device("qibolab", src) == import_device("qibolab", src)
    assert not marker.exists()


def test_element_without_rx_and_mz_is_left_out(tmp_path):
    p = copy.deepcopy(PARAMETERS)
    p["native_gates"]["single_qubit"]["c1"] = {"RX": None, "MZ": None,
                                               "CP": [["coupler_0/flux", pulse(30.0, 0.1, {"kind": "rectangular"})]]}
    text, dev = imported(tmp_path, platform(tmp_path, p))
    assert [q.name for q in dev.qubits] == ["Q0", "Q1", "Q2"]
    assert "elements without RX and MZ left out (couplers, or qubits not calibrated): c1" in header(text)
    # a gate on it goes with it
    p["native_gates"]["two_qubit"]["1-c1"] = {"CZ": [["1/flux", pulse(40.0, 0.1, {"kind": "rectangular"})]]}
    (tmp_path / "lab5" / "parameters.json").write_text(json.dumps(p))
    text, dev = imported(tmp_path, tmp_path / "lab5" / "parameters.json")
    assert "CZ on 1-c1 (no RX and MZ on c1)" in header(text) and len(dev.couplers) == 2


def test_disconnected_gates_refused(tmp_path):
    p = copy.deepcopy(PARAMETERS)
    p["native_gates"]["two_qubit"]["1-2"]["iSWAP"] = None
    one_line_error(platform(tmp_path, p), "parameters.json", "2 unconnected groups", "Q0 Q1; Q2",
                   "CNOT on Q1-Q2 (empty: not calibrated)")


def _set(path, value):
    def mutate(doc):
        doc = copy.deepcopy(doc)
        *keys, last = path
        inner = doc
        for k in keys:
            inner = inner[k]
        inner[last] = value
        return doc
    return mutate


@pytest.mark.parametrize("which, mutate, needles", [
    ("parameters", _set(("native_gates", "single_qubit", "1", "RX"), None),
     ("parameters.json", "native_gates.single_qubit.1", "RX and MZ")),
    ("parameters", _set(("native_gates", "single_qubit", "0", "RX"), [["0/drive", {"duration": 40}]]),
     ("parameters.json", "native_gates.single_qubit.0.RX", "pulse sequence")),
    ("parameters", _set(("native_gates", "two_qubit", "0-1", "CZ", 1, 1, "kind"), "wait"),
     ("parameters.json", "native_gates.two_qubit.0-1.CZ.1/drive", "unknown instruction kind 'wait'")),
    ("parameters", _set(("native_gates", "single_qubit", "0", "RX", 0, 1, "duration"), "40ns"),
     ("parameters.json", "native_gates.single_qubit.0.RX.0/drive.pulse.duration", "expected a number")),
    ("parameters", _set(("native_gates", "two_qubit", "0-1", "CZ", 2, 0), "9/drive"),
     ("parameters.json", "virtual Z on a channel that is no qubit's RX channel")),
    ("parameters", _set(("configs", "0/drive"), [4.8e9]), ("parameters.json", "configs.0/drive", "mapping")),
    ("parameters", _set(("native_gates", "two_qubit", "0-7"), {"CZ": None}),
     ("parameters.json", "native_gates.two_qubit.0-7", "among native_gates.single_qubit (0, 1, 2)")),
    ("calibration", _set(("single_qubits", "0", "t1"), 23456.7),
     ("calibration.json", "single_qubits.0.t1", "[mean, error]")),
    ("calibration", _set(("single_qubits", "0", "readout", "fidelity"), "high"),
     ("calibration.json", "single_qubits.0.readout.fidelity")),
])
def test_malformed(tmp_path, which, mutate, needles):
    p, c = (mutate(PARAMETERS), CALIBRATION) if which == "parameters" else (PARAMETERS, mutate(CALIBRATION))
    src = platform(tmp_path, p, c)
    before = sorted(src.parent.iterdir())
    one_line_error(src, *needles)
    assert sorted(src.parent.iterdir()) == before


def test_neither_shape_nor_a_calibration(tmp_path):
    src = tmp_path / "params.json"
    src.write_text(json.dumps({"native_gates": {}, "settings": {}}))
    one_line_error(src, "params.json", "neither a qibolab 0.1 runcard", "'qubits'", "'configs'")
    src = tmp_path / "calibration.json"
    src.write_text(json.dumps(CALIBRATION))
    one_line_error(src, "calibration.json", "import the parameters.json beside it")


def test_durations_add_on_their_decimal_spelling(tmp_path):
    # 20.1 + 35.2 is 55.300000000000004 in binary floats: the drive channel would outlast the 55.3 ns flux pulse
    p = copy.deepcopy(PARAMETERS)
    p["native_gates"]["two_qubit"]["0-1"]["CZ"] = [
        ["1/flux", pulse(55.3, -0.2345, {"kind": "rectangular"})],
        ["0/drive", {"kind": "delay", "duration": 20.1}], ["0/drive", {"kind": "delay", "duration": 35.2}]]
    _, dev = imported(tmp_path, platform(tmp_path, p))
    (cz,) = dev.gates("Q0", "Q1")
    assert cz.duration_s == 5.53e-08 and cz.flux_pulse is not None
