"""The instruction stream of one board's program, and the stamp that names the program in its machine code.

The plan is written as tProc v2 assembly instructions (`asm_inst`), not through qick's timing macros:
every time is an explicit cycle count relative to the reference time, which the program only moves with
explicit `TIME inc_ref` (docs/qick.md, Time: the macros' timestamp bookkeeping follows the program text and ignores jumps). Structure:

    counter := 0; ref += initial delay; r0 := 0
    SLOT:   reset block;                      ref += reset length
            attempt: timed items by time, and at each real-time decision:
                WAIT until its results arrived; ref += (decision - ref); read, test, jump to ABORT_k
            ref += (attempt length - ref); dmem[counter] := 0
    TAIL:   counter += 1; loop to SLOT (attempts times); end
    ABORT_k: dummy readout triggers; dmem[counter] := k + 1; ref += abort length; jump TAIL
"""

from __future__ import annotations

import hashlib
import json

from ctrl.backends.qick.boardplan import BoardPlan, Capture, Configure, Decision, Flip, Play, Trigger
from ctrl.backends.qick.plan import TRIGGER_WIDTH, WAIT_OFFSET
from ctrl.backends.qick.resources import Usage, wave_key
from ctrl.backends.qick.sheet import Test
from ctrl.compile.timed import TimedProgram
from ctrl.errors import CtrlError

COUNTER = "s12"  # s_core_w1: the shot counter acquire() polls (counter_addr 1)
LOOP = "r0"


