"""The model of a board running a tProc v2 program, instruction by instruction, that `verify.interpret`
runs: the execution model is `verify.py`'s docstring.
"""

from __future__ import annotations

import heapq
import math
import re

from ctrl.backends.qick.decode import decode_pmem, decode_wmem
from ctrl.backends.qick.operands import SREG_NAMES, WREG_NAMES, lit, s32
from ctrl.backends.qick.trace import Event, Trace
from ctrl.errors import CtrlError

_OUTSEL = {0: "product", 1: "dds", 2: "input", 3: "zero"}
_WAVE_FIELDS = ("freq", "phase", "env", "gain", "length", "conf")
_WAIT_OFFSET = 10


class Machine:
    """A tProc v2 running one program: its registers, flags, reference time and clock, and the board's
    timed output queues, generators and readout windows (`verify.py`'s docstring: the model)."""

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
        self.labels = {k: lit(v) for k, v in dump.get("labels", {}).items()}
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
        if name in SREG_NAMES:
            return "s", SREG_NAMES[name]
        if name in WREG_NAMES:
            return "w", WREG_NAMES[name]
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
                return s32(int(math.floor(self.now)) - self.ref)
            return self.s[i]
        if kind == "r":
            return self.r[i]
        return self.w[i]

    def set(self, name: str, value: int) -> None:
        if name == "r_wave":
            raise CtrlError("r_wave is written from waveform memory only")
        kind, i = self.reg_index(name)
        value = s32(value)
        if kind == "s":
            if i not in (0, 11):
                self.s[i] = value
        elif kind == "r":
            self.r[i] = value
        else:
            self.w[i] = value

    def operand(self, text: str) -> int:
        if text.startswith(("#", "&", "@")):
            return lit(text)
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
        v = s32(value)
        self.flags = (v == 0, v < 0)

    def address(self, inst: dict, key: str = "ADDR") -> int:
        """A jump or label target: &n, s15, or a label name."""
        if key in inst:
            a = inst[key]
            if a == "s15":
                return self.s[15]
            return lit(a)
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
            total += self.get(p) if re.fullmatch(r"[srw]\d+", p) or p in SREG_NAMES else lit(p)
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
            return self.ref + lit(inst["TIME"])
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
        gain = s32(int(wave["gain"])) / scale
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
        self.s[8], self.s[9] = s32(self.values[key]), 0
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
                x = lit(inst["TIME"]) - _WAIT_OFFSET
                self.update_flags(self.get("s11") - x)
                self.now += self.step_cycles
                steps += 1
                if self.flags[1]:
                    self.now = max(self.now, float(self.ref + x))
                self.update_flags(self.get("s11") - x)
            elif cmd == "TIME":
                op = inst["C_OP"]
                v = lit(inst["LIT"]) if "LIT" in inst else self.get(inst["R1"]) if "R1" in inst else 0
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
                    value = lit(inst["LIT"]) if inst["SRC"] == "imm" else self.alu(inst["OP"])
                    self.dmem[addr] = s32(value)
                    self.add(Event("dmem", int(math.floor(self.now)), addr, value=s32(value)))
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
            value = lit(inst["LIT"])
        elif src == "op":
            value = self.alu(inst["OP"])
            if inst.get("UF") == "1":
                self.update_flags(value)
        elif src == "label":
            value = self.address(inst) if "LABEL" in inst else lit(inst["ADDR"])
        elif src == "dmem":
            value = self.dmem.get(self.mem_addr(inst["ADDR"]), 0)
        else:
            raise CtrlError(f"unsupported REG_WR source {src}")
        self.set(dst, value)

    def waves_write(self, addr: int) -> None:
        while len(self.waves) <= addr:
            self.waves.append({f: 0 for f in _WAVE_FIELDS})
        self.waves[addr] = dict(zip(_WAVE_FIELDS, self.w))
