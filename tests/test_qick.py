"""QICK emitter: emitted tProc v2 programs replayed by the offline interpreter against the timed program.

Expected pulses, triggers and phases are computed here from the timed program and the device file alone
(frames as running sums of virtual Z and calibrated phase corrections); the emitter's plan is not used.
"""

from __future__ import annotations

import cmath
import dataclasses
import json
import math
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from ctrl.backends.qick import emit_qick, interpret, load_program, write_qick
from ctrl.backends.qick.plan import INITIAL_DELAY_S, INPUT_DELAY_S
from ctrl.compile.natives import NativeCircuit, NativeOp
from ctrl.compile.pipeline import compile_program
from ctrl.compile.schedule import schedule
from ctrl.compile.timed import TimedProgram
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.errors import CtrlError
from ctrl.outputs import write_outputs
from ctrl.protocol.ir import Check
from ctrl.realtime.decision import decision_program

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
DEVICES = {
    "planar16_d3": 3,
    "grid55_d5": 3,
    "heavyhex65_ecr": 3,
    "grid25_cz": 3,
}
_cache: dict = {}


def compiled(name: str, distance: int, dd: str | None = None):
    key = (name, distance) + ((dd,) if dd else ())
    if key not in _cache:
        device = load_device(ROOT / "device_configs" / f"{name}.yaml")
        result = compile_program(device, distance, dd=dd)
        _cache[("compiled",) + key] = result
        _cache[key] = (device, result.program, emit_qick(device, result.program, attempts=2))
    return _cache[key]


# ------------------------------------------------------------------------------------------ helpers


def base_of(programs, program) -> int:
    """Timing cycle at which the first attempt starts: the initial delay, then the reset block."""
    return int(round(INITIAL_DELAY_S * program.clock_hz)) + programs.report["reset_cycles"]


def trig_offset(device, q: str, clk: float) -> int:
    return int(round(device.qubit(q).readout.time_of_flight_s * clk))


def readout_if(device, q: str) -> float:
    cal, w = device.qubit(q).readout, device.qubit_wiring(q).readout
    return abs(cal.frequency_hz - w.lo_frequency_hz) if w.lo_frequency_hz else cal.frequency_hz


def measure_triggers(device, program, programs, board) -> dict:
    """(ro, trigger cycle) -> (key, qubit) of every measurement of the first attempt read on `board`."""
    clk = program.clock_hz
    base = base_of(programs, program)
    out = {}
    for t in program.ops:
        if t.op.name == "MEASURE":
            q = t.op.qubits[0]
            w = device.qubit_wiring(q).readout
            if w.board == board:
                out[(w.ro, base + t.start + trig_offset(device, q, clk))] = (t.op.key, q)
    return out


def bit_reader(device, program, programs, board: str, ones=(), slot_len=None, reset_ones=()):
    """read(ro, t) giving bit 1 (I far above threshold) for the measurements whose keys are in `ones` during
    the first attempt, bit 0 (far below) for everything else."""
    by_trigger = measure_triggers(device, program, programs, board)
    ro_qubits = {}
    for q in program.qubits:
        w = device.qubit_wiring(q).readout
        ro_qubits.setdefault((w.board, w.ro), []).append(q)

    def read(ro, t):
        key, q = by_trigger.get((ro, t), (None, None))
        if q is None:  # a reset readout (or a later attempt): bit 0 unless asked
            q = ro_qubits[(board, ro)][0]
            thr = device.qubit(q).readout.threshold
            return thr + 1000.0 if (ro, t) in reset_ones else thr - 1000.0
        thr = device.qubit(q).readout.threshold
        return thr + 1000.0 if key in ones else thr - 1000.0

    return read


def frames_and_expectations(device, program):
    """Per op, what the trace must show (independent of the emitter's plan)."""
    clk = program.clock_hz
    frames: dict[str, float] = {}
    out = []
    for t in program.ops:
        op = t.op
        if op.name == "VZ":
            frames[op.qubits[0]] = frames.get(op.qubits[0], 0.0) + op.angle
        elif op.name in ("RX", "RY"):
            q = op.qubits[0]
            cal = device.qubit(q)
            gate, turn = (cal.x90, math.pi / 2) if abs(op.angle) <= math.pi / 2 + 1e-9 else (cal.x180, math.pi)
            axis = 0.0 if op.name == "RX" else math.pi / 2
            phase = axis + (math.pi if op.angle < 0 else 0.0) - frames.get(q, 0.0)
            if op.tag == "dd":
                phase = axis  # echo pulses play in the fixed frame (ctrl.compile.dd)
            d = device.qubit_wiring(q).drive
            out.append(("pulse", d.board, d.gen, t, [(cal.frequency_hz, gate.pulse.amplitude * abs(op.angle) / turn,
                                                      phase, gate.duration_s)]))  # fmt: skip
        elif op.name == "CZ":
            a, b = op.qubits
            cal = device.coupler(a, b)
            el = cal.flux_pulse.element
            line = device.coupler_wiring(a, b).flux if el == "coupler" else device.qubit_wiring(el).flux
            out.append(("pulse", line.board, line.gen, t, [(0.0, cal.flux_pulse.pulse.amplitude, None, cal.duration_s)]))
            for q, p in op.phases:
                frames[q] = frames.get(q, 0.0) + p
        elif op.name == "ECR":
            c, tq = op.qubits
            cal = device.coupler(c, tq)
            fc, ft = frames.get(c, 0.0), frames.get(tq, 0.0)
            ftq, fcq = device.qubit(tq).frequency_hz, device.qubit(c).frequency_hz
            cw, tw = device.qubit_wiring(c).drive, device.qubit_wiring(tq).drive
            out.append(("ecr", cw.board, cw.gen, t, [
                (ftq, cal.cr_pulse.amplitude, cal.cr_phase_rad + math.pi - ft),
                (fcq, device.qubit(c).x180.pulse.amplitude, -fc),
                (ftq, cal.cr_pulse.amplitude, cal.cr_phase_rad - ft),
            ]))  # fmt: skip
            if cal.cancellation_pulse is not None:
                a = cal.cancellation_pulse.amplitude
                out.append(("cancel", tw.board, tw.gen, t, [(ftq, a, cal.cancellation_phase_rad + math.pi - ft),
                                                           (ftq, a, cal.cancellation_phase_rad - ft)]))  # fmt: skip
            for q, p in cal.phase_corrections_rad.items():
                frames[q] = frames.get(q, 0.0) + p
        elif op.name == "MEASURE":
            q = op.qubits[0]
            w = device.qubit_wiring(q).readout
            cal = device.qubit(q).readout
            out.append(("readout", w.board, w.gen, t, [(readout_if(device, q), cal.pulse.amplitude, w.tone)]))
            out.append(("trigger", w.board, w.ro, t, [(t.start + trig_offset(device, q, clk), cal.window_s * clk)]))
    return out


