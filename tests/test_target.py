"""The device Target: the numbers consumers read, as the device file has them, and the channels the
scheduler holds, from the wiring or an ideal controller's own lines."""

import math
from pathlib import Path

import pytest

from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.device.target import IDEAL_CLOCK_HZ, IDEAL_DECISION_LATENCY_S, Target
from ctrl.errors import CtrlError

SHIPPED = sorted(Path(DEFAULT_DEVICE).parent.glob("*.yaml"))


def test_built_once_per_device_and_readable():
    dev = load_device(DEFAULT_DEVICE)
    t = dev.target
    assert t is dev.target
    assert isinstance(t, Target)
    assert repr(t).startswith("Target('planar16_d3', 16 qubits, ")
    assert "QubitTarget(name='Q3'" in repr(t.qubit("Q3"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_numbers_are_the_device_files(path):
    dev = load_device(path)
    t = dev.target
    for q in dev.qubits:
        got = t.qubit(q.name)
        assert (got.x90_s, got.x90_error, got.x180_s, got.x180_error) == (
            q.x90.duration_s, q.x90.error, q.x180.duration_s, q.x180.error)
        assert got.pulse_s(math.pi / 2) == q.x90.duration_s and got.pulse_s(-math.pi) == q.x180.duration_s
        assert got.readout_window_end_s == q.readout.window_end_s()
        assert got.readout_busy_s == max(q.readout.pulse_duration_s, q.readout.window_end_s())
        assert got.reset_s == q.reset_s()
        assert (got.readout_error_0to1, got.readout_error_1to0) == (q.readout.error_0to1, q.readout.error_1to0)
        if q.t1_s is not None:
            assert (got.t1_s, got.t2_s(False), got.t2_s(True)) == (q.t1_s, q.t2_s(False), q.t2_s(True))
        assert got.zz_neighbours == dev.zz_neighbours.get(q.name, ())
    assert set(t.gates) == set(dev.chosen_gates)
    for pair, c in dev.chosen_gates.items():
        g = t.gate(*sorted(pair))
        assert (g.kind, g.duration_s, g.error, g.virtual_z_rad) == (c.gate, c.duration_s, c.error, c.virtual_z_rad())
        assert g.control == getattr(c, "control", None)
    assert t.two_qubit_durations_s == tuple(sorted(c.duration_s for c in dev.couplers if c.usable))
    if dev.wiring is not None:
        assert t.decision_latency_s == dev.wiring.controller.readout_to_decision_latency_s
        assert t.inter_board_latency_s == dev.wiring.controller.inter_board_latency_s
        for w in dev.wiring.qubits:
            assert t.qubit_wiring(w.name) is w
            assert t.drive_channel(w.name) == f"{w.drive.board}/gen{w.drive.gen}"


def _same_pulse(shape, pulse) -> bool:
    return shape.shape == pulse.shape and all(
        getattr(shape, f) == getattr(pulse, f, 0.0) for f in ("amplitude", "sigma_s", "drag_coefficient", "rise_s"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_what_qick_plays_is_the_device_files(path):
    """The QICK plan reads pulses from the Target only: every number it reads is the file's."""
    dev = load_device(path)
    t = dev.target
    for q in dev.qubits:
        p, ro = t.qubit(q.name).pulses, q.readout
        assert p is not None  # every shipped device is wired, so the checks ask for every one of them
        assert (p.frequency_hz, p.anharmonicity_hz, p.readout_frequency_hz, p.readout_window_s, p.time_of_flight_s,
                p.iq_rotation_rad, p.threshold, p.reset_method) == (
            q.frequency_hz, q.anharmonicity_hz, ro.frequency_hz, ro.window_s, ro.time_of_flight_s,
            ro.iq_rotation_rad, ro.threshold, ro.reset.method)  # fmt: skip
        for shape, pulse in ((p.x90, q.x90.pulse), (p.x180, q.x180.pulse), (p.readout, ro.pulse)):
            assert _same_pulse(shape, pulse)
    for pair, c in dev.chosen_gates.items():
        g = t.gate(*sorted(pair)).pulses
        if c.gate == "ecr":
            assert (g.cr_segment_s, g.cr_phase_rad, g.cancellation_phase_rad, g.flux) == (
                c.cr_segment_s, c.cr_phase_rad, c.cancellation_phase_rad, None)
            assert _same_pulse(g.cr, c.cr_pulse)
            assert (g.cancellation is None) == (c.cancellation_pulse is None)
        else:
            assert g.cr is None and g.cancellation is None and _same_pulse(g.flux, c.flux_pulse.pulse)


def test_without_qick_numbers_there_are_no_pulses(tmp_path):
    from tests.test_schema_v3 import bare, write

    t = load_device(write(bare(), tmp_path / "bare.yaml")).target
    assert all(q.pulses is None for q in t.qubits.values())
    assert all(g.pulses.cr is None and g.pulses.cr_segment_s is None for g in t.gates.values() if g.kind == "ecr")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_boards_hold_the_used_qubits_lines_and_their_couplers(path):
    dev = load_device(path)
    t = dev.target
    def own(q):
        w = t.qubit_wiring(q)
        return {line.board for line in (w.drive, w.readout, w.flux) if line is not None}

    for w in dev.wiring.qubits:
        assert t.boards([w.name]) == own(w.name)
    assert t.boards([q.name for q in dev.qubits]) == {b.name for b in dev.wiring.boards}
    for c in dev.wiring.couplers:
        a, b = c.qubits
        assert t.boards([a, b]) == own(a) | own(b) | {c.flux.board}


def test_unknown_names_are_refused():
    t = load_device(DEFAULT_DEVICE).target
    with pytest.raises(CtrlError, match="has no qubit 'Q99'"):
        t.qubit("Q99")
    with pytest.raises(CtrlError, match="has no coupler Q0-Q99"):
        t.gate("Q0", "Q99")


def test_ideal_controller_without_wiring(tmp_path):
    from tests.test_schema_v3 import bare, write

    dev = load_device(write(bare(), tmp_path / "bare.yaml"))
    t = dev.target
    assert t.ideal
    assert t.clock_hz({"Q0"}) == IDEAL_CLOCK_HZ and t.decision_latency_s == IDEAL_DECISION_LATENCY_S
    assert t.drive_channel("Q3") == "drive:Q3"
    assert t.readout_channels("Q3") == (("readout:Q3",), "")
    assert t.flux_channel("Q7", "Q1") == "coupler:Q1-Q7"
    assert t.boards({"Q0", "Q1"}) == frozenset() and t.inter_board_latency_s is None
    with pytest.raises(CtrlError, match="has no QICK wiring"):
        t.qubit_wiring("Q3")


# --- every consumer of a compiled program refuses one compiled for another calibration


@pytest.fixture(scope="module")
def two_calibrations(tmp_path_factory):
    """The shipped default device, one compiled program for it, and the same file with one T1 changed
    (another calibration, the same wiring), on disk so that the lab client can be given it."""
    import yaml

    from ctrl.compile.pipeline import compile_program

    tmp = tmp_path_factory.mktemp("recalibrated")
    (tmp / "firmware").symlink_to(Path(DEFAULT_DEVICE).parent / "firmware")
    doc = yaml.safe_load(Path(DEFAULT_DEVICE).read_text())
    doc["calibration"]["qubits"][0]["t1_s"] *= 0.9
    path = tmp / "recalibrated.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    old, new = load_device(DEFAULT_DEVICE), load_device(path)
    assert old.calibration_hash != new.calibration_hash and old.wiring_hash == new.wiring_hash
    return old, new, compile_program(old, 3)


def _names_both(old, new):
    return rf"compiled for calibration {old.calibration_hash}, this device file \({new.path}\) has {new.calibration_hash}"


def test_emit_qick_refuses_a_program_of_another_calibration(two_calibrations):
    from ctrl.backends.qick import emit_qick

    old, new, compiled = two_calibrations
    with pytest.raises(CtrlError, match=_names_both(old, new)):
        emit_qick(new, compiled.program)
    assert emit_qick(old, compiled.program, attempts=1).boards


def test_the_qick_patch_refuses_a_program_of_another_calibration(two_calibrations):
    import dataclasses

    from ctrl.backends.qick import emit_qick
    from ctrl.backends.qick.patch import patch_qick, reemit_qick

    old, new, compiled = two_calibrations
    previous = emit_qick(old, compiled.program, attempts=1)
    with pytest.raises(CtrlError, match=_names_both(old, new)):
        patch_qick(previous, new, compiled.program)
    # given lazily (a patch may not need it), it is checked when its plan asks for it
    patched, why = reemit_qick(previous, new, lambda: compiled.program)
    assert why is None
    with pytest.raises(CtrlError, match=_names_both(old, new)):
        patched.boards[0].plan
    # a recompile's program: the same ops, the new calibration's hash
    kept = dataclasses.replace(compiled.program, calibration_hash=new.calibration_hash)
    assert reemit_qick(previous, new, kept)[1] is None


def test_emulate_refuses_a_program_of_another_calibration(two_calibrations):
    from ctrl.emulate.run import emulate

    old, new, compiled = two_calibrations
    with pytest.raises(CtrlError, match=_names_both(old, new)):
        emulate(new, compiled.program, 10)


def test_stim_with_calibration_noise_refuses_a_program_of_another_calibration(two_calibrations):
    from ctrl.backends.stim import timed_to_stim
    from ctrl.noise.calibration import CalibrationNoise

    old, new, compiled = two_calibrations
    program = compiled.program
    with pytest.raises(CtrlError, match=_names_both(old, new)):
        timed_to_stim(program, "X", CalibrationNoise(new, program.clock_hz))
    assert timed_to_stim(program, "X", CalibrationNoise(old, program.clock_hz)).num_qubits > 0
    assert timed_to_stim(program, "X").num_qubits > 0  # no noise: no calibration numbers, nothing to check


def test_the_lab_client_refuses_a_program_of_another_calibration(two_calibrations, tmp_path):
    from ctrl.outputs import write_outputs
    from ctrl.lab.client import load_compiled

    old, new, compiled = two_calibrations
    write_outputs(compiled, tmp_path, old)
    with pytest.raises(CtrlError, match=_names_both(old, new) + ".*pass the device file it was compiled for"):
        load_compiled(tmp_path, new.path)
    assert load_compiled(tmp_path, old.path)


def test_another_wiring_is_refused_too(two_calibrations):
    import dataclasses

    old, _, compiled = two_calibrations
    other = dataclasses.replace(compiled.program, wiring_hash="sha256:" + "0" * 64)
    with pytest.raises(CtrlError, match=f"compiled for wiring sha256:0+, this device file .* has {old.wiring_hash}"):
        old.target.check_program(other)