class Writer:
    """Appends instructions to a qick program, counting program-memory words as it goes."""

    def __init__(self, prog, plan: BoardPlan, usage: Usage, fw: dict) -> None:
        self.prog = prog
        self.plan = plan
        self.usage = usage
        self.fw = fw
        self.words = 1  # address 0 holds the NOP qick puts first
        self.far = int(fw["tprocs"][0]["pmem_size"]) > 2**11  # jumps go through s15
        self.what = ""
        self.wave_index: dict[tuple, int] = {}
        self.config_index: dict[str, int] = {}
        self.count = 1  # instructions in prog_list (the NOP first)
        self.tests: list[Test] = []

    def inst(self, d: dict, words: int = 1) -> None:
        self.count += 1
        self.words += words
        if self.words > self.usage.pmem_size:
            raise CtrlError(
                f"board {self.plan.board}: program memory: {self.what} needs instruction word {self.words}, more than "
                f"pmem_size {self.usage.pmem_size} ({self.usage.waveform_plays} waveform plays, "
                f"{self.usage.triggers} triggers in the program)"
            )
        self.prog.asm_inst(d, addr_inc=words)

    def label(self, name: str) -> None:
        self.prog.label(name)

    def jump(self, label: str, cond: str | None = None, **extra) -> None:
        d = {"CMD": "JUMP"}
        if cond:
            d["IF"] = cond
        d.update(extra)
        if self.far:
            self.inst({"CMD": "REG_WR", "DST": "s15", "SRC": "label", "LABEL": label})
            d["ADDR"] = "s15"
        else:
            d["LABEL"] = label
        self.inst(d)

    def wait(self, t: int) -> None:
        lit = t + WAIT_OFFSET
        if not -(2**23) <= lit - WAIT_OFFSET < 2**23:
            raise CtrlError(f"board {self.plan.board}: {self.what}: wait target {t} does not fit 24 bits")
        if self.far:
            self.inst({"CMD": "REG_WR", "DST": "s15", "SRC": "label", "LABEL": "SKIP"})
            self.inst({"CMD": "WAIT", "ADDR": "s15", "C_OP": "time", "TIME": f"@{lit}"}, 2)
        else:
            self.inst({"CMD": "WAIT", "C_OP": "time", "TIME": f"@{lit}"}, 2)

    def inc_ref(self, n: int) -> None:
        if n < 0:
            raise CtrlError(f"board {self.plan.board}: {self.what}: the reference time would move back {-n} cycles")
        if n:
            self.inst({"CMD": "TIME", "C_OP": "inc_ref", "LIT": f"#{n}"})

    def read_test(self, read) -> None:
        self.inst({"CMD": "DPORT_RD", "DST": str(read.port)})
        self.tests.append(Test(self.count, self.words, read.qubit, read.threshold))
        self.inst({"CMD": "TEST", "OP": f"s8 - #{read.threshold}", "UF": "1"})

    # --- blocks
    def block(self, items, base: int = 0) -> int:
        """Emit items with times relative to `base`; returns the reference offset reached (decisions move it)."""
        ref = base
        pending: list[Trigger] = []
        for it in items:
            if pending and not (isinstance(it, Trigger) and it.t == pending[0].t):
                self.triggers(pending, ref)
                pending = []
            self.what = getattr(it, "what", "") or _what(it)
            if isinstance(it, Play):
                self.play(it, ref)
            elif isinstance(it, Trigger):
                pending.append(it)
            elif isinstance(it, Configure):
                self.inst({"CMD": "WPORT_WR", "DST": str(self.fw["readouts"][it.ro]["tproc_ctrl"]), "SRC": "wmem",
                           "ADDR": f"&{self.config_index[it.name]}", "TIME": f"@{it.t - ref}"})  # fmt: skip
            elif isinstance(it, Flip):
                self.wait(it.read.arrives - ref)
                self.read_test(it.read)
                skip = f"KEEP_{self.words}"
                self.jump(skip, "S")
                self.play(it.play, ref)
                self.label(skip)
            elif isinstance(it, Capture):
                self.wait(it.read.arrives - ref)
                self.read_test(it.read)
                for reg, first in it.registers:
                    if first:
                        self.inst({"CMD": "REG_WR", "DST": f"r{reg}", "SRC": "imm", "LIT": "#0"})
                        self.inst({"CMD": "REG_WR", "DST": f"r{reg}", "SRC": "imm", "LIT": "#1", "IF": "NS"})
                    else:
                        self.inst({"CMD": "REG_WR", "DST": f"r{reg}", "SRC": "op", "OP": f"r{reg} XOR #1", "IF": "NS"})
            elif isinstance(it, Decision):
                if it.direct:
                    self.wait(max(r.arrives for r in it.direct) - ref)
                # the reference time moves past the decision before the branch: qick's timestamp bookkeeping ignores
                # jumps, so a time moved inside a branch would be lost on the other path (docs/qick.md, Time)
                self.inc_ref(it.t - ref)
                ref = it.t
                target = f"ABORT_{it.index}"
                if self.far:
                    self.inst({"CMD": "REG_WR", "DST": "s15", "SRC": "label", "LABEL": target})
                for read in it.direct:
                    self.read_test(read)
                    self.inst({"CMD": "JUMP", "IF": "NS", **({"ADDR": "s15"} if self.far else {"LABEL": target})})
                for reg in it.registers:
                    self.inst({"CMD": "TEST", "OP": f"r{reg}", "UF": "1"})
                    self.inst({"CMD": "JUMP", "IF": "NZ", **({"ADDR": "s15"} if self.far else {"LABEL": target})})
            else:
                raise CtrlError(f"internal: cannot emit {it!r}")
        if pending:
            self.triggers(pending, ref)
        return ref

    def play(self, p: Play, ref: int) -> None:
        idx = self.wave_index[wave_key(self.fw, p)]
        port = self.fw["gens"][p.gen]["tproc_ch"]
        self.inst({"CMD": "WPORT_WR", "DST": str(port), "SRC": "wmem", "ADDR": f"&{idx}", "TIME": f"@{p.t - ref}"})

    def triggers(self, group: list[Trigger], ref: int) -> None:
        """Readout triggers at one time: trigger ports pulse one by one, data-port bits share one write."""
        t = group[0].t - ref
        dport: dict[int, int] = {}
        tports: list[int] = []
        for tr in group:
            r = self.fw["readouts"][tr.ro]
            if r.get("trigger_type", "tport") == "dport":
                dport[r["trigger_port"]] = dport.get(r["trigger_port"], 0) | (1 << r["trigger_bit"])
            else:
                tports.append(r["trigger_port"])
        for port, bits in sorted(dport.items()):
            self.inst({"CMD": "DPORT_WR", "DST": str(port), "SRC": "imm", "DATA": str(bits), "TIME": f"@{t}"})
        for port in tports:
            self.inst({"CMD": "TRIG", "SRC": "set", "DST": str(port), "TIME": f"@{t}"})
        for port in sorted(dport):
            self.inst({"CMD": "DPORT_WR", "DST": str(port), "SRC": "imm", "DATA": "0", "TIME": f"@{t + TRIGGER_WIDTH}"})
        for port in tports:
            self.inst({"CMD": "TRIG", "SRC": "clr", "DST": str(port), "TIME": f"@{t + TRIGGER_WIDTH}"})