def same_phase(deg: float, rad: float) -> bool:
    d = (deg - math.degrees(rad)) % 360.0
    return min(d, 360.0 - d) < 1e-5


def check_attempt(device, program, traces: dict, base: int) -> int:
    """Every pulse and trigger of the attempt [base, base + duration) on every board is one the timed
    program asks for, on the right channel, at its exact cycle, no pulse longer than its slot; returns the
    number of events matched.
    `traces`: board -> (Trace, firmware description)."""
    firmware = {b: fw for b, (_, fw) in traces.items()}
    traces = {b: tr for b, (tr, _) in traces.items()}
    end = base + program.duration
    pool = {b: [e for e in tr.events if e.kind in ("pulse", "trigger") and base <= e.t < end]
            for b, tr in traces.items()}  # fmt: skip
    claimed: set = set()
    n = 0

    def take(board, kind, ch, lo, hi):
        got = [e for e in pool[board]
               if e.kind == kind and e.channel == ch and lo <= e.t <= hi and id(e) not in claimed]
        return sorted(got, key=lambda e: e.t)

    for kind, board, ch, t, specs in frames_and_expectations(device, program):
        s, e = base + t.start, base + t.end
        if kind == "pulse":
            (freq, gain, phase, duration_s), = specs
            got = take(board, "pulse", ch, s, s)
            assert len(got) == 1, f"{t}: expected one pulse on {board}/gen{ch} at {s}, got {got}"
            ev = got[0]
            assert abs(ev.freq_hz - freq) < 1e4, (t, ev)
            assert abs(ev.gain - gain) < 2e-4, (t, ev)
            if phase is not None:
                assert same_phase(ev.phase_deg, phase), (t, ev, math.degrees(phase) % 360)
            # the stated rounding: a pulse plays its calibrated duration in whole generator fabric cycles rounded
            # down (never longer than calibrated), and its slot is that duration in timing cycles rounded up
            f_fabric = firmware[board]["gens"][ch]["f_fabric"] * 1e6
            fabric = math.floor(duration_s * f_fabric + 1e-6)
            assert ev.length == math.ceil(fabric * program.clock_hz / f_fabric - 1e-9), (t, ev, duration_s)
            assert e - s == math.ceil(duration_s * program.clock_hz - 1e-6), (t, duration_s)
            assert ev.t + ev.length <= e, (t, ev)
        elif kind in ("ecr", "cancel"):
            got = take(board, "pulse", ch, s - 1, e - 1)
            assert len(got) == len(specs), f"{t}: expected {len(specs)} pulses on {board}/gen{ch}, got {got}"
            assert got[0].t == s, (t, got[0])
            for ev, (freq, gain, phase) in zip(got, specs):
                assert abs(ev.freq_hz - freq) < 1e4 and abs(ev.gain - gain) < 2e-4, (t, ev)
                assert same_phase(ev.phase_deg, phase), (t, ev, math.degrees(phase) % 360)
            for a, b in zip(got, got[1:]):
                assert a.t + a.length <= b.t, (t, a, b)
            assert got[-1].t + got[-1].length <= e, (t, got[-1])
        elif kind == "readout":
            (freq, gain, tone), = specs
            got = [x for x in pool[board] if x.kind == "pulse" and x.channel == ch and x.t == s]
            assert len(got) == 1, f"{t}: expected a readout pulse on {board}/gen{ch} at {s}, got {got}"
            ev = got[0]
            if tone is not None:
                assert tone in ev.tones, (t, ev)
            else:
                assert abs(ev.freq_hz - freq) < 1e4 and abs(ev.gain - gain) < 2e-4, (t, ev)
            assert ev.t + ev.length <= e, (t, ev)
            if id(ev) in claimed:
                continue  # a mux pulse serves its whole group
        else:
            (at, window), = specs
            got = take(board, "trigger", ch, base + at, base + at)
            assert len(got) == 1, f"{t}: expected a trigger on {board}/ro{ch} at {base + at}, got {got}"
            ev = got[0]
            rocfg = firmware[board]["readouts"][ch]
            assert abs(ev.length - window) <= program.clock_hz / (rocfg["f_output"] * 1e6) + 1, (t, ev, window)
            assert ev.t + ev.length <= e
        for ev in got:
            claimed.add(id(ev))
            n += 1
    extra = [e for b in pool for e in pool[b] if id(e) not in claimed]
    assert not extra, f"events the timed program does not ask for: {extra[:5]}"
    return n


def all_pass(name, distance, dd=None):
    """The programs of a device with every result passing: board -> (Trace, firmware description)."""
    device, program, programs = compiled(name, distance, dd)
    traces = {}
    for bp in programs.boards:
        read = bit_reader(device, program, programs, bp.board)
        traces[bp.board] = (interpret(bp.dump_dict(), bp.firmware_dict(), read), bp.firmware_dict())
    return device, program, programs, traces


# ------------------------------------------------------------------------------------------ must-show


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_all_pass_timeline_is_the_timed_program(name):
    device, program, programs, traces = all_pass(name, DEVICES[name])
    base = base_of(programs, program)
    n = check_attempt(device, program, traces, base)
    # the second attempt slot repeats the first, shifted by one slot
    slot = program.duration + programs.report["reset_cycles"]
    assert check_attempt(device, program, traces, base + slot) == n
    ops = sum(1 for t in program.ops if t.op.name in ("RX", "RY", "CZ", "MEASURE"))
    assert n >= ops
    for b, (tr, _) in traces.items():
        assert not tr.late, tr.late[:3]
        assert tr.counter == 2
        assert dict(tr.dmem) == {0: 0, 1: 0}  # both attempts ran to their end


@pytest.mark.parametrize("name", ["planar16_d3", "heavyhex65_ecr"])
def test_echo_pulses_play_where_the_timed_program_puts_them(name):
    """Dynamical decoupling adds pulses only: the boards play them, and nothing else moves."""
    device, program, programs, traces = all_pass(name, 3, "xy4")
    echoes = sum(1 for t in program.ops if t.op.tag == "dd")
    assert echoes > 0
    n = check_attempt(device, program, traces, base_of(programs, program))
    _, plain, plain_programs, _ = all_pass(name, 3)
    assert n == check_attempt(device, plain, all_pass(name, 3)[3], base_of(plain_programs, plain)) + echoes
    assert not any(tr.late for tr, _ in traces.values())


def test_all_pass_timeline_grid55_d5():
    """The 55-qubit device at d=5: 8 boards, 2392 ops (about a second)."""
    device, program, programs, traces = all_pass("grid55_d5", 5)
    assert len(programs.boards) == 8
    check_attempt(device, program, traces, base_of(programs, program))
    assert not any(tr.late for tr, _ in traces.values())


