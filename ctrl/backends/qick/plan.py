"""Lowering a timed program to per-board QICK plans: exact cycles, folded frames, reset, decisions, aborts.

A plan is everything a board plays, with times in integer cycles of the tProc timing clock, before any
qick object exists; `emit.py` turns it into a tProc v2 program and `resources.py` checks it against the
firmware. Conventions (docs/qick.md says why):

- one loop iteration = one attempt slot: the reset block, then the attempt (the TimedProgram, times
  unchanged), ended either by completion or by an abort at a real-time decision;
- a drive pulse R_axis(angle) plays with phase `axis - frame` (degrees), where the frame of a qubit is
  the sum of every virtual Z so far (VZ ops and the calibrated phase corrections of CZ and ECR gates);
  QICK phase phi rotates about cos(phi) X + sin(phi) Y;
- a result bit is 1 when the accumulated I of the readout (rotated by the calibrated angle in the
  readout's down-conversion phase) is above the calibrated threshold: I >= floor(threshold) + 1;
- a result reaches the tProc input `INPUT_DELAY_S` after its window ends; a decision at `t` (the
  decision point's time, window end + the device's latency) reads after the data arrived and branches with
  the reference time already advanced to `t`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from ctrl.backends.qick.boardplan import (Block, BoardPlan, Capture, Configure, Decision, Flip, Play, PostSelected,
                                          Read, Trigger)  # fmt: skip
from ctrl.backends.qick.units import Units, play_phase
from ctrl.compile.dd import is_dd
from ctrl.compile.timed import TimedProgram
from ctrl.errors import CtrlError

INPUT_DELAY_S = 0.1e-6  # window end -> value at the tProc input port (QICK labs: wait_auto(0.1))
MIN_ISSUE_S = 0.1e-6  # at least this much of the decision latency is left to read, test and issue
INITIAL_DELAY_S = 1.0e-6  # slack before the first reset (AveragerProgramV2's initial_delay)
TRIGGER_WIDTH = 10  # timing cycles a readout trigger stays high (qick's default)
WAIT_OFFSET = 10  # qick's WAIT releases this many cycles before its target (Assembler.WAIT_TIME_OFFSET)


def plan_program(device, program: TimedProgram, attempts: int, firmware: dict | None = None) -> dict[str, BoardPlan]:
    """One plan per board the program uses (a board holding any of its channels or qubits). `firmware`
    maps a board to the description to compile against instead of the device file's."""
    return lower(device, program, attempts, firmware)[0]


def lower(device, program: TimedProgram, attempts: int, firmware: dict | None = None):
    """(plans, the lowering): the lowering is a `Units` whose `pulse` memo, frame `tape`, `corrections`
    and `readout_users` say what each pulse was computed from (the emitter keeps them for a patch)."""
    lo = _Lowering(device, program, firmware or {})
    return lo.run(attempts), lo


def board_firmware(device, board: str, firmware: dict) -> dict:
    """The firmware description a board is compiled against, checked to be a tProc v2 that qick supports."""
    fw = firmware[board] if board in firmware else device.firmware_config(board)
    tp = fw.get("tprocs", [{}])[0]
    if tp.get("type") != "qick_processor":
        raise CtrlError(
            f"board {board}: firmware has a tProc of type {tp.get('type')!r} (tProc v1); the QICK emitter targets "
            "tProc v2 (qick_processor)"
        )
    if not 21 <= int(tp.get("revision", 0)) <= 27:
        raise CtrlError(f"board {board}: tProc v2 revision {tp.get('revision')}: qick 0.2.436 assembles 21..27")
    return fw


@dataclass
class _Measure:
    key: str
    qubit: str
    board: str
    ro: int
    port: int
    trig: int  # attempt time
    end: float  # window end, exact timing cycles
    threshold: int