def _what(it) -> str:
    if isinstance(it, Flip):
        return it.play.what
    if isinstance(it, Capture):
        return f"capture of {it.read.label}"
    if isinstance(it, Decision):
        return f"decision {it.index} ({', '.join(it.checks)})"
    return repr(it)


def program_stamp(program: TimedProgram, board: str, attempts: int) -> tuple[int, int]:
    """Two 31-bit numbers naming what a board program runs: sha256 of the board, the attempt slots and the
    timed program's schedule (every field of program.json but the calibration hash and the CZs' virtual-Z
    corrections, which a pulse-only patch changes without touching the machine code's shape: the stamp of
    a patched program is the one its full emission gets). The emulated board finds the timed program
    behind loaded machine code by it (`ctrl.lab.engine`)."""
    ops = [(t.op.name, t.op.qubits, t.op.tag, t.op.angle, t.op.key, t.start, t.duration, t.channels, t.ready)
           for t in program.ops]  # fmt: skip
    rule = program.decisions
    checks = [(r.name, r.kind, r.keys) for r in rule.rules]
    decisions = [(d.index, d.time, list(rule.names(d)), d.realtime) for d in rule.points]
    text = json.dumps([board, attempts, program.device, program.wiring_hash, program.distance, program.clock_hz,
                       program.qubits, program.roles, program.record, checks, decisions, program.duration,
                       program.abort_duration, ops], separators=(",", ":"))  # fmt: skip
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return (digest >> 33) & 0x7FFFFFFF, (digest >> 2) & 0x7FFFFFFF


def program_text(w: Writer, plan: BoardPlan, stamp: tuple[int, int]) -> None:
    w.what = "program header"
    w.inst({"CMD": "REG_WR", "DST": COUNTER, "SRC": "imm", "LIT": "#0"})
    w.inc_ref(plan.initial)
    w.inst({"CMD": "REG_WR", "DST": LOOP, "SRC": "imm", "LIT": "#0"})
    w.label("SLOT")
    w.block(plan.reset.items)
    w.what = "end of the reset block"
    w.inc_ref(plan.reset.length)
    ref = w.block(plan.attempt.items)
    w.what = "end of the attempt"
    w.inc_ref(plan.attempt.length - ref)
    w.inst({"CMD": "DMEM_WR", "DST": f"[&{COUNTER}]", "SRC": "imm", "LIT": "#0"})
    w.label("TAIL")
    w.inst({"CMD": "REG_WR", "DST": COUNTER, "SRC": "op", "OP": f"{COUNTER} + #1"})
    w.what = "attempt loop"
    if w.far:
        w.inst({"CMD": "REG_WR", "DST": "s15", "SRC": "label", "LABEL": "SLOT"})
    w.inst({"CMD": "TEST", "OP": f"{LOOP} - #{plan.attempts - 1}", "UF": "1"})
    w.inst({"CMD": "JUMP", "IF": "NZ", "WR": f"{LOOP} op", "OP": f"{LOOP} + #1",
            **({"ADDR": "s15"} if w.far else {"LABEL": "SLOT"})})  # fmt: skip
    w.what = "end"
    if w.far:
        w.inst({"CMD": "REG_WR", "DST": "s15", "SRC": "label", "LABEL": "NEXT"})
        w.inst({"CMD": "JUMP", "ADDR": "s15"})
    else:
        w.inst({"CMD": "JUMP", "LABEL": "HERE"})
    for k, blk in sorted(plan.aborts.items()):
        w.label(f"ABORT_{k}")
        w.block(blk.items)
        w.what = f"abort block {k}"
        w.inst({"CMD": "DMEM_WR", "DST": f"[&{COUNTER}]", "SRC": "imm", "LIT": f"#{k + 1}"})
        w.inc_ref(blk.length)
        w.jump("TAIL")
    # The stamp, past the end where no path goes (each one above ends in a jump): a board is given machine
    # code only (qick's binprog carries no metadata and its dmem is the program's outcome memory), so the
    # name of the program travels as literals of instructions that never run. The emulated board reads it.
    w.what = "stamp"
    for value in (*stamp, plan.attempts):
        w.inst({"CMD": "REG_WR", "DST": LOOP, "SRC": "imm", "LIT": f"#{value}"})