def test_every_decision_aborts_in_real_time_on_the_default_device():
    device, program, programs, traces = all_pass("planar16_d3", 3)
    (bp,) = programs.boards
    passing = traces[bp.board][0]
    base = base_of(programs, program)
    clk = program.clock_hz
    latency = device.wiring.controller.readout_to_decision_latency_s * clk
    reset = programs.report["reset_cycles"]
    keys = {r.name: r.keys for r in program.decisions.rules}
    ready = {t.op.key: t.ready for t in program.ops if t.op.key}
    decisions = [d for d in program.decisions.points if d.realtime]
    assert [d.index for d in decisions] == programs.report["realtime_decisions"] == list(range(len(program.decisions.points)))
    per_slot = {int(k): v for k, v in programs.report["boards"][bp.board]["reads_per_shot"].items()}

    def slot_events(tr, lo, hi):
        return [(e.kind, e.channel, e.t - lo, e.length, e.freq_hz, e.phase_deg, e.gain) for e in tr.events
                if e.kind in ("pulse", "trigger") and lo <= e.t < hi]  # fmt: skip

    slot_pass = program.duration + reset
    second_pass = slot_events(passing, base + program.duration, base + program.duration + slot_pass)
    slack = []
    for d in decisions:
        check = program.decisions.names(d)[0]
        read = bit_reader(device, program, programs, bp.board, ones={keys[check][0]})
        tr = interpret(bp.dump_dict(), bp.firmware_dict(), read)
        t_dec = base + d.time
        # the decision's data: its window ended, the value arrived, the tProc read it before the branch
        assert d.time >= max(ready[k] for k in keys[check]) + latency - 1
        windows = {t.start + trig_offset(device, t.op.qubits[0], clk) for t in program.ops if t.op.key in keys[check]}
        reads = [e for e in tr.of("read") if base <= e.t < t_dec and e.source - base in windows]
        assert reads
        for e in reads:
            (trig,) = [x for x in tr.triggers if x.channel == e.channel and x.t == e.source]
            assert e.t >= trig.t + trig.length + INPUT_DELAY_S * clk - 1, (e, trig)
            assert t_dec >= trig.t + trig.length + latency - 1, (e, trig)
        taken = [e for e in tr.branches if e.value == 1 and e.t < t_dec]
        assert taken, "the failing check must take a branch before the decision time"
        assert dict(tr.dmem) == {0: d.index + 1, 1: 0}
        assert tr.counter == 2 and not tr.late
        slack.append(min(e.scheduled - e.issued for e in tr.events if e.kind in ("pulse", "trigger", "config")))
        # until the decision the attempt is the all-pass attempt; after it nothing of the attempt starts
        assert slot_events(tr, base, t_dec) == slot_events(passing, base, t_dec)
        abort = programs.report["boards"][bp.board]["abort_cycles"][str(d.index)]
        next_slot = t_dec + abort
        new = [e for e in tr.events if e.kind in ("pulse", "trigger", "config") and t_dec <= e.t < next_slot]
        assert all(e.kind == "trigger" for e in new), new[:3]  # only dummy windows
        assert all(e.t >= t_dec for e in new)
        # every slot fires the same triggers per readout (acquire() reads a fixed number per shot)
        for lo, hi in ((0, next_slot), (next_slot, math.inf)):
            got = {}
            for e in tr.triggers:
                if lo <= e.t < hi and e.t >= int(round(INITIAL_DELAY_S * clk)):
                    got[e.channel] = got.get(e.channel, 0) + 1
            assert got == per_slot, (d.index, lo, got, per_slot)
        # later timing unchanged: the next slot is the all-pass slot, shifted
        assert slot_events(tr, next_slot, next_slot + slot_pass) == second_pass
    # the tProc issues every timed instruction ahead of its time, with margin (cycles)
    assert min(slack) >= 20, slack


def _raw_thresholds(name: str) -> dict[str, float]:
    """Each qubit's readout threshold as the device file states it (plain YAML, not ctrl's loader)."""
    import yaml

    doc = yaml.safe_load((ROOT / "device_configs" / f"{name}.yaml").read_text())
    return {q["name"]: float(q["readout"]["threshold"]) for q in doc["calibration"]["qubits"]}


def _near_reader(name, device, program, programs, bp, above=(), reset_above=()):
    """read(ro, t): the integer just above the calibrated threshold (floor + 1) for the measurements
    `above` (keys) and reset reads `reset_above` ((ro, trigger) pairs), the integer at or just below it
    (floor) for every other read of the first slot, far below in later slots. The stated rule: a result
    is 1 iff accumulated I is above the threshold."""
    thr = _raw_thresholds(name)
    base = base_of(programs, program)
    by_trigger = measure_triggers(device, program, programs, bp.board)
    resets: dict[int, list[int]] = {}  # ro -> reset triggers seen, in order: the plan's labels name their qubits

    def read(ro, t):
        if t < base:
            seen = resets.setdefault(ro, [])
            if t not in seen:
                seen.append(t)
            label = bp.plan.readout_labels[ro][seen.index(t)]
            assert label.startswith("reset:"), label
            return math.floor(thr[label[6:]]) + ((ro, t) in reset_above)
        key, q = by_trigger.get((ro, t), (None, None))
        if q is None:  # a later slot
            return -(10**6)
        return math.floor(thr[q]) + (key in above)

    return read


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_every_readout_decides_at_its_calibrated_threshold(name):
    """Each measured qubit's first result one unit above its threshold (everything else at it) aborts at the
    first real-time decision over a check holding it, on the board that decides it, and nowhere else;
    every reset read one unit above flips its qubit, at the threshold it does not. Thresholds come from
    the raw device file, so a threshold off by one, or with its sign flipped, in the emitted code fails."""
    device, program, programs = compiled(name, DEVICES[name])
    checks = {r.name: set(r.keys) for r in program.decisions.rules}
    realtime = set(programs.report["realtime_decisions"])
    decisions = sorted(program.decisions.points, key=lambda d: d.time)
    first_key = {}
    for t in sorted(program.ops, key=lambda t: t.start):
        if t.op.name == "MEASURE" and t.op.key:
            first_key.setdefault(t.op.qubits[0], t.op.key)
    tried = 0
    for bp in programs.boards:
        mine = {int(i) for i in programs.report["boards"][bp.board]["abort_cycles"]}
        at = _near_reader(name, device, program, programs, bp)
        calm = interpret(bp.dump_dict(), bp.firmware_dict(), at)
        assert dict(calm.dmem)[0] == 0, "results at the threshold must pass"
        for q, key in sorted(first_key.items()):
            if device.qubit_wiring(q).readout.board != bp.board:
                continue
            tr = interpret(bp.dump_dict(), bp.firmware_dict(),
                           _near_reader(name, device, program, programs, bp, above={key}))  # fmt: skip
            deciding = [d for d in decisions if d.index in realtime and any(key in checks[c] for c in program.decisions.names(d))]
            if deciding and deciding[0].index in mine:
                assert dict(tr.dmem)[0] == deciding[0].index + 1, (q, key)
            else:
                assert dict(tr.dmem)[0] == 0 and tr.pulses == calm.pulses, (q, key)
            tried += 1
        resets = [e for e in calm.of("read") if e.t < base_of(programs, program)]
        for e in resets:
            tr = interpret(bp.dump_dict(), bp.firmware_dict(), _near_reader(
                name, device, program, programs, bp, reset_above={(e.channel, e.source)}))  # fmt: skip
            assert len(tr.pulses) == len(calm.pulses) + 1, (bp.board, e)
    assert tried == len(first_key)


