"""An offline interpreter of tProc v2 programs: what a board would play, when, on every path.

    trace = interpret(dump, soccfg, read)

- `dump`: the program as `QickProgramV2.dump_prog()` gives it (the JSON ctrl writes as qick_<board>.json,
  decoded): its assembly list (`prog_list`, `labels`), waveform memory (`waves`), envelopes, declared
  generators (`gen_chs`, for mixer and mux tone frequencies) and readouts (`ro_chs`, for window lengths).
  Or what a board receives: machine code `pmem` and `wmem` (qick's `binprog` words, decoded by
  `decode.py`) with `ro_chs` ({ro: {"length": readout cycles}}, as config_avg sets them) and optionally
  `gen_chs` ({gen: {"mixer_freq": {"rounded": MHz}}}) and `envelopes` (for names).
- `soccfg`: the firmware description (a dict, e.g. firmware_<board>.json): port numbers, clocks, widths.
- `read(ro, t) -> float`: the accumulated I the tProc sees when it reads readout `ro`'s input port, where
  `t` is the timing-clock cycle at which that window was triggered. Called once per window read (the value
  is remembered); Q reads as 0.

The result is a `Trace`: `Event`s in time order, `t` in timing-clock cycles (f_time) from program start.

| kind    | t                                   | channel         | other fields                                 |
|---------|-------------------------------------|-----------------|----------------------------------------------|
| pulse   | start on the generator              | generator       | length (timing cycles, rounded up),          |
|         |                                     |                 | freq_hz, phase_deg, gain, envelope (name),   |
|         |                                     |                 | outsel, tones (mux)                          |
| trigger | window start                        | readout         | length (window, timing cycles, rounded up)   |
| config  | when the readout takes it           | readout         | freq_hz, phase_deg (dynamic readouts)        |
| read    | tProc execution time                | readout         | value (I), source (trigger time of the window) |
| branch  | tProc execution time                | program address | value (1 taken, 0 not), source (target address) |
| dmem    | tProc execution time                | dmem address    | value                                        |
| end     | tProc execution time                | -1              |                                              |

Timed events also carry `scheduled` (reference time + the instruction's time), `issued` (execution time of
the instruction) and `late` (cycles by which the tProc issued it after its own timestamp; a real board
plays it late by that much, and so does the trace).

Execution model (tProc v2 rev 21-27, as qick programs it): one instruction per core clock (f_core);
`WAIT` holds execution until `s11` (time since the reference) reaches its target minus qick's offset of
10 cycles; timed instructions queue per output port (`fifo_depth` deep; a full queue stalls the tProc),
each port takes one write per timing cycle, a generator plays its waveforms one after another; a
readout's value reaches its tProc input port `input_delay_s` (default `BOARD_INPUT_DELAY_S`, 50 ns)
after its window ends. Reading a port before
any window on it has arrived is an error (CtrlError), as is an unsupported instruction or running past
`max_steps` instructions. Not modelled: the analog latencies of generators and readouts (equal offsets on
every path), DDR4/MR buffers, time taggers, qnet/qcom, ARITH/DIV.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass
from typing import Callable

from ctrl.backends.qick.decode import decode_pmem, decode_wmem
from ctrl.errors import CtrlError

# The model board's latency from a window's end to its value at the tProc input. No published figure
# exists; labs read after qick's wait_auto(0.1), which releases 10 cycles early (about 77 ns after the
# window). The emitter assumes more (plan.INPUT_DELAY_S = 0.1 us), so its programs pass with room.
BOARD_INPUT_DELAY_S = 0.05e-6

_OUTSEL = {0: "product", 1: "dds", 2: "input", 3: "zero"}
_SREG_NAMES = {
    "s_zero": 0, "zero": 0, "s_rand": 1, "s_cfg": 2, "s_ctrl": 2, "s_arith_l": 3, "s_div_q": 4, "s_div_r": 5,
    "s_core_r1": 6, "s_core_r2": 7, "s_port_l": 8, "s_port_h": 9, "s_status": 10, "s_usr_time": 11,
    "curr_usr_time": 11, "s_core_w1": 12, "s_core_w2": 13, "s_out_time": 14, "out_usr_time": 14, "s_addr": 15,
}  # fmt: skip
_WREG_NAMES = {"w_freq": 0, "w_phase": 1, "w_env": 2, "w_gain": 3, "w_length": 4, "w_conf": 5}
_WAVE_FIELDS = ("freq", "phase", "env", "gain", "length", "conf")
_WAIT_OFFSET = 10


@dataclass(frozen=True)
class Event:
    kind: str  # pulse | trigger | config | read | branch | dmem | end
    t: int
    channel: int
    length: int = 0
    freq_hz: float = 0.0
    phase_deg: float = 0.0
    gain: float = 0.0
    envelope: str = ""
    outsel: str = ""
    tones: tuple[int, ...] = ()
    value: int = 0
    source: int = -1
    scheduled: int = 0
    issued: int = 0
    late: int = 0

    def __repr__(self) -> str:
        if self.kind == "pulse":
            shape = self.envelope or self.outsel
            what = f"{self.freq_hz / 1e6:.3f} MHz {self.phase_deg:.2f} deg gain {self.gain:.4f} {shape}"
            if self.tones:
                what = f"tones {list(self.tones)}"
            return f"Event(pulse gen{self.channel} @{self.t}+{self.length} {what})"
        if self.kind == "trigger":
            return f"Event(trigger ro{self.channel} @{self.t}+{self.length})"
        return f"Event({self.kind} ch{self.channel} @{self.t} value={self.value})"


@dataclass(frozen=True)
class Trace:
    events: tuple[Event, ...]  # by time, then program order
    steps: int  # instructions executed
    counter: int  # s_core_w1 (s12) at the end: acquire()'s shot counter
    dmem: tuple[tuple[int, int], ...]  # (address, value) of every data-memory word written, final values

    def __repr__(self) -> str:
        kinds: dict[str, int] = {}
        for e in self.events:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        return f"Trace({self.steps} steps, counter {self.counter}, {kinds})"

    def of(self, kind: str, channel: int | None = None) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.kind == kind and (channel is None or e.channel == channel))

    @property
    def pulses(self) -> tuple[Event, ...]:
        return self.of("pulse")

    @property
    def triggers(self) -> tuple[Event, ...]:
        return self.of("trigger")

    @property
    def branches(self) -> tuple[Event, ...]:
        return self.of("branch")

    @property
    def late(self) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.late > 0)


def interpret(
    dump: dict,
    soccfg: dict,
    read: Callable[[int, int], float],
    *,
    max_steps: int = 2_000_000,
    input_delay_s: float = BOARD_INPUT_DELAY_S,
) -> Trace:
    """Run the program of `dump` on a model of the board `soccfg`; see the module docstring."""
    return _Machine(dump, soccfg, read, input_delay_s).run(max_steps)


def _s32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def _lit(text: str) -> int:
    m = re.fullmatch(r"[#@&]?(-?\d+)", text)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"#u(\d+)", text)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"#b([01]+)", text)
    if m:
        return int(m.group(1), 2)
    m = re.fullmatch(r"#h([0-9A-Fa-f]+)", text)
    if m:
        return int(m.group(1), 16)
    raise CtrlError(f"cannot read literal {text!r}")


class _Machine:
    def __init__(self, dump: dict, soccfg: dict, read, input_delay_s: float) -> None:
        self.cfg = soccfg
        self.tp = soccfg["tprocs"][0]
        self.f_time = self.tp["f_time"] * 1e6
        self.step_cycles = self.tp["f_time"] / self.tp["f_core"]
        self.fifo = int(self.tp.get("fifo_depth", 512))
        self.read_cb = read
        self.delta = math.ceil(input_delay_s * self.f_time - 1e-9)
        if "prog_list" in dump:
            self.prog = dump["prog_list"]
            self.waves = [dict(w) for w in dump.get("waves", [])]
        elif "pmem" in dump:
            self.prog = decode_pmem(dump["pmem"])
            self.waves = decode_wmem(dump.get("wmem"))
        else:
            raise CtrlError("interpret: the program has neither an assembly list (prog_list) nor machine code (pmem)")
        self.labels = {k: _lit(v) for k, v in dump.get("labels", {}).items()}
        self.gen_chs = {int(k): v for k, v in dump.get("gen_chs", {}).items()}
        self.ro_chs = {int(k): v for k, v in dump.get("ro_chs", {}).items()}
        self.env_names: dict[int, dict[int, str]] = {}
        for g, envs in enumerate(dump.get("envelopes", [])):
            spc = soccfg["gens"][g].get("samps_per_clk", 1)
            self.env_names[g] = {int(e["addr"]) // spc: name for name, e in envs.get("envs", {}).items()}
        self.addr_index: dict[int, int] = {}
        for i, inst in enumerate(self.prog):
            self.addr_index[int(inst["P_ADDR"])] = i
            if inst["CMD"] == "WAIT":
                self.addr_index[int(inst["P_ADDR"]) + 1] = i
        # output ports -> what they drive
        self.wport: dict[int, list[tuple[str, int, int | None]]] = {}
        for i, g in enumerate(soccfg["gens"]):
            self.wport.setdefault(int(g["tproc_ch"]), []).append(("gen", i, g.get("tmux_ch")))
        for i, r in enumerate(soccfg["readouts"]):
            if "tproc_ctrl" in r:
                self.wport.setdefault(int(r["tproc_ctrl"]), []).append(("ro", i, r.get("tmux_ch")))
        self.trig_ro: dict[tuple[str, int, int], int] = {}
        for i, r in enumerate(soccfg["readouts"]):
            kind = r.get("trigger_type", "tport")
            bit = int(r.get("trigger_bit", 0)) if kind == "dport" else 0
            self.trig_ro[(kind, int(r["trigger_port"]), bit)] = i
        self.in_port = {int(r["tproc_ch"]): i for i, r in enumerate(soccfg["readouts"])
                        if int(r.get("tproc_ch", -1)) >= 0}
        # state
        self.s = [0] * 16
        self.r = [0] * int(self.tp.get("dreg_qty", 16))
        self.w = [0] * 6
        self.flags = (False, False)  # (zero, sign)
        self.ref = 0
        self.now = 0.0
        self.stack: list[int] = []
        self.dmem: dict[int, int] = {}
        self.events: list[tuple[int, int, Event]] = []
        self.order = 0
        self.queues: dict[tuple[str, int], list[int]] = {}
        self.port_next: dict[tuple[str, int], int] = {}
        self.gen_busy: dict[int, int] = {}
        self.windows: dict[int, list[tuple[int, int]]] = {}  # ro -> [(trigger time, arrival)]
        self.values: dict[tuple[int, int], int] = {}
        self.dport_state: dict[int, int] = {}

    # --- registers and operands
    def reg_index(self, name: str) -> tuple[str, int]:
        if name in _SREG_NAMES:
            return "s", _SREG_NAMES[name]
        if name in _WREG_NAMES:
            return "w", _WREG_NAMES[name]
        m = re.fullmatch(r"([srw])(\d+)", name)
        if not m:
            raise CtrlError(f"unknown register {name!r}")
        return m.group(1), int(m.group(2))

    def get(self, name: str) -> int:
        kind, i = self.reg_index(name)
        if kind == "s":
            if i == 0:
                return 0
            if i == 11:
                return _s32(int(math.floor(self.now)) - self.ref)
            return self.s[i]
        if kind == "r":
            return self.r[i]
        return self.w[i]

    def set(self, name: str, value: int) -> None:
        if name == "r_wave":
            raise CtrlError("r_wave is written from waveform memory only")
        kind, i = self.reg_index(name)
        value = _s32(value)
        if kind == "s":
            if i not in (0, 11):
                self.s[i] = value
        elif kind == "r":
            self.r[i] = value
        else:
            self.w[i] = value

    def operand(self, text: str) -> int:
        if text.startswith(("#", "&", "@")):
            return _lit(text)
        return self.get(text)

    def alu(self, op: str) -> int:
        tok = op.split()
        if len(tok) == 1:
            return self.operand(tok[0])
        if len(tok) == 2:
            fn, a = tok[0], self.operand(tok[1])
            if fn == "ABS":
                return abs(a)
            if fn in ("NOT", "!"):
                return ~a
            if fn == "PAR":
                return bin(a & 0xFFFFFFFF).count("1") & 1
            raise CtrlError(f"unsupported ALU operation {op!r}")
        a, fn, b = self.operand(tok[0]), tok[1], self.operand(tok[2])
        if fn == "+":
            return a + b
        if fn == "-":
            return a - b
        if fn in ("AND", "&", "MSK"):
            return a & b
        if fn in ("OR", "|"):
            return a | b
        if fn in ("XOR", "^"):
            return a ^ b
        if fn == "ASR":
            return a >> b
        if fn in ("SL", "<<"):
            return a << b
        if fn in ("SR", ">>"):
            return (a & 0xFFFFFFFF) >> b
        raise CtrlError(f"unsupported ALU operation {op!r}")

    def cond(self, inst: dict) -> bool:
        c = inst.get("IF", "1")
        z, s = self.flags
        return {"1": True, "0": False, "Z": z, "NZ": not z, "S": s, "NS": not s, "F": False, "NF": True}[c]

    def update_flags(self, value: int) -> None:
        v = _s32(value)
        self.flags = (v == 0, v < 0)

    def address(self, inst: dict, key: str = "ADDR") -> int:
        """A jump or label target: &n, s15, or a label name."""
        if key in inst:
            a = inst[key]
            if a == "s15":
                return self.s[15]
            return _lit(a)
        label = inst["LABEL"]
        p = int(inst["P_ADDR"])
        special = {"PREV": p - 1, "HERE": p, "NEXT": p + 1, "SKIP": p + 2}
        if label in special:
            return special[label]
        if label not in self.labels:
            raise CtrlError(f"unknown label {label!r}")
        return self.labels[label]

    def mem_addr(self, text: str) -> int:
        inner = text.strip("[]").lstrip("&")
        parts = [p.strip() for p in inner.split("+")]
        total = 0
        for p in parts:
            total += self.get(p) if re.fullmatch(r"[srw]\d+", p) or p in _SREG_NAMES else _lit(p)
        return total

    # --- events
    def add(self, ev: Event) -> None:
        self.events.append((ev.t, self.order, ev))
        self.order += 1

    def issue(self, port: tuple[str, int], when: int) -> tuple[int, int, int]:
        """Queue a timed write on `port` for absolute time `when`: (actual time, issue time, lateness)."""
        q = self.queues.setdefault(port, [])
        while q and q[0] <= self.now:
            heapq.heappop(q)
        if len(q) >= self.fifo:
            self.now = max(self.now, float(heapq.heappop(q)))
        issued = int(math.ceil(self.now - 1e-9))
        late = max(0, issued - when)
        actual = max(when, issued, self.port_next.get(port, -(10**18)))
        self.port_next[port] = actual + 1
        heapq.heappush(q, actual)
        return actual, issued, late

    def when(self, inst: dict) -> int:
        if "TIME" in inst:
            return self.ref + _lit(inst["TIME"])
        return self.ref + self.s[14]

    def wave_out(self, inst: dict, wave: dict) -> None:
        port = int(inst["DST"])
        targets = self.wport.get(port, [])
        tmux = (int(wave["conf"]) >> 8) & 0xFF
        if len(targets) > 1:
            targets = [t for t in targets if t[2] == tmux]
        if len(targets) != 1:
            raise CtrlError(f"WPORT_WR to port {port} (tmux {tmux}): no unique generator or readout behind it")
        kind, ch, _ = targets[0]
        sched = self.when(inst)
        actual, issued, late = self.issue(("w", port), sched)
        if kind == "gen":
            self.pulse(ch, wave, actual, sched, issued, late)
        else:
            self.config(ch, wave, actual, sched, issued, late)

    def pulse(self, gen: int, wave: dict, actual: int, sched: int, issued: int, late: int) -> None:
        g = self.cfg["gens"][gen]
        cycles = int(wave["length"]) & 0xFFFFFFFF
        length = math.ceil(cycles * self.f_time / (g["f_fabric"] * 1e6) - 1e-9)
        start = max(actual, self.gen_busy.get(gen, actual))
        self.gen_busy[gen] = start + length
        conf = int(wave["conf"])
        if "n_tones" in g:
            mask = conf & 0xFF
            tones = tuple(i for i in range(g["n_tones"]) if mask >> i & 1)
            self.add(Event("pulse", start, gen, length, tones=tones, outsel="mux", scheduled=sched, issued=issued,
                           late=late))  # fmt: skip
            return
        b_dds = g["b_dds"]
        reg = int(wave["freq"]) % (1 << b_dds)
        decl = self.gen_chs.get(gen, {})
        mixer = decl.get("mixer_freq", {}).get("rounded") if isinstance(decl.get("mixer_freq"), dict) else None
        if mixer is not None:
            if reg >= 1 << (b_dds - 1):
                reg -= 1 << b_dds
            freq = reg * g["f_dds"] / 2**b_dds + mixer
        else:
            freq = reg * g["f_dds"] / 2**b_dds
        outsel = _OUTSEL[conf & 3] + ("/periodic" if conf & 4 else "")
        phase = (int(wave["phase"]) % (1 << g["b_phase"])) * 360.0 / 2 ** g["b_phase"]
        scale = g["maxv"] * (g.get("maxv_scale", 1.0) if conf & 3 == 1 else 1.0)
        gain = _s32(int(wave["gain"])) / scale
        env = ""
        if conf & 3 in (0, 2):
            env = self.env_names.get(gen, {}).get(int(wave["env"]), f"@{int(wave['env'])}")
        self.add(Event("pulse", start, gen, length, freq * 1e6, phase, gain, env, outsel, scheduled=sched,
                       issued=issued, late=late))  # fmt: skip

    def config(self, ro: int, wave: dict, actual: int, sched: int, issued: int, late: int) -> None:
        r = self.cfg["readouts"][ro]
        b = r["b_dds"]
        reg = (-int(wave["freq"])) % (1 << b)
        freq = reg * r["f_dds"] / 2**b
        phase = (int(wave["phase"]) % (1 << r["b_phase"])) * 360.0 / 2 ** r["b_phase"]
        self.add(Event("config", actual, ro, freq_hz=freq * 1e6, phase_deg=phase, scheduled=sched, issued=issued,
                       late=late))  # fmt: skip

    def trigger(self, ro: int, actual: int, sched: int, issued: int, late: int) -> None:
        r = self.cfg["readouts"][ro]
        decl = self.ro_chs.get(ro)
        if decl is None:
            raise CtrlError(f"readout {ro} is triggered but not declared")
        window = int(decl["length"]) * self.f_time / (r["f_output"] * 1e6)
        self.windows.setdefault(ro, []).append((actual, math.ceil(actual + window - 1e-9) + self.delta))
        self.add(Event("trigger", actual, ro, math.ceil(window - 1e-9), scheduled=sched, issued=issued, late=late))

    def read_port(self, port: int) -> None:
        ro = self.in_port.get(port)
        if ro is None:
            raise CtrlError(f"DPORT_RD of input port {port}: no readout feeds it")
        now = int(math.floor(self.now))
        arrived = [w for w in self.windows.get(ro, []) if w[1] <= now]
        if not arrived:
            raise CtrlError(f"DPORT_RD of readout {ro} at cycle {now}: no result has arrived at the tProc yet")
        trig = max(arrived)[0]
        key = (ro, trig)
        if key not in self.values:
            self.values[key] = int(round(float(self.read_cb(ro, trig))))
        self.s[8], self.s[9] = _s32(self.values[key]), 0
        self.add(Event("read", now, ro, value=self.values[key], source=trig))

    # --- the loop
    def run(self, max_steps: int) -> Trace:
        pc_addr = 0
        steps = 0
        while True:
            if steps >= max_steps:
                raise CtrlError(f"the program ran {max_steps} instructions without ending")
            idx = self.addr_index.get(pc_addr)
            if idx is None:
                raise CtrlError(f"execution reached program address {pc_addr}, which holds no instruction")
            inst = self.prog[idx]
            steps += 1
            self.now += self.step_cycles
            nxt = int(inst["P_ADDR"]) + (2 if inst["CMD"] == "WAIT" else 1)
            cmd = inst["CMD"]
            if cmd == "NOP":
                pass
            elif cmd == "REG_WR":
                self.reg_wr(inst)
            elif cmd == "TEST":
                self.update_flags(self.alu(inst["OP"]))
            elif cmd in ("JUMP", "CALL", "RET"):
                target = None
                if cmd == "RET":
                    if not self.stack:
                        raise CtrlError("RET with an empty call stack")
                    target = self.stack.pop()
                elif self.wait_loop(inst):
                    pass
                else:
                    taken = self.cond(inst)
                    if "WR" in inst:
                        self.set(inst["WR"].split()[0], self.alu(inst["OP"]))
                    elif "OP" in inst and inst.get("UF") == "1":
                        self.update_flags(self.alu(inst["OP"]))
                    if taken:
                        target = self.address(inst)
                        if cmd == "CALL":
                            self.stack.append(nxt)
                    if inst.get("IF", "1") not in ("1",):
                        self.add(Event("branch", int(math.floor(self.now)), int(inst["P_ADDR"]), value=int(taken),
                                       source=self.address(inst) if taken else nxt))  # fmt: skip
                if target is not None:
                    if target == int(inst["P_ADDR"]) and inst.get("IF", "1") == "1":
                        self.add(Event("end", int(math.floor(self.now)), -1))
                        break
                    nxt = target
            elif cmd == "WAIT":
                # what it assembles to: TEST s11 - #(t - 10), then JUMP to itself while negative (see wait_loop)
                if inst.get("C_OP") != "time":
                    raise CtrlError(f"unsupported WAIT {inst.get('C_OP')}")
                x = _lit(inst["TIME"]) - _WAIT_OFFSET
                self.update_flags(self.get("s11") - x)
                self.now += self.step_cycles
                steps += 1
                if self.flags[1]:
                    self.now = max(self.now, float(self.ref + x))
                self.update_flags(self.get("s11") - x)
            elif cmd == "TIME":
                op = inst["C_OP"]
                v = _lit(inst["LIT"]) if "LIT" in inst else self.get(inst["R1"]) if "R1" in inst else 0
                if op == "inc_ref":
                    self.ref += v
                elif op == "set_ref":
                    self.ref = v
                else:
                    raise CtrlError(f"unsupported TIME operation {op}")
            elif cmd == "WPORT_WR":
                if inst.get("SRC") == "wmem":
                    wave = self.waves[self.mem_addr(inst["ADDR"])]
                else:
                    wave = dict(zip(_WAVE_FIELDS, self.w))
                self.wave_out(inst, wave)
            elif cmd == "TRIG":
                port = int(inst["DST"])
                sched = self.when(inst)
                actual, issued, late = self.issue(("t", port), sched)
                ro = self.trig_ro.get(("tport", port, 0))
                if inst["SRC"] == "set" and ro is not None:
                    self.trigger(ro, actual, sched, issued, late)
            elif cmd == "DPORT_WR":
                port = int(inst["DST"])
                sched = self.when(inst)
                actual, issued, late = self.issue(("d", port), sched)
                value = int(inst["DATA"]) if inst.get("SRC") == "imm" else self.get(inst["DATA"])
                rising = value & ~self.dport_state.get(port, 0)
                self.dport_state[port] = value
                for bit in range(32):
                    ro = self.trig_ro.get(("dport", port, bit))
                    if rising >> bit & 1 and ro is not None:
                        self.trigger(ro, actual, sched, issued, late)
            elif cmd == "DPORT_RD":
                self.read_port(int(inst["DST"]))
            elif cmd == "DMEM_WR":
                if self.cond(inst):
                    addr = self.mem_addr(inst["DST"])
                    value = _lit(inst["LIT"]) if inst["SRC"] == "imm" else self.alu(inst["OP"])
                    self.dmem[addr] = _s32(value)
                    self.add(Event("dmem", int(math.floor(self.now)), addr, value=_s32(value)))
            elif cmd == "WMEM_WR":
                self.waves_write(self.mem_addr(inst["DST"]))
            else:
                raise CtrlError(f"unsupported instruction {cmd} at program address {inst['P_ADDR']}")
            pc_addr = nxt
        events = tuple(e for _, _, e in sorted(self.events, key=lambda x: (x[0], x[1])))
        return Trace(events, steps, self.s[12], tuple(sorted(self.dmem.items())))

    def wait_loop(self, inst: dict) -> bool:
        """A qick WAIT in machine code: JUMP to itself while s11 - #X < 0, updating the flags. Jump the clock
        to its exit instead of spinning."""
        if not (inst["CMD"] == "JUMP" and inst.get("IF") == "S" and inst.get("UF") == "1" and "WR" not in inst):
            return False
        m = re.fullmatch(r"s11 - #(-?\d+)", inst.get("OP", ""))
        if m is None or self.address(inst) != int(inst["P_ADDR"]):
            return False
        if self.cond(inst):
            self.now = max(self.now, float(self.ref + int(m.group(1))))
        self.update_flags(self.alu(inst["OP"]))
        return True

    def reg_wr(self, inst: dict) -> None:
        src = inst["SRC"]
        dst = inst["DST"]
        if src == "wmem":
            wave = self.waves[self.mem_addr(inst["ADDR"])]
            self.w = [int(wave[f]) for f in _WAVE_FIELDS]
            return
        if not self.cond(inst):
            return
        if src == "imm":
            value = _lit(inst["LIT"])
        elif src == "op":
            value = self.alu(inst["OP"])
            if inst.get("UF") == "1":
                self.update_flags(value)
        elif src == "label":
            value = self.address(inst) if "LABEL" in inst else _lit(inst["ADDR"])
        elif src == "dmem":
            value = self.dmem.get(self.mem_addr(inst["ADDR"]), 0)
        else:
            raise CtrlError(f"unsupported REG_WR source {src}")
        self.set(dst, value)

    def waves_write(self, addr: int) -> None:
        while len(self.waves) <= addr:
            self.waves.append({f: 0 for f in _WAVE_FIELDS})
        self.waves[addr] = dict(zip(_WAVE_FIELDS, self.w))
