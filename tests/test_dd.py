"""Dynamical decoupling (`ctrl.compile.dd`): echo pulses in long idles, checked against the program
they pad, never against the pass's own bookkeeping."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ctrl.backends.stim import timed_to_stim
from ctrl.compile.dd import DD_TAG, SEQUENCES
from ctrl.compile.pipeline import compile_program
from ctrl.device import load_device
from ctrl.errors import CtrlError
from ctrl.noise.calibration import CalibrationNoise
from ctrl.noise.models import UniformNoise

ROOT = Path(__file__).resolve().parents[1]
DEVICES = ("planar16_d3", "grid25_cz", "heavyhex65_ecr", "grid55_d5")
_cache: dict = {}


def compiled(name: str, dd: str | None):
    key = (name, dd)
    if key not in _cache:
        device = _cache.setdefault(name, load_device(ROOT / "device_configs" / f"{name}.yaml"))
        _cache[key] = compile_program(device, 3, dd=dd)
    return _cache[name], _cache[key]


def echo(t) -> bool:
    return t.op.tag == DD_TAG


@pytest.mark.parametrize("name", DEVICES)
@pytest.mark.parametrize("dd", sorted(SEQUENCES))
def test_padding_adds_pulses_and_moves_nothing(name, dd):
    _, plain = compiled(name, None)
    _, padded = compiled(name, dd)
    p, q = plain.program, padded.program
    assert [t for t in q.ops if not echo(t)] == list(p.ops)
    assert (q.decisions, q.duration, q.abort_duration) == (p.decisions, p.duration, p.abort_duration)
    added = [t for t in q.ops if echo(t)]
    assert added and padded.report["dynamical_decoupling"]["pulses"] == len(added)
    assert [t.start for t in q.ops] == sorted(t.start for t in q.ops)
    assert padded.report["critical_path_cycles"] == plain.report["critical_path_cycles"]


@pytest.mark.parametrize("name", DEVICES)
@pytest.mark.parametrize("dd", sorted(SEQUENCES))
def test_echo_pulses_fill_live_gaps_and_share_no_channel(name, dd):
    device, padded = compiled(name, dd)
    program = padded.program
    by_qubit: dict[str, list] = {}
    for t in program.ops:
        for q in t.op.qubits:
            by_qubit.setdefault(q, []).append(t)
    names = SEQUENCES[dd]
    for q, ops in by_qubit.items():
        i = 0
        while i < len(ops):
            if not echo(ops[i]):
                i += 1
                continue
            run = []
            while i < len(ops) and echo(ops[i]):
                run.append(ops[i])
                i += 1
            assert i - len(run) >= 1 and i < len(ops), "an echo never opens or closes a qubit's timeline"
            before, after = ops[i - len(run) - 1], ops[i]
            assert before.op.name not in ("MEASURE", "PREP"), (q, before)
            assert tuple(t.op.name for t in run) == names
            assert all(t.op.angle == math.pi and t.op.qubits == (q,) for t in run)
            assert before.start + before.duration <= run[0].start and run[-1].start + run[-1].duration <= after.start
            gap = after.start - before.start - before.duration
            assert sum(t.duration for t in run) <= gap / 2
            x180 = math.ceil(device.qubit(q).x180.duration_s * program.clock_hz - 1e-6)
            assert all(t.duration == x180 for t in run)
    # a channel plays one thing at a time (a multiplexed readout block: same start and length)
    busy: dict[str, list] = {}
    for t in program.ops:
        if t.duration:
            for c in t.channels:
                busy.setdefault(c, []).append((t.start, t.start + t.duration))
    for c, intervals in busy.items():
        intervals = sorted(set(intervals))
        for (s0, e0), (s1, _) in zip(intervals, intervals[1:]):
            assert e0 <= s1, (c, (s0, e0), s1)


@pytest.mark.parametrize("name", ["planar16_d3", "heavyhex65_ecr"])
@pytest.mark.parametrize("proxy", ["X", "Z"])
def test_echo_sequences_are_identities_under_the_papers_noise(name, proxy):
    """Uniform noise sits at the protocol's fault locations: padding adds none, and since every sequence
    is the identity, the detector error model cannot change."""
    for dd in SEQUENCES:
        _, plain = compiled(name, None)
        _, padded = compiled(name, dd)
        a = timed_to_stim(plain.program, proxy, UniformNoise(1e-3)).detector_error_model()
        b = timed_to_stim(padded.program, proxy, UniformNoise(1e-3)).detector_error_model()
        assert a.approx_equals(b, atol=1e-12), dd
        noiseless = timed_to_stim(padded.program, proxy)
        noiseless.detector_error_model()  # raises if a detector or the observable were no longer deterministic


def test_gaps_inside_a_sequence_dephase_at_the_echo_rate():
    """Each idle channel of the calibration model, recomputed from T1, T2* and T2E by hand: a gap next to
    an echo pulse uses T2E, every other gap T2*."""
    device, padded = compiled("planar16_d3", "xy4")
    program = padded.program
    noise = CalibrationNoise(device, program.clock_hz)
    circuit = timed_to_stim(program, "X", noise, with_ideal_round=False)
    index = {q: i for i, q in enumerate(program.qubits)}
    expected = []
    last: dict[str, object] = {}
    for t in program.ops:
        for q in t.op.qubits:
            prev = last.get(q)
            if prev is not None and prev.op.name != "MEASURE" and prev.start + prev.duration < t.start:
                cycles = t.start - prev.start - prev.duration
                cal = device.qubit(q)
                secs = cycles / program.clock_hz
                t2 = cal.t2_echo_s if echo(prev) or echo(t) else cal.t2_ramsey_s
                px = (1 - math.exp(-secs / cal.t1_s)) / 4
                pz = max(0.0, (1 - math.exp(-secs / t2)) / 2 - px)
                if 2 * px + pz > 0:
                    expected.append((index[q], px, px, pz))
            last[q] = t
    got = [(inst.targets_copy()[0].value, *inst.gate_args_copy())
           for inst in circuit if inst.name == "PAULI_CHANNEL_1"]  # fmt: skip
    assert len(got) == len(expected)
    for g, e in zip(sorted(got), sorted(expected)):
        assert g[0] == e[0] and g[1:] == pytest.approx(e[1:], rel=1e-9, abs=1e-15)
    assert any(echo(t) for t in program.ops)


def test_an_unknown_sequence_is_refused():
    device, _ = compiled("planar16_d3", None)
    with pytest.raises(CtrlError, match="xy8"):
        compile_program(device, 3, dd="xy8")


def test_a_folder_compiled_with_echo_pulses_recompiles_with_them(tmp_path, capsys):
    """`ctrl compile --dd` records the sequence; `ctrl recompile --from` that folder keeps it."""
    from ctrl.cli import main

    device_file = str(ROOT / "device_configs" / "planar16_d3.yaml")
    assert main(["compile", "--device", device_file, "-d", "3", "--out", str(tmp_path / "a"), "--dd", "xy4"]) == 0
    args = ["recompile", "--from", str(tmp_path / "a"), "--device", device_file, "--cache", str(tmp_path / "cache")]
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    for name in ("program.json", "program.stim"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()
    assert json.loads((tmp_path / "b" / "report.json").read_text())["dynamical_decoupling"]["sequence"] == "xy4"
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "c"), "--dd", "xx"]) == 2  # another sequence: a new compile
    assert "dynamical decoupling xy4, not xx" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