def test_multi_board_programs_post_select_every_check():
    device, program, programs, traces = all_pass("grid25_cz", 3)
    rep = programs.report
    assert rep["realtime_decisions"] == []
    assert {p["decision"] for p in rep["post_selected"]} == {d.index for d in program.decisions.points}
    assert sorted(rep["checks_post_selected"]) == sorted(r.name for r in program.decisions.rules)
    assert all("spans boards" in p["reason"] for p in rep["post_selected"])
    # failing results change nothing: nobody branches on them
    keys = [k for r in program.decisions.rules for k in r.keys]
    for bp in programs.boards:
        read = bit_reader(device, program, programs, bp.board, ones=set(keys))
        tr = interpret(bp.dump_dict(), bp.firmware_dict(), read)
        assert [e for e in tr.events if e.kind != "read"] == [e for e in traces[bp.board][0].events if e.kind != "read"]
    # every board's attempts start at the same cycle (shared start trigger, equal slot lengths)
    firsts = {b: min(e.t for e in tr.pulses if e.t >= base_of(programs, program)) for b, (tr, _) in traces.items()}
    starts = {t.start for t in program.ops if t.op.name in ("RX", "RY", "CZ", "MEASURE")}
    assert all(f - base_of(programs, program) in starts for f in firsts.values())


def test_machine_code_reloads_from_the_dump_and_compiles_are_deterministic():
    device, program, programs = compiled("planar16_d3", 3)
    (bp,) = programs.boards
    prog = load_program(bp.dump, bp.firmware)
    assert [list(map(int, w)) for w in prog.binprog["pmem"]] == bp.machine_code["pmem"]
    assert [list(map(int, w)) for w in prog.binprog["wmem"]] == bp.machine_code["wmem"]
    again = emit_qick(device, compile_program(device, 3).program, attempts=2)
    assert again.boards[0].asm == bp.asm and again.boards[0].dump == bp.dump
    assert again.boards[0].machine_code == bp.machine_code
    # acquire() bookkeeping survives the dump: shot counter, one loop of slots, triggers per shot
    assert prog.counter_addr == 1 and prog.loop_dims == [2]
    per_slot = programs.report["boards"][bp.board]["reads_per_shot"]
    assert {str(k): v["trigs"] for k, v in prog.ro_chs.items()} == per_slot


# ------------------------------------------------------------------------------------------ resources


def test_too_large_for_a_small_program_memory():
    """The RFSoC4x2 firmware here is a tProc v1 description (which the emitter refuses, below); the
    program-memory limit is tested on the ZCU216 v2 description given the 4x2's 1024-word pmem."""
    device, program, _ = compiled("planar16_d3", 3)
    fw = device.firmware_config("zcu216")
    fw["tprocs"][0]["pmem_size"] = 1024
    pattern = (r"board zcu216: program memory: (TimedOp\(.*\)|decision \d+ \(.*\)) needs instruction word 1025, "
               r"more than pmem_size 1024")
    with pytest.raises(CtrlError, match=pattern):
        emit_qick(device, program, attempts=2, firmware={"zcu216": fw})


def test_resource_errors_name_limit_board_and_operation():
    device, program, _ = compiled("planar16_d3", 3)

    def fails(edit, pattern):
        fw = device.firmware_config("zcu216")
        edit(fw)
        with pytest.raises(CtrlError, match=pattern):
            emit_qick(device, program, attempts=2, firmware={"zcu216": fw})

    fails(lambda fw: fw["tprocs"][0].update(wmem_size=500),
          r"board zcu216: waveform memory: TimedOp\(.*\) needs waveform 501, more than wmem_size 500")
    fails(lambda fw: fw["gens"][3].update(maxlen=4000),
          r"board zcu216 gen 3: envelope memory: TimedOp\(.*ECR.*\) needs a flat_top envelope .* exceed maxlen 4000")
    fails(lambda fw: fw["tprocs"][0].update(dmem_size=1), r"board zcu216: data memory: 2 attempt slots")
    fails(lambda fw: fw["gens"][4].update(n_tones=4),
          r"board zcu216 gen 4: TimedOp\(.*MEASURE.*\): tone \d is not one of the 4 tones")
    fails(lambda fw: fw["tprocs"][0].update(f_time=400.0), r"board zcu216: clock-grid: .* 430.08 MHz .* 400 MHz")
    fails(lambda fw: fw["tprocs"][0].update(type="axis_tproc64x32_x8"), r"board zcu216: .*tProc v1")
    for revision in (20, 28):  # qick 0.2.436 assembles revisions 21..27 only
        fails(lambda fw, r=revision: fw["tprocs"][0].update(revision=r), rf"board zcu216: tProc v2 revision {revision}")
    # a polyphase filter with 100 MHz channels that cannot share one (qick refuses it only on a board)
    fails(lambda fw: [r.update(pfb_dds_on_output=False, f_dds=200.0) for r in fw["readouts"] if "pfb_port" in r],
          r"board zcu216 ro \d: PFB channel: Two tones on same PFB channel")
    # a generator slowed to 40 MHz fabric: the 35.6 ns pulses are 1 cycle long
    fails(lambda fw: fw["gens"][5].update(f_fabric=40.0),
          r"board zcu216 gen 5: minimum pulse length: (TimedOp\(.*\)|reset flip of Q\d+) plays 1 fabric cycles")


# ------------------------------------------------------------------------------------------ a tiny program


