"""Schema v3 end to end: a device file without QICK wiring or pulses, several gates per pair, RZZ, static ZZ.

The bare device is the default one with everything only QICK needs taken out, as an imported snapshot of
a device run by another controller looks."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from ctrl.backends.stim import timed_to_stim
from ctrl.cli import main
from ctrl.compile.pipeline import compile_program
from ctrl.device.target import IDEAL_CLOCK_HZ
from ctrl.device import DEFAULT_DEVICE, load_device, validate
from ctrl.emulate.run import emulate
from ctrl.noise.calibration import CalibrationNoise
from ctrl.recompile.diff import diff_calibrations

QICK_ONLY_QUBIT = ("frequency_hz", "anharmonicity_hz", "t2_ramsey_s")
QICK_ONLY_READOUT = ("frequency_hz", "pulse", "window_s", "time_of_flight_s", "iq_rotation_rad", "threshold", "reset")


def bare(edit=None) -> dict:
    d = yaml.safe_load(DEFAULT_DEVICE.read_text())
    del d["wiring"]
    d["name"] = "bare16"
    for q in d["calibration"]["qubits"]:
        for k in QICK_ONLY_QUBIT:
            q.pop(k)
        for g in ("x90", "x180"):
            q[g].pop("pulse")
        for k in QICK_ONLY_READOUT:
            q["readout"].pop(k)
    for c in d["calibration"]["couplers"]:
        for k in ("cr_pulse", "cr_segment_s", "cr_phase_rad", "cancellation_pulse", "cancellation_phase_rad"):
            c.pop(k, None)
    if edit:
        edit(d)
    return d


def write(d: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def test_a_device_without_wiring_compiles_emulates_and_says_why_no_qick(tmp_path, capsys):
    path = write(bare(), tmp_path / "bare.yaml")
    dev = load_device(path)
    assert dev.wiring is None and "no QICK wiring" in repr(dev)
    out = tmp_path / "out"
    assert main(["compile", "--device", str(path), "--distance", "3", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0
    said = capsys.readouterr().out
    assert "no QICK programs: the device file has no wiring section" in said
    assert sorted(p.name for p in out.iterdir()) == ["compile_inputs.json", "program.json", "program.stim", "report.json"]
    report = json.loads((out / "report.json").read_text())
    assert report["qick"]["programs"] is None and "wiring" in report["qick"]["why"]
    program = compile_program(dev, 3).program
    assert program.clock_hz == IDEAL_CLOCK_HZ
    # the defaults the warnings name: the result is in at the pulse's end; the abort is a readout plus an x180
    for t in program.ops:
        if t.op.name == "MEASURE":
            ro = dev.qubit(t.op.qubits[0]).readout
            assert t.duration == math.ceil(ro.pulse_duration_s * IDEAL_CLOCK_HZ - 1e-6)
    q = dev.qubit(program.qubits[0])
    resets = [dev.qubit(n).readout.pulse_duration_s + dev.qubit(n).x180.duration_s for n in program.qubits]
    assert program.abort_duration == round(max(resets) * IDEAL_CLOCK_HZ) and q.readout.reset is None
    result = emulate(dev, program, 2000, "calibration", seed=3)
    assert 0 < result["accepted"] < 2000 and result["attempt_s"] == program.seconds(program.duration)


def test_missing_qick_numbers_are_errors_only_where_qick_needs_them(tmp_path):
    d = yaml.safe_load(DEFAULT_DEVICE.read_text())
    del d["calibration"]["qubits"][3]["readout"]["threshold"]
    d["wiring"]["boards"][0]["firmware"] = str(DEFAULT_DEVICE.parent / d["wiring"]["boards"][0]["firmware"])
    problems = validate(write(d, tmp_path / "wired.yaml"))
    assert len(problems) == 1
    assert "calibration.qubits[3].readout" in problems[0] and "Q3 is wired to QICK" in problems[0]
    assert "readout.threshold" in problems[0]
    assert validate(write(bare(), tmp_path / "bare.yaml")) == []


def _second_direction(d: dict, index: int, error_factor: float) -> dict:
    c = dict(d["calibration"]["couplers"][index])
    a, b = c["qubits"]
    c["control"] = b if c["control"] == a else a
    c["error"] = c["error"] * error_factor
    d["calibration"]["couplers"].append(c)
    return c


def test_the_compiler_uses_the_best_gate_of_a_pair(tmp_path):
    added = {}

    def edit(d):
        added["worse"] = _second_direction(d, 0, 2.0)
        added["better"] = _second_direction(d, 1, 0.5)

    dev = load_device(write(bare(edit), tmp_path / "both.yaml"))
    worse, better = added["worse"], added["better"]
    assert len(dev.gates(*worse["qubits"])) == 2 and len(dev.gates(*better["qubits"])) == 2
    assert dev.coupler(*worse["qubits"]).control != worse["control"]
    assert dev.coupler(*better["qubits"]).control == better["control"]
    assert dev.coupler(*better["qubits"]).error == better["error"]
    program = compile_program(dev, 3).program
    ecr_controls = {frozenset(t.op.qubits): t.op.qubits[0] for t in program.ops if t.op.name == "ECR"}
    pair = frozenset(better["qubits"])
    if pair in ecr_controls:  # the pair is used: every ECR on it runs the better direction
        assert ecr_controls[pair] == better["control"]
    noise = CalibrationNoise(dev, program.clock_hz)
    assert noise.two_qubit(*better["qubits"]) == pytest.approx(1.25 * better["error"])


def test_rzz_is_compiled_as_a_cz_with_its_virtual_z(tmp_path):
    path = DEFAULT_DEVICE.parent.parent / "tests" / "device" / "minimal.yaml"
    d = yaml.safe_load(path.read_text())
    d["wiring"]["boards"][0]["firmware"] = str((path.parent / d["wiring"]["boards"][0]["firmware"]).resolve())
    cz = d["calibration"]["couplers"][0]
    rzz = {"qubits": cz["qubits"], "gate": "rzz", "duration_s": cz["duration_s"], "error": cz["error"] / 2,
           "phase_corrections_rad": {cz["qubits"][0]: 0.25}, "flux_pulse": cz["flux_pulse"]}
    d["calibration"]["couplers"].append(rzz)
    dev = load_device(write(d, tmp_path / "rzz.yaml"))
    chosen = dev.coupler(*cz["qubits"])
    assert chosen.gate == "rzz"
    a, b = sorted(cz["qubits"])
    want = {a: -math.pi / 2, b: -math.pi / 2}
    want[cz["qubits"][0]] += 0.25
    assert dict(chosen.virtual_z_rad()) == pytest.approx(want)
    # what makes it a CZ (the -pi/2 on each qubit; the 0.25 is the gate's own calibrated correction):
    # RZZ(pi/2) then RZ(-pi/2) on both is diag(1, 1, 1, -1) up to a global phase
    u = np.diag(np.exp(-1j * math.pi / 4 * np.array([1, -1, -1, 1])))
    rz = np.diag([np.exp(1j * math.pi / 4), np.exp(-1j * math.pi / 4)])
    total = np.kron(rz, rz) @ u
    assert np.allclose(total / total[0, 0], np.diag([1, 1, 1, -1]))


def test_static_zz_dephases_an_idle_next_to_a_live_neighbour_as_the_twirled_rotation_does(tmp_path):
    zeta = 5.0e4

    def edit(d):
        d["calibration"]["static_zz"] = [{"qubits": ["Q0", "Q15"], "zz_hz": zeta}]

    dev = load_device(write(bare(edit), tmp_path / "zz.yaml"))
    plain = load_device(write(bare(), tmp_path / "plain.yaml"))
    clock = 1e9
    cycles = 2000
    t = cycles / clock
    # independent: the Pauli twirl of exp(-i 2 pi (zeta / 4) t ZZ) leaves ZZ with |tr(ZZ U) / 4|^2
    zz = np.kron(np.diag([1.0, -1.0]), np.diag([1.0, -1.0]))
    u = np.diag(np.exp(-1j * 2 * math.pi * zeta / 4 * t * np.diag(zz)))
    p_zz = abs(np.trace(zz @ u) / 4) ** 2
    noisy, quiet = CalibrationNoise(dev, clock), CalibrationNoise(plain, clock)
    base = quiet.idle("Q0", cycles)[2]
    got = noisy.idle("Q0", cycles, live=frozenset({"Q0", "Q15"}))[2]
    assert got == pytest.approx(base + p_zz - 2 * base * p_zz, rel=1e-12)
    assert noisy.idle("Q0", cycles, live=frozenset({"Q0"}))[2] == base  # neighbour not live: a known frame
    assert noisy.idle("Q0", cycles, echo=True, live=frozenset({"Q15"})) == quiet.idle("Q0", cycles, echo=True)
    program = compile_program(dev, 3).program
    with_zz = str(timed_to_stim(program, "X", CalibrationNoise(dev, program.clock_hz)))
    # static ZZ sets no duration: the same program, kept for the calibration without it as a recompile keeps it
    kept = dataclasses.replace(program, calibration_hash=plain.calibration_hash)
    without = str(timed_to_stim(kept, "X", CalibrationNoise(plain, program.clock_hz)))
    assert (with_zz != without) == bool({"Q0", "Q15"} <= set(program.qubits))


def test_a_schema_2_file_reads_as_3_with_the_same_hash_and_diffs_gates_per_direction(tmp_path):
    text = DEFAULT_DEVICE.read_text()
    v2 = tmp_path / "v2.yaml"
    v2.write_text(text.replace("schema_version: 3", "schema_version: 2"))
    for name in ("firmware",):
        (tmp_path / name).symlink_to(DEFAULT_DEVICE.parent / name)
    assert load_device(v2).calibration_hash == load_device(DEFAULT_DEVICE).calibration_hash
    one = load_device(write(bare(), tmp_path / "one.yaml"))
    added = {}
    two = load_device(write(bare(lambda d: added.update(c=_second_direction(d, 1, 0.5))), tmp_path / "two.yaml"))
    diff = diff_calibrations(one.calibration, two.calibration)
    kinds = {(c.component, c.kind) for c in diff.changes}
    pair = "-".join(sorted(added["c"]["qubits"], key=lambda n: int(n[1:])))
    assert any(what.startswith(pair) and kind == "structure" for what, kind in kinds)  # a gate added
    assert (pair, "timing") in kinds  # and the compiler now uses it


def test_a_readout_ringdown_holds_the_qubit_after_its_measurement(tmp_path):
    """readout.ringdown_s: after a measurement the qubit's next operation starts no earlier than the readout
    plus the ring-down; the field is a `timing` change, and a file without it keeps its hash."""
    ringdown_s = 400e-9

    def ring(d):
        for q in d["calibration"]["qubits"]:
            q["readout"]["ringdown_s"] = ringdown_s

    plain = load_device(write(bare(), tmp_path / "plain.yaml"))
    rung = load_device(write(bare(ring), tmp_path / "rung.yaml"))
    again = bare()
    again["calibration"]["qubits"][0]["readout"]["ringdown_s"] = None
    assert load_device(write(again, tmp_path / "null.yaml")).calibration_hash == plain.calibration_hash
    assert {c.kind for c in diff_calibrations(plain.spec.calibration, rung.spec.calibration).changes} == {"timing"}

    program = compile_program(rung, 3).program
    hold = round(ringdown_s * program.clock_hz)
    gaps = []
    for i, m in enumerate(program.ops):
        if m.op.name != "MEASURE":
            continue
        q = m.op.qubits[0]
        later = [o for o in program.ops[i + 1 :] if q in o.op.qubits and o.start >= m.start]
        if later:
            gaps.append(min(o.start for o in later) - m.end)
    assert gaps and min(gaps) >= hold
    assert compile_program(rung, 3).program.duration > compile_program(plain, 3).program.duration