class _Lowering(Units):
    def __init__(self, device, program: TimedProgram, firmware: dict) -> None:
        self.program = program
        boards = set()
        for t in program.ops:
            for ch in t.channels:
                if "/" in ch:
                    boards.add(ch.split("/")[0])
        for q in program.qubits:
            w = device.target.qubit_wiring(q)
            boards.update({w.drive.board, w.readout.board})
        self.boards = sorted(boards)
        clk = program.clock_hz
        fws: dict[str, dict] = {}
        for b in self.boards:
            fw = board_firmware(device, b, firmware)
            f_time = fw["tprocs"][0]["f_time"] * 1e6
            if abs(f_time - clk) > 1e-3:
                raise CtrlError(
                    f"board {b}: clock-grid: the timed program counts cycles of {clk / 1e6:.6g} MHz but the "
                    f"tProc timing clock is {f_time / 1e6:.6g} MHz"
                )
            fws[b] = fw
        super().__init__(device.target, clk, fws)
        latency = self.target.decision_latency_s
        self.delta = math.ceil(INPUT_DELAY_S * self.clk - 1e-9)
        self.latency = int(round(latency * self.clk))
        if latency < INPUT_DELAY_S + MIN_ISSUE_S - 1e-12:
            raise CtrlError(
                f"controller.readout_to_decision_latency_s {latency:g} s: the tProc needs {INPUT_DELAY_S:g} s for the "
                f"result to arrive and {MIN_ISSUE_S:g} s to read, test and issue; at least "
                f"{INPUT_DELAY_S + MIN_ISSUE_S:g} s"
            )
        # shared bookkeeping, filled by the attempt and the reset
        self.items: dict[str, list] = {b: [] for b in self.boards}
        self.reset_items: dict[str, list] = {b: [] for b in self.boards}
        self.gen_freqs: dict[tuple[str, int], set] = {}
        self.measures: dict[str, _Measure] = {}
        self.frames: dict[str, float] = {}
        # every frame increment in order, per qubit: a VZ angle (float), or ("cz", a, b) / ("ecr", c, t) for a
        # gate's calibrated correction; a pulse records how many of its frame's increments precede it
        self.tape: dict[str, list] = {}
        self.corrections: dict[tuple[str, str], tuple] = {}  # gate -> ((qubit, radians), ...) it applied

    def turn(self, q: str, angle: float, entry) -> None:
        self.frames[q] = self.frames.get(q, 0.0) + angle
        self.tape.setdefault(q, []).append(entry)

    def play(self, out: list, key: tuple, t: int, end: int, what: str) -> Play:
        """Append the pulse of role `key` at `t`, in the current frame."""
        p = self.pulse(key, what)
        if not 0 <= p.gain <= 1.0 + 1e-9:
            raise CtrlError(f"board {p.board} gen {p.gen}: {what}: gain {p.gain:.4g} is outside [0, 1] of full scale")
        self.gen_freqs.setdefault((p.board, p.gen), set()).add(p.freq_hz)
        if p.frame is None:
            frame, n = 0.0, -1
        else:
            frame, n = self.frames.get(p.frame, 0.0), len(self.tape.get(p.frame, ()))
        play = Play(t=t, gen=p.gen, style=p.style, cycles=p.cycles, end_limit=end, what=what, freq_hz=p.freq_hz,
                    phase_deg=math.degrees(play_phase(p.phase, frame)) % 360.0, gain=min(p.gain, 1.0),
                    envelope=p.envelope, outsel=p.outsel, ro=p.ro, role=(key, n))  # fmt: skip
        out.append(play)
        return play

    def run(self, attempts: int) -> dict[str, BoardPlan]:
        prog = self.program
        mux_groups: dict[tuple[str, int, int], list] = {}
        for t in prog.ops:
            op = t.op
            name = op.name
            if name == "VZ":
                self.turn(op.qubits[0], op.angle, op.angle)
            elif name == "PREP":
                pass
            elif name in ("RX", "RY"):
                q, axis = op.qubits[0], 0.0 if name == "RX" else math.pi / 2
                # An echo sequence is the identity about any axis: played in the fixed frame, each qubit's
                # echo pulses are two waveforms, not one per frame it happens to be in.
                self.drive(q, ("dd", q, axis) if is_dd(op) else ("rot", q, op.angle, axis), t, repr(t))
            elif name == "CZ":
                self.cz(t, repr(t))
            elif name == "ECR":
                self.ecr(t, repr(t))
            elif name == "MEASURE":
                self.measure(t, repr(t), mux_groups)
            else:
                raise CtrlError(f"{t!r}: no QICK lowering for native op {name}")
        for (board, gen, start), members in sorted(mux_groups.items()):
            self.items[board].append(Play(
                t=start, gen=gen, style="mux", cycles=max(m[1] for m in members), end_limit=max(m[2] for m in members),
                what=" + ".join(m[3] for m in members), tones=tuple(sorted(m[0] for m in members)),
            ))  # fmt: skip
        realtime, post = self.decisions()
        reset_len, heralded = self.reset()
        gens = {b: {} for b in self.boards}
        for (board, gen), freqs in sorted(self.gen_freqs.items()):
            gens[board][gen] = self.gen_decl(board, gen, freqs)
        for (board, gen) in sorted(self.mux_tones):
            gens[board][gen] = self.gen_decl(board, gen, set())
        plans = {}
        for b in self.boards:
            self.items[b] = self.free_ports(b, self.items[b])
            self.reset_items[b] = self.free_ports(b, self.reset_items[b])
            attempt, aborts, registers = self.attempt(b, realtime)
            reset = Block(tuple(_order(self.reset_items[b], [])), reset_len)
            labels: dict[int, list[str]] = {}
            for blk in (reset, attempt):
                trs = sorted((i for i in blk.items if isinstance(i, Trigger)), key=lambda i: (i.t, i.ro))
                for it in trs:
                    labels.setdefault(it.ro, []).append(it.label)
            plans[b] = BoardPlan(
                board=b, clock_hz=self.clk, initial=int(round(INITIAL_DELAY_S * self.clk)), attempts=attempts,
                gens=dict(sorted(gens[b].items())), readouts=dict(sorted(self.readouts[b].items())),
                configs=dict(sorted(self.configs[b].items())), reset=reset, attempt=attempt, aborts=aborts,
                registers=registers, readout_labels={k: tuple(v) for k, v in sorted(labels.items())},
                heralded=tuple(heralded[b]), post_selected=post,
            )  # fmt: skip
        return plans

    def free_ports(self, board: str, items: list) -> list:
        """A tProc output port takes one write per cycle; a dynamic readout's configuration shares its port
        with generators (the tmux), so it moves to the first free cycle before its window (it only has to
        land between the previous window and the next trigger)."""
        taken: set[tuple[int, int]] = set()
        for it in items:
            p = it.play if isinstance(it, Flip) else it
            if isinstance(p, Play):
                taken.add((self.gencfg(board, p.gen)["tproc_ch"], p.t))
        out = []
        trig_of = {}
        for it in items:
            if isinstance(it, Trigger):
                trig_of.setdefault((it.ro, it.what), it.t)
        for it in items:
            if isinstance(it, Configure):
                port = self.rocfg(board, it.ro)["tproc_ctrl"]
                t = it.t
                while (port, t) in taken:
                    t += 1
                limit = trig_of.get((it.ro, it.what))
                if limit is not None and t >= limit:
                    raise CtrlError(
                        f"board {board} ro {it.ro}: {it.what}: no free cycle on port {port} for the readout "
                        "configuration before the window"
                    )
                taken.add((port, t))
                it = Configure(t, it.ro, it.name, it.what)
            out.append(it)
        return out

    def drive(self, q: str, key: tuple, t, what: str) -> None:
        """Play the pulse of role `key` on q's drive line, over t's interval."""
        ch = self.wiring(q).drive
        d = self.delay(ch)
        self.play(self.items[ch.board], key, t.start + d, t.end + d, what)

    def cz(self, t, what: str) -> None:
        a, b = t.op.qubits
        p = self.pulse(("cz", a, b), what)
        d = self.delay(self.target.flux_line(a, b))
        self.play(self.items[p.board], ("cz", a, b), t.start + d, t.end + d, what)
        self.corrections[(a, b)] = t.op.phases
        for q, v in t.op.phases:
            self.turn(q, v, ("cz", a, b))

    def ecr(self, t, what: str) -> None:
        c, tq = t.op.qubits
        gate = self.target.gate(c, tq)
        seg = self.pulse(("cr", c, tq, True), what)
        echo = self.pulse(("echo", c), what)
        cw, tw = self.wiring(c).drive, self.wiring(tq).drive
        dc = self.delay(cw)
        t0 = t.start + dc
        t_echo = t0 + self.span(cw.board, cw.gen, seg.cycles)
        t_seg2 = t_echo + self.span(cw.board, cw.gen, echo.cycles)
        out, end = self.items[cw.board], t.end + dc
        # natives' ECR = RZX(pi/4) X_c RZX(-pi/4): in time order the CR tone at phase + pi, the echo, the CR tone
        self.play(out, ("cr", c, tq, True), t0, end, what)
        self.play(out, ("echo", c), t_echo, end, what)
        self.play(out, ("cr", c, tq, False), t_seg2, end, what)
        if gate.cancellation:
            dt = self.delay(tw)
            for when, extra in ((t.start, math.pi), (t_seg2 - dc, 0.0)):
                self.play(self.items[tw.board], ("canc", c, tq, extra), when + dt, t.end + dt, what)
        corrections = gate.virtual_z_rad
        self.corrections[(c, tq)] = tuple(corrections)
        for q, v in corrections:
            self.turn(q, v, ("ecr", c, tq))

    def measure(self, t, what: str, mux_groups: dict) -> None:
        q = t.op.qubits[0]
        qt, w, freq, cycles, window = self.use_readout(q, what)
        board, gen, ro = w.board, w.gen, w.ro
        r, g = self.rocfg(board, ro), self.gencfg(board, gen)
        d = self.delay(w)
        start, end = t.start + d, t.end + d
        trig = start + int(round(qt.pulses.time_of_flight_s * self.clk))
        out = self.items[board]
        if r.get("tproc_ctrl") is not None:
            out.append(Configure(start, ro, f"ro{ro}_{q}", what))
        if "n_tones" in g:
            pc = self.fabric_cycles(board, gen, qt.readout_pulse_s)
            mux_groups.setdefault((board, gen, start), []).append((w.tone, pc, end, what))
        else:
            self.play(out, ("ro", q), start, end, what)
        out.append(Trigger(trig, ro, window, t.op.key, what))
        self.measures[t.op.key] = _Measure(t.op.key, q, board, ro, int(r.get("tproc_ch", -1)), trig, trig + window,
                                           self.threshold(q))  # fmt: skip

    # --- decisions
    def decisions(self):
        """Which decisions the tProc takes in real time; the rest are post-selected, with the reason."""
        rule = self.program.decisions
        linked = self.target.inter_board_latency_s is not None
        realtime, post = [], []
        for d in rule.points:
            reason = ""
            if len(self.boards) > 1:
                reason = (f"the program spans boards {', '.join(self.boards)}: an abort on one board cannot stop the "
                          + ("others (no real-time link)" if not linked else "others (no qnet/qcom in the firmware)"))
            elif not d.realtime:
                reason = "a result of these checks cannot reach the deciding tProc in time (readout without feedback)"
            else:
                for r in rule.rules_of(d):
                    for k in r.keys:
                        m = self.measures[k]
                        if m.port < 0:
                            reason = f"readout ro {m.ro} of {m.qubit} does not feed the tProc (tproc_ch -1)"
            if reason:
                post.append(PostSelected(d.index, rule.names(d), reason))
            else:
                realtime.append(d)
        return realtime, tuple(post)

    def attempt(self, board: str, realtime):
        prog = self.program
        rule = prog.decisions
        items = self.items[board]
        keys_of = {r.name: r.keys for r in rule.rules}
        by_ro: dict[int, list[Trigger]] = {}
        for tr in sorted((i for i in items if isinstance(i, Trigger)), key=lambda i: (i.t, i.ro)):
            by_ro.setdefault(tr.ro, []).append(tr)

        def arrives(m: _Measure) -> int:
            return math.ceil(m.end - 1e-9) + self.delta

        def overwritten(m: _Measure) -> float:
            """When a later window on the same readout replaces m's value at the port."""
            later = [tr.end for tr in by_ro.get(m.ro, []) if tr.t > m.trig]
            return math.ceil(min(later) - 1e-9) + self.delta if later else math.inf

        def read_of(m: _Measure) -> Read:
            return Read(m.ro, m.port, arrives(m), m.threshold, m.key, m.qubit)

        decisions = [d for d in realtime if all(self.measures[k].board == board for r in rule.rules_of(d) for k in r.keys)]
        direct: dict[int, list[Read]] = {}
        reg_checks: dict[int, list[str]] = {}
        captures: dict[str, list[tuple[int, str]]] = {}
        for d in decisions:
            for c in rule.names(d):
                keys = keys_of[c]
                m0 = self.measures[keys[0]]
                if len(keys) == 1 and overwritten(m0) > d.time:
                    direct.setdefault(d.index, []).append(read_of(m0))
                    continue
                reg_checks.setdefault(d.index, []).append(c)
                for k in keys:
                    m = self.measures[k]
                    cap = int(min(d.time, overwritten(m) - 1))
                    if arrives(m) + WAIT_OFFSET > cap:
                        raise CtrlError(
                            f"board {board}: check {c}: result {k} arrives at cycle {arrives(m)} and another window on "
                            f"ro {m.ro} replaces it before it can be read"
                        )
                    captures.setdefault(k, []).append((cap, c))
        # parity registers over live intervals (first capture .. decision); r0 counts attempts
        start_of: dict[str, int] = {}
        for caps in captures.values():
            for cap, c in caps:
                start_of[c] = min(start_of.get(c, cap), cap)
        end_of = {c: d.time for d in decisions for c in reg_checks.get(d.index, [])}
        dreg = int(self.fw[board]["tprocs"][0].get("dreg_qty", 16))
        reg_of: dict[str, int] = {}
        busy: list[tuple[int, int]] = []  # (free from, register)
        used = 0
        for c in sorted(start_of, key=lambda c: (start_of[c], c)):
            ready = sorted(r for f, r in busy if f <= start_of[c])
            if ready:
                reg = ready[0]
                busy = [(f, r) for f, r in busy if r != reg]
            else:
                used += 1
                reg = used
                if reg >= dreg:
                    raise CtrlError(
                        f"board {board}: data registers: check {c} needs a parity register r{reg}, but the tProc has "
                        f"{dreg} (dreg_qty; r0 counts attempts)"
                    )
            reg_of[c] = reg
            busy.append((end_of[c] + 1, reg))
        sync: list = []
        seen: set[str] = set()
        for k in sorted(captures, key=lambda k: (min(c for c, _ in captures[k]), k)):
            at: dict[int, list[str]] = {}
            for cap, c in captures[k]:
                at.setdefault(cap, []).append(c)
            for cap, cs in sorted(at.items()):
                regs = []
                for c in sorted(cs):
                    regs.append((reg_of[c], c not in seen))
                    seen.add(c)
                sync.append(Capture(cap, read_of(self.measures[k]), tuple(regs)))
        for d in decisions:
            sync.append(Decision(d.index, d.time, tuple(direct.get(d.index, ())),
                                 tuple(reg_of[c] for c in reg_checks.get(d.index, [])), rule.names(d)))  # fmt: skip
        # latest end of anything started before a time: a running maximum over the items by start
        ends = sorted((it.key, it.t + self.span(board, it.gen, it.cycles) if isinstance(it, Play)
                       else math.ceil(it.end - 1e-9)) for it in items if isinstance(it, (Play, Trigger)))  # fmt: skip
        starts, latest, top = [], [], -math.inf
        for key, end in ends:
            top = max(top, end)
            starts.append(key)
            latest.append(top)
        aborts = {d.index: self.abort_block(board, d.time, starts, latest, by_ro) for d in decisions}
        return Block(tuple(_order(items, sync)), prog.duration), aborts, used

    def abort_block(self, board: str, t_dec: int, starts: list, latest: list, by_ro) -> Block:
        """What an abort at t_dec plays: nothing new until everything in flight has ended; meanwhile the
        readouts' remaining windows of the attempt, as dummy triggers (a fixed trigger count per slot).
        `latest[i]`: the latest end of the pulses and windows starting at or before `starts[i]`."""
        before = bisect.bisect_left(starts, t_dec)
        spill = max(0, latest[before - 1] - t_dec) if before else 0
        dummies = []
        length = spill
        for ro, trs in sorted(by_ro.items()):
            left = [tr for tr in trs if tr.t >= t_dec]
            if not left:
                continue
            free = max([math.ceil(tr.end - 1e-9) for tr in trs if tr.t < t_dec] + [t_dec]) - t_dec
            step = math.ceil(left[0].window - 1e-9) + TRIGGER_WIDTH
            for i, tr in enumerate(left):
                at = free + i * step
                dummies.append(Trigger(at, ro, tr.window, "dummy", f"dummy readout for {tr.label}"))
                length = max(length, at + step)
        return Block(tuple(sorted(dummies, key=lambda i: (i.t, i.ro))), length)

    # --- reset
    def reset(self):
        """Fill reset_items per board; return (length, heralded qubits per board). Active reset measures every
        qubit and flips those that read 1, if the result reaches the tProc of the board driving it (else the
        result is only recorded: a heralded reset); passive reset waits. One length for all boards."""
        prog = self.program
        heralded: dict[str, list[str]] = {b: [] for b in self.boards}
        ends: list[int] = [prog.abort_duration]
        ro_free: dict[tuple[str, int], int] = {}
        gen_free: dict[tuple[str, int], int] = {}
        mux: dict[tuple[str, int], list] = {}
        flips: list[tuple[str, str, int, Read, object]] = []
        for q in sorted(prog.qubits, key=_natural):
            qt, qp = self.qubit(q)
            method = qp.reset_method
            if method == "passive":
                ends.append(int(math.ceil(qt.reset_s * self.clk - 1e-6)))
                continue
            if method != "active":
                raise CtrlError(
                    f"qubit {q}: reset method {method!r} needs a calibrated reset drive, which the device file "
                    "does not describe; the QICK emitter supports active and passive reset"
                )
            what = f"reset of {q}"
            _, w, freq, cycles, window = self.use_readout(q, what)
            board, gen, ro = w.board, w.gen, w.ro
            g, r = self.gencfg(board, gen), self.rocfg(board, ro)
            d = self.delay(w)
            tof = int(round(qp.time_of_flight_s * self.clk))
            busy = max(int(math.ceil(qt.readout_pulse_s * self.clk - 1e-6)), tof + math.ceil(window - 1e-9))
            out = self.reset_items[board]
            if "n_tones" in g:
                start = 0  # every reset readout of a mux generator goes together, first
                mux.setdefault((board, gen), []).append((w.tone, self.fabric_cycles(board, gen, qt.readout_pulse_s),
                                                         busy, what))  # fmt: skip
            else:
                start = max(ro_free.get((board, ro), 0), gen_free.get((board, gen), 0))
                if r.get("tproc_ctrl") is not None:
                    out.append(Configure(start + d, ro, f"ro{ro}_{q}", what))
                self.play(out, ("ro", q), start + d, start + d + busy, what)
                gen_free[(board, gen)] = start + busy
            ro_free[(board, ro)] = start + busy
            out.append(Trigger(start + d + tof, ro, window, f"reset:{q}", what))
            ends.append(start + d + busy)
            drive = self.wiring(q).drive
            port = int(r.get("tproc_ch", -1))
            if port < 0 or not w.feedback or drive.board != board:
                heralded[board].append(q)
                continue
            arrive = math.ceil(start + d + tof + window - 1e-9) + self.delta
            flips.append((board, q, arrive, Read(ro, port, arrive, self.threshold(q), f"reset:{q}", q), drive))
        for (board, gen), members in sorted(mux.items()):
            self.reset_items[board].append(Play(
                t=0, gen=gen, style="mux", cycles=max(m[1] for m in members), end_limit=max(m[2] for m in members),
                what=" + ".join(m[3] for m in members), tones=tuple(sorted(m[0] for m in members)),
            ))  # fmt: skip
        for board, q, arrive, read, drive in sorted(flips, key=lambda f: (f[2], _natural(f[1]))):
            what = f"reset flip of {q}"
            flip = self.pulse(("flip", q), what)
            t_flip = max(arrive - self.delta + self.latency, gen_free.get((board, drive.gen), 0)) + self.delay(drive)
            span = self.span(board, drive.gen, flip.cycles)
            gen_free[(board, drive.gen)] = t_flip + span
            p = self.play([], ("flip", q), t_flip, t_flip + span, what)
            self.reset_items[board].append(Flip(read, p))
            ends.append(t_flip + span)
        return max(ends), heralded


def _order(items, sync) -> list:
    """Text order: by time; at one time, sync points (reads, branches) before the timed items they gate."""
    tagged = [(it.key, 0, i, it) for i, it in enumerate(sync)] + [(it.key, 1, i, it) for i, it in enumerate(items)]
    tagged.sort(key=lambda x: (x[0], x[1], x[2]))
    return [x[3] for x in tagged]


def _natural(name: str):
    head = name.rstrip("0123456789")
    tail = name[len(head):]
    return (head, int(tail) if tail else -1)