def tiny_program(device) -> TimedProgram:
    """Q7 and Q8 on the mux feedline, Q13 and Q2 on dynamic readout 0, one ECR (Q15 controls Q0):
    a two-bit parity check, a single-bit check and a two-bit check on one dynamic readout (its first
    result is replaced before the decision, so it is captured into a register)."""
    clk = device.firmware["zcu216"].f_time_hz
    half = math.pi / 2
    ops = [
        NativeOp("PREP", ("Q7",), "t"), NativeOp("PREP", ("Q8",), "t"), NativeOp("PREP", ("Q0",), "t"),
        NativeOp("PREP", ("Q15",), "t"),
        NativeOp("RY", ("Q7",), "t", half), NativeOp("VZ", ("Q7",), "t", half), NativeOp("RX", ("Q8",), "t", math.pi),
        NativeOp("ECR", ("Q15", "Q0"), "t"), NativeOp("RY", ("Q7",), "t", -half / 2), NativeOp("RX", ("Q8",), "t", half),
        NativeOp("MEASURE", ("Q7",), "m", key="m7"), NativeOp("MEASURE", ("Q8",), "m", key="m8"),
        NativeOp("MEASURE", ("Q13",), "a", key="m13"), NativeOp("MEASURE", ("Q2",), "b", key="m2"),
    ]  # fmt: skip
    timed = schedule(NativeCircuit(tuple(ops), ("m7", "m8", "m13", "m2")), device, clk)
    checks = (Check("pair", "test", ("m7", "m8"), 0, 0), Check("single", "test", ("m13",), 0, 0),
              Check("chain", "test", ("m13", "m2"), 0, 0))  # fmt: skip
    latency = int(round(device.wiring.controller.readout_to_decision_latency_s * clk))
    ready = {t.op.key: t.ready for t in timed if t.ready >= 0}
    rule = decision_program(checks, ready, latency, duration=max(t.end for t in timed))
    return TimedProgram(
        device=device.name, calibration_hash=device.calibration_hash, wiring_hash=device.wiring_hash, distance=3,
        clock_hz=clk, qubits=("Q7", "Q8", "Q0", "Q13", "Q2", "Q15"), roles=("ancilla",) * 6, ops=tuple(timed),
        record=("m7", "m8", "m13", "m2"), decisions=rule, duration=rule.duration,
        abort_duration=int(round(2.4e-6 * clk)),
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny():
    device = load_device(DEFAULT_DEVICE)
    program = tiny_program(device)
    return device, program, emit_qick(device, program, attempts=2)


def tiny_golden(device, program, programs) -> dict[str, str]:
    """The golden files' contents for the tiny program: its assembly and its interpreted trace."""
    (bp,) = programs.boards
    tr = interpret(bp.dump_dict(), bp.firmware_dict(), bit_reader(device, program, programs, bp.board))
    text = "\n".join(repr(e) for e in tr.events if e.kind in ("pulse", "trigger", "config", "dmem", "end")) + "\n"
    return {"qick_tiny.asm": bp.asm, "qick_tiny_trace.txt": text}


def golden_thresholds_problems(asm: str, name: str = "planar16_d3") -> list[str]:
    """Every `TEST s8 - #N` after a `DPORT_RD pP` must use floor(threshold) + 1 of a qubit read on input port
    P, from the raw device file and firmware description (not ctrl's loader or plan); [] if so."""
    import re

    import yaml

    doc = yaml.safe_load((ROOT / "device_configs" / f"{name}.yaml").read_text())
    thr = _raw_thresholds(name)
    fw_file = {b["name"]: b["firmware"] for b in doc["wiring"]["boards"]}
    allowed: dict[int, set[int]] = {}
    for w in doc["wiring"]["qubits"]:
        ro = w["readout"]
        fw = json.loads((ROOT / "device_configs" / fw_file[ro["board"]]).read_text())
        port = fw["readouts"][ro["ro"]]["tproc_ch"]
        allowed.setdefault(port, set()).add(math.floor(thr[w["name"]]) + 1)
    problems, port, tests = [], None, 0
    for n, line in enumerate(asm.splitlines(), 1):
        if m := re.search(r"DPORT_RD p(\d+)", line):
            port = int(m.group(1))
        elif m := re.search(r"TEST -op\(s8 - #(-?\d+)\)", line):
            tests += 1
            if port is None or int(m.group(1)) not in allowed.get(port, set()):
                problems.append(f"line {n}: {line.strip()} after port p{port}: allowed {sorted(allowed.get(port, ()))}")
    return problems if tests else ["no threshold test in the program"]


def test_tiny_program_matches_its_golden_files(tiny):
    """The files are written only by tools/update_golden.py, which checks them first (as below)."""
    device, program, programs = tiny
    for name, got in tiny_golden(device, program, programs).items():
        assert got == (GOLDEN / name).read_text(), f"{name} changed; review it, then python tools/update_golden.py"
    (bp,) = programs.boards
    tr = interpret(bp.dump_dict(), bp.firmware_dict(), bit_reader(device, program, programs, bp.board))
    check_attempt(device, program, {bp.board: (tr, bp.firmware_dict())}, base_of(programs, program))


def test_golden_thresholds_are_the_device_files():
    assert golden_thresholds_problems((GOLDEN / "qick_tiny.asm").read_text()) == []
    # and the check itself fails on a threshold one unit off
    asm = (GOLDEN / "qick_tiny.asm").read_text().replace("TEST -op(s8 - #25)", "TEST -op(s8 - #24)", 1)
    assert len(golden_thresholds_problems(asm)) == 1


def _r(phi: float, theta: float) -> np.ndarray:
    n = math.cos(phi) * np.array([[0, 1], [1, 0]]) + math.sin(phi) * np.array([[0, -1j], [1j, 0]])
    return math.cos(theta / 2) * np.eye(2) - 1j * math.sin(theta / 2) * n


def _rz(a: float) -> np.ndarray:
    return np.diag([cmath.exp(-0.5j * a), cmath.exp(0.5j * a)])


def test_virtual_z_folding_is_the_program_unitary(tiny):
    """Q7 plays RY(pi/2), VZ(pi/2), RY(-pi/4): the pulses it gets (phase phi rotates about
    cos(phi) X + sin(phi) Y) multiply to RZ(-frame) times the program's unitary."""
    device, program, programs = tiny
    (bp,) = programs.boards
    tr = interpret(bp.dump_dict(), bp.firmware_dict(), bit_reader(device, program, programs, bp.board))
    base = base_of(programs, program)
    gen = device.qubit_wiring("Q7").drive.gen
    amp = device.qubit("Q7").x90.pulse.amplitude
    pulses = [e for e in tr.pulses if e.channel == gen and base <= e.t < base + program.duration]
    assert len(pulses) == 2
    u_phys = np.eye(2)
    for e in pulses:
        u_phys = _r(math.radians(e.phase_deg), e.gain / amp * math.pi / 2) @ u_phys
    u_prog = np.eye(2)
    frame = 0.0
    for t in program.ops:
        if t.op.qubits == ("Q7",):
            if t.op.name == "VZ":
                u_prog = _rz(t.op.angle) @ u_prog
                frame += t.op.angle
            elif t.op.name == "RY":
                u_prog = _r(math.pi / 2, t.op.angle) @ u_prog
    target = _rz(-frame) @ u_prog
    overlap = abs(np.trace(u_phys.conj().T @ target)) / 2
    assert overlap == pytest.approx(1.0, abs=1e-6)


def test_tiny_program_parity_checks_in_registers(tiny):
    """Each check fails exactly when the parity of its bits is odd; the captured result of Q13 is read
    before Q2's window replaces it on the shared readout."""
    device, program, programs = tiny
    (bp,) = programs.boards
    names = {d.index: program.decisions.names(d) for d in program.decisions.points}
    for ones, failing in (
        (set(), None), ({"m7"}, "pair"), ({"m7", "m8"}, None), ({"m13"}, "single"), ({"m2"}, "chain"),
        ({"m13", "m2"}, "single"),
    ):  # fmt: skip
        read = bit_reader(device, program, programs, bp.board, ones=ones)
        tr = interpret(bp.dump_dict(), bp.firmware_dict(), read)
        outcome = dict(tr.dmem)[0]
        if failing is None:
            assert outcome == 0, ones
        else:
            assert outcome > 0 and failing in names[outcome - 1], (ones, outcome, names)
        assert not tr.late
    # Q13 and Q2 share ro 0: Q13's value was read before Q2's window ended
    read = bit_reader(device, program, programs, bp.board)
    tr = interpret(bp.dump_dict(), bp.firmware_dict(), read)
    ro0 = device.qubit_wiring("Q13").readout.ro
    reads = [e for e in tr.of("read", ro0) if e.t < base_of(programs, program) + program.duration]
    assert len({e.source for e in reads}) >= 2


def test_active_reset_flips_only_what_reads_one(tiny):
    device, program, programs = tiny
    (bp,) = programs.boards
    clean = interpret(bp.dump_dict(), bp.firmware_dict(), bit_reader(device, program, programs, bp.board))
    first_reset = [e for e in clean.of("read") if e.t < base_of(programs, program)]
    assert first_reset
    target = first_reset[0]
    read = bit_reader(device, program, programs, bp.board, reset_ones={(target.channel, target.source)})
    tr = interpret(bp.dump_dict(), bp.firmware_dict(), read)
    extra = [e for e in tr.pulses if e not in clean.pulses]
    assert len(extra) == 1 and extra[0].t < base_of(programs, program)
    assert extra[0].t >= target.t  # the flip is played after its result was read
    assert [e for e in tr.pulses if e != extra[0]] == list(clean.pulses)
    # Q0 is read on ro 8, which does not feed the tProc: its reset is heralded, listed in the report
    assert programs.report["boards"][bp.board]["heralded_reset"] == ["Q0"]


def test_outputs_written(tiny, tmp_path):
    device, program, programs = tiny
    paths = write_qick(programs, tmp_path)
    assert sorted(p.name for p in paths) == ["firmware_zcu216.json", "qick_zcu216.asm", "qick_zcu216.json"]
    dump = json.loads((tmp_path / "qick_zcu216.json").read_text())
    fw = json.loads((tmp_path / "firmware_zcu216.json").read_text())
    assert fw == device.firmware_config("zcu216")
    prog = load_program(dump, fw)
    assert [list(map(int, w)) for w in prog.binprog["pmem"]] == programs.boards[0].machine_code["pmem"]


def test_compile_outputs_include_the_qick_programs(tmp_path):
    device, program, _ = compiled("planar16_d3", 3)
    result = _cache[("compiled", "planar16_d3", 3)]
    a, b = tmp_path / "a", tmp_path / "b"
    names = sorted(p.name for p in write_outputs(result, a, device))
    write_outputs(result, b, device)
    assert names == ["firmware_zcu216.json", "program.json", "program.stim", "qick_zcu216.asm", "qick_zcu216.json",
                     "report.json"]  # fmt: skip
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n
    report = json.loads((a / "report.json").read_text())
    qick = report["qick"]
    assert qick["attempt_slots"] == 1000 and qick["realtime_decisions"] == list(range(len(program.decisions.points)))
    assert qick["boards"]["zcu216"]["usage"]["pmem_words"] <= 4096
    assert report["versions"]["qick"] == metadata.version("qick")  # the assembler of that machine code
    assert sorted(p.name for p in write_outputs(result, tmp_path / "c")) == ["program.json", "program.stim",
                                                                            "report.json"]  # fmt: skip
    assert "qick" not in json.loads((tmp_path / "c" / "report.json").read_text())["versions"]


# ------------------------------------------------------------------------------------------ machine code


def test_machine_code_decodes_to_what_assembles_back_to_it():
    import copy

    from qick.tprocv2_assembler import Assembler

    from ctrl.backends.qick.decode import decode_pmem, decode_wmem

    for name in ("planar16_d3", "grid25_cz"):
        _, _, programs = compiled(name, 3)
        for bp in programs.boards:
            pmem = bp.machine_code["pmem"]
            _, again = Assembler.list2bin(copy.deepcopy(decode_pmem(pmem)), {})
            assert [list(map(int, w)) for w in again] == pmem, bp.board
            waves = bp.dump_dict()["waves"]
            assert [{k: w[k] % 2**32 for k in w} for w in decode_wmem(bp.machine_code["wmem"])] == [
                {k: int(w[k]) % 2**32 for k in ("freq", "phase", "env", "gain", "length", "conf")} for w in waves
            ]


def test_interpreting_machine_code_gives_the_same_trace():
    """What a board receives (binprog words, readout lengths, mixer frequencies) replays like the dump."""
    device, program, programs = compiled("planar16_d3", 3)
    (bp,) = programs.boards
    dump = bp.dump_dict()
    image = {
        "pmem": bp.machine_code["pmem"], "wmem": bp.machine_code["wmem"], "envelopes": dump["envelopes"],
        "ro_chs": {k: {"length": v["length"]} for k, v in dump["ro_chs"].items()},
        "gen_chs": {k: {"mixer_freq": v["mixer_freq"]} for k, v in dump["gen_chs"].items() if "mixer_freq" in v},
    }  # fmt: skip
    keys = {r.name: r.keys for r in program.decisions.rules}
    for ones in (set(), {keys[program.decisions.names(program.decisions.points[5])[0]][0]}):
        read = bit_reader(device, program, programs, bp.board, ones=ones)
        a = interpret(dump, bp.firmware_dict(), read)
        b = interpret(image, bp.firmware_dict(), read)
        assert [e for e in a.events if e.kind != "branch"] == [e for e in b.events if e.kind != "branch"]
        assert a.dmem == b.dmem and a.counter == b.counter


def test_interpreter_runs_programs_written_with_qick_macros():
    """A client's AveragerProgramV2 (loops, a flat_top pulse, read_and_jump): what issue #9's emulated
    board will be asked to run."""
    from qick import QickConfig
    from qick.asm_v2 import AveragerProgramV2
    from qick.helpers import NpEncoder

    from ctrl.backends.qick.assemble import quiet_qick

    fw = load_device(DEFAULT_DEVICE).firmware_config("zcu216")

    class Program(AveragerProgramV2):
        def _initialize(self, cfg):
            self.declare_gen(ch=0, nqz=1)
            self.declare_gen(ch=5, nqz=2, mixer_freq=5000)
            self.declare_readout(ch=0, length=1.0)
            self.add_readoutconfig(ch=0, name="ro", freq=500, gen_ch=0)
            self.add_gauss(ch=5, name="g", sigma=0.02, length=0.1, even_length=True)
            self.add_pulse(ch=5, name="ft", style="flat_top", envelope="g", freq=5100, phase=30, gain=0.5, length=0.3)
            self.add_pulse(ch=0, name="c", style="const", freq=500, phase=0, gain=0.5, length=0.3)
            self.add_loop("x", 3)

        def _body(self, cfg):
            self.send_readoutconfig(ch=0, name="ro", t=0)
            self.pulse(ch=5, name="ft", t=0)
            self.pulse(ch=0, name="c", t=0)
            self.trigger(ros=[0], t=0.5)
            self.wait_auto(0.1)
            self.delay_auto(0.3)
            self.read_and_jump(ro_ch=0, component="I", threshold=100, test=">=", label="skip")
            self.pulse(ch=5, name="ft", t=0)
            self.label("skip")
            self.delay_auto(0.1)

    with quiet_qick():
        dump = json.loads(json.dumps(Program(QickConfig(fw), reps=2, final_delay=0.5).dump_prog(), cls=NpEncoder))
    low = interpret(dump, fw, lambda ro, t: 0.0)
    high = interpret(dump, fw, lambda ro, t: 500.0)
    assert low.counter == high.counter == 6 and not low.late and not high.late
    # flat_top = ramp, flat, ramp, and the int4 generator's zero-gain tail, back to back on gen 5
    first = low.of("pulse", 5)[:4]
    assert [e.t for e in first[1:]] == [e.t + e.length for e in first[:-1]]
    assert [round(e.gain, 3) for e in first] == [0.5, 0.25, 0.5, 0.0]
    assert all(abs(e.freq_hz - 5100e6) < 1e3 for e in first[:3])
    assert len(low.of("pulse", 5)) == 6 * 8 and len(high.of("pulse", 5)) == 6 * 4  # the jump skips the second
    assert len(low.triggers) == 6 and all(e.length == 430 for e in low.triggers)


# ------------------------------------------------------------------------------------------ pulse-only patch


def _edited(tmp_path: Path, base: str, name: str, edit):
    """A shipped device file edited as YAML data, in tmp_path (firmware reached by a symlink)."""
    import yaml

    fw = tmp_path / "firmware"
    if not fw.exists():
        fw.symlink_to(ROOT / "device_configs" / "firmware")
    doc = yaml.safe_load((ROOT / "device_configs" / f"{base}.yaml").read_text())
    if edit is not None:
        edit(doc)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_device(path)


def _qubits(doc, names=None):
    return [q for q in doc["calibration"]["qubits"] if names is None or q["name"] in names]


def _amplitudes(doc):
    for q in _qubits(doc):
        q["x90"]["pulse"]["amplitude"] = round(q["x90"]["pulse"]["amplitude"] * 1.013, 6)
    for c in doc["calibration"]["couplers"]:
        for part in ("cr_pulse", "cancellation_pulse"):
            if c.get(part):
                c[part]["amplitude"] = round(c[part]["amplitude"] * 0.97, 6)
        if "flux_pulse" in c:
            c["flux_pulse"]["pulse"]["amplitude"] = round(c["flux_pulse"]["pulse"]["amplitude"] * 1.02, 6)


def _drag_x180(doc):  # x90 and x180 shared an envelope: now they do not (the envelope table changes)
    for q in _qubits(doc, {"Q0", "Q7", "Q8"}):
        q["x180"]["pulse"]["drag_coefficient"] = 0.6


def _drag_and_sigma(doc):
    for q in _qubits(doc, {"Q2", "Q9"}):
        for gate in ("x90", "x180"):
            q[gate]["pulse"]["drag_coefficient"] = round(q[gate]["pulse"]["drag_coefficient"] + 0.05, 4)
            q[gate]["pulse"]["sigma_s"] = 8.5e-09
    q = _qubits(doc, {"Q5"})[0]
    q["anharmonicity_hz"] = q["anharmonicity_hz"] + 1.0e6


def _frequencies(doc):  # drive and readout frequencies: mixers, mux tones, dynamic readout configurations
    for q in _qubits(doc, {"Q2", "Q7", "Q10", "Q14"}):
        q["frequency_hz"] = q["frequency_hz"] + 2.5e5
        q["readout"]["frequency_hz"] = q["readout"]["frequency_hz"] + 1.0e5
        q["readout"]["iq_rotation_rad"] = round(q["readout"]["iq_rotation_rad"] + 0.3, 4)
    _qubits(doc, {"Q9"})[0]["readout"]["pulse"]["amplitude"] = 0.2  # a mux tone's gain


def _thresholds(doc):
    for i, q in enumerate(_qubits(doc)):
        q["readout"]["threshold"] = q["readout"]["threshold"] + (7.5 if i % 2 else -40.0)


def _phases(doc):  # ECR: CR and cancellation phases, the corrections that move frames
    for c in doc["calibration"]["couplers"]:
        if "cr_phase_rad" in c:
            c["cr_phase_rad"] = round(c["cr_phase_rad"] + 0.05, 6)
            c["cancellation_phase_rad"] = round(c["cancellation_phase_rad"] - 0.02, 6)
        c["phase_corrections_rad"] = {k: round(v + 0.1, 6) for k, v in c.get("phase_corrections_rad", {}).items()}


def _same_programs(a, b) -> None:
    assert [bp.board for bp in a.boards] == [bp.board for bp in b.boards]
    for x, y in zip(a.boards, b.boards):
        assert x.asm == y.asm, x.board
        assert x.dump == y.dump, x.board
        assert x.firmware == y.firmware and x.usage == y.usage, x.board
        assert x.machine_code == y.machine_code, x.board
    assert a.report == b.report


_PATCHES = [
    ("planar16_d3", _amplitudes), ("planar16_d3", _drag_x180), ("planar16_d3", _drag_and_sigma),
    ("planar16_d3", _frequencies), ("planar16_d3", _thresholds), ("planar16_d3", _phases),
    ("grid25_cz", _phases), ("grid25_cz", _amplitudes), ("heavyhex65_ecr", _amplitudes),
]  # fmt: skip


@pytest.mark.parametrize("base, edit", _PATCHES, ids=[f"{b}-{e.__name__[1:]}" for b, e in _PATCHES])
def test_pulse_only_patch_equals_a_full_emission(tmp_path, base, edit):
    """The previous programs patched with the new calibration are, byte for byte, what emit_qick writes
    for it (asm, dump, firmware, usage, machine code, report); and the patch of a patch too."""
    from ctrl.backends.qick import patch_qick

    old = _edited(tmp_path, base, "old", None)
    compiled(base, 3)
    first = compile_program(old, 3, placement=_cache[("compiled", base, 3)].placement)  # searched once per module
    program = first.program
    previous = emit_qick(old, program, attempts=3)
    new = _edited(tmp_path, base, "new", edit)
    # the same schedule (the placement does not look at pulses; passed to skip its search); a CZ's
    # corrections follow the calibration
    new_program = compile_program(new, 3, placement=first.placement).program
    assert [(t.start, t.duration) for t in new_program.ops] == [(t.start, t.duration) for t in program.ops]
    patched = patch_qick(previous, new, new_program)
    full = emit_qick(new, new_program, attempts=3)
    _same_programs(patched, full)
    assert any(x.dump != y.dump or x.asm != y.asm for x, y in zip(patched.boards, previous.boards))
    assert patched.boards[0].plan.attempt == full.boards[0].plan.attempt  # the plan, on demand
    back = patch_qick(patched, old)  # and back: the patched sheet is the one a full emission would keep
    _same_programs(back, previous)


def test_what_cannot_be_patched_is_emitted_in_full_and_says_why(tmp_path):
    """A CZ flux pulse turning from flat_top into const changes the waveform table: reemit_qick emits
    anew (equal to emit_qick) and gives the reason; a negative gain is the full emission's error."""
    from ctrl.backends.qick import NotPatchable, patch_qick, reemit_qick

    old = _edited(tmp_path, "grid25_cz", "old", None)
    compiled("grid25_cz", 3)
    first = compile_program(old, 3, placement=_cache[("compiled", "grid25_cz", 3)].placement)
    program = first.program
    previous = emit_qick(old, program, attempts=2)

    used = set(next(t.op.qubits for t in program.ops if t.op.name == "CZ"))

    def const_flux(doc):
        c = next(c for c in doc["calibration"]["couplers"] if set(c["qubits"]) == used)
        c["flux_pulse"]["pulse"] = {"shape": "const", "amplitude": 0.3}

    new = _edited(tmp_path, "grid25_cz", "const", const_flux)
    with pytest.raises(NotPatchable, match=r"CZ flux pulse of .*: its style, length, channel or readout changed"):
        patch_qick(previous, new)
    calls = []
    new_program = compile_program(new, 3, placement=first.placement).program
    again, why = reemit_qick(previous, new, lambda: calls.append(1) or new_program)
    assert calls == [1] and "style" in why
    _same_programs(again, emit_qick(new, new_program, attempts=2))

    def too_loud(doc):
        _qubits(doc, used)[0]["x180"]["pulse"]["amplitude"] = -0.5

    loud = _edited(tmp_path, "grid25_cz", "loud", too_loud)
    with pytest.raises(NotPatchable, match="gain -0.5 is outside"):
        patch_qick(previous, loud)
    with pytest.raises(CtrlError, match="gain -0.5 is outside"):
        # the program as a recompile keeps it for the new calibration: same ops, the new hash
        reemit_qick(previous, loud, dataclasses.replace(program, calibration_hash=loud.calibration_hash))
    # another wiring, or no sheet: emitted anew
    assert reemit_qick(None, old, program)[1] == "no previous emission with a sheet"


def test_patch_converts_as_qick_does():
    """The patch's own conversions against qick's: waveform words (Waveform.compile), phases (deg2reg on
    a QickParam), the lowering's phase arithmetic done elementwise, the dump's JSON."""
    from qick import QickConfig
    from qick.asm_v2 import QickParam, Waveform
    from qick.helpers import NpEncoder

    from ctrl.backends.qick.convert import Converter, wave_words
    from ctrl.backends.qick.dumpjson import dumps, render_dump
    from ctrl.backends.qick.assemble import quiet_qick
    from ctrl.backends.qick.patch_waves import _RAD_TO_DEG
    from ctrl.backends.qick.units import play_phase

    rng = np.random.default_rng(7)
    regs = np.column_stack([rng.integers(-2**40, 2**40, 200), rng.integers(0, 2**33, 200), rng.integers(0, 2**25, 200),
                            rng.integers(-2**31, 2**31, 200), rng.integers(3, 2**16, 200), rng.integers(0, 2**17, 200)])
    assert wave_words(regs).tolist() == [Waveform(*map(int, r)).compile().tolist() for r in regs]
    fw = load_device(DEFAULT_DEVICE).firmware_config("zcu216")
    with quiet_qick():
        soccfg = QickConfig(fw)
    phases = np.concatenate([rng.uniform(0, 360, 300), [0.0, 359.99999999999994, 180.0, 1e-300, 90.00000000000001]])
    frames = rng.uniform(-20, 20, len(phases))
    got = Converter(None, fw, "zcu216").phases(3, phases.tolist())
    assert got.tolist() == [soccfg.deg2reg(deg=QickParam(start=float(p), spans={}), gen_ch=3).start for p in phases]
    for axis, extra in ((0.0, math.pi), (math.pi / 2, 0.0)):
        vec = ((axis - frames + extra) * _RAD_TO_DEG) % 360.0
        assert vec.tolist() == [math.degrees(play_phase(("rot", axis, extra), f)) % 360.0 for f in frames.tolist()]
    device, _, programs = compiled("planar16_d3", 3)
    dump = load_program(programs.boards[0].dump, programs.boards[0].firmware).dump_prog()
    assert render_dump(dump)[0] == json.dumps(dump, cls=NpEncoder, sort_keys=True, indent=1)
    odd = {3: [1.5, float("nan"), -0.0, 1e300], 10: {"é": "\u2603", "t": (1, None, True)}, 2: {}, "x": [[], [{}]],
           "n": np.int64(4), "f": np.float64(0.1)}  # fmt: skip
    odd = {str(k): v for k, v in odd.items()} | {"ints": {3: "a", 10: "b", 2: "c"}}
    assert dumps(odd) == json.dumps(odd, cls=NpEncoder, sort_keys=True, indent=1)


def test_faster_emission_writes_what_qick_writes(monkeypatch):
    """The emitter spares qick's assembler a deep copy (its AcquireProgramV2) and converts constant and
    envelope pulses itself (convert.py) instead of add_pulse; qick's plain class and add_pulse give the same."""
    from qick.asm_v2 import AcquireProgramV2

    import ctrl.backends.qick.assemble as assemble_module

    fast = {name: compiled(name, 3) for name in ("planar16_d3", "grid25_cz")}
    monkeypatch.setattr(assemble_module, "_PROGRAM", AcquireProgramV2)
    monkeypatch.setattr(assemble_module, "_FAST_PULSES", False)
    for device, program, programs in fast.values():
        _same_programs(emit_qick(device, program, attempts=2), programs)
