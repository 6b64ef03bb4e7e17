"""Board plans -> tProc v2 programs (qick's AcquireProgramV2), their assembly, dumps and the run report.

The program is written as tProc v2 assembly instructions (`asm_inst`), not through qick's timing macros:
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

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from ctrl.backends.qick.boardplan import BoardPlan, Capture, Configure, Decision, Envelope, Flip, Play, Trigger
from ctrl.backends.qick.plan import TRIGGER_WIDTH, WAIT_OFFSET, lower
from ctrl.backends.qick.convert import Converter, wave_words
from ctrl.backends.qick.dumpjson import render_dump
from ctrl.backends.qick.resources import Usage, check_plan, plays, wave_key
from ctrl.backends.qick.sheet import REGS, BoardSheet, EnvSlot, QickSheet, Test
from ctrl.compile.timed import TimedProgram
from ctrl.errors import CtrlError
from ctrl.files import write_atomic

if TYPE_CHECKING:
    from ctrl.device import Device

DEFAULT_ATTEMPTS = 1000
COUNTER = "s12"  # s_core_w1: the shot counter acquire() polls (counter_addr 1)
LOOP = "r0"

SHOT_ACCOUNTING = (
    "one acquire() shot = one attempt slot (reset, then the attempt until completion or abort); every slot "
    "fires the same readout triggers: an aborted attempt fires its remaining windows as dummy triggers. "
    "dmem[slot] = 0 if the attempt ran to its end, k + 1 if it aborted at decision k; dummy and reset "
    "windows are listed per readout under `readouts`."
)


@contextlib.contextmanager
def quiet_qick():
    """qick warns through `logging` (version mismatch of old dumps, ...); library code stays silent."""
    log = logging.getLogger("qick")
    old = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(old)


@dataclass(frozen=True)
class BoardProgram:
    board: str
    asm: str  # tProc v2 assembly text
    dump: str  # JSON of dump_prog(): reloads with load_prog() to the same machine code
    firmware: str  # JSON of the firmware description the program was compiled against
    usage: dict
    # the board's plan, or (a patched program) a function giving it on first use
    plan_source: object = field(repr=False, compare=False)
    sheet: BoardSheet | None = field(repr=False, compare=False, default=None)  # what a pulse-only patch needs

    def __repr__(self) -> str:
        u = self.usage
        return (f"BoardProgram({self.board}: {u['pmem_words']}/{u['pmem_size']} program words, "
                f"{u['wmem_words']}/{u['wmem_size']} waveforms)")

    @property
    def plan(self) -> BoardPlan:
        p = self.plan_source
        if not isinstance(p, BoardPlan):
            p = p()
            object.__setattr__(self, "plan_source", p)
        return p

    @property
    def machine_code(self) -> dict:
        """pmem and wmem as lists of 8-word rows (what qick's binprog holds)."""
        code = self.__dict__.get("_code")
        if code is None:
            code = {"pmem": self.sheet.pmem.tolist(), "wmem": self.sheet.wmem.tolist()}
            object.__setattr__(self, "_code", code)
        return code

    def dump_dict(self) -> dict:
        return json.loads(self.dump)

    def firmware_dict(self) -> dict:
        return json.loads(self.firmware)


@dataclass(frozen=True)
class QickPrograms:
    boards: tuple[BoardProgram, ...]
    report: dict
    sheet: QickSheet | None = field(repr=False, compare=False, default=None)

    def __repr__(self) -> str:
        rt = len(self.report["realtime_decisions"])
        return f"QickPrograms({', '.join(repr(b) for b in self.boards)}; {rt} real-time decisions)"

    def board(self, name: str) -> BoardProgram:
        for b in self.boards:
            if b.board == name:
                return b
        raise CtrlError(f"no QICK program for board {name!r} (boards: {', '.join(b.board for b in self.boards)})")

    def texts(self) -> dict[str, str]:
        """The files write_qick writes, by name."""
        out = {}
        for b in self.boards:
            out[f"qick_{b.board}.asm"] = b.asm
            out[f"qick_{b.board}.json"] = b.dump
            out[f"firmware_{b.board}.json"] = b.firmware
        return out


def emit_qick(
    device: Device, program: TimedProgram, attempts: int = DEFAULT_ATTEMPTS, firmware: Mapping[str, dict] | None = None
) -> QickPrograms:
    """tProc v2 programs for every board `program` uses: `attempts` attempt slots each (one acquire() shot
    per slot). `firmware` maps a board to the description to compile against (a board's own
    `soc.dump_cfg()`) instead of the device file's. Raises CtrlError on any resource limit, before qick
    compiles."""
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise CtrlError(f"attempts must be a positive integer, got {attempts!r}")
    device.target.check_program(program)
    firmware = dict(firmware or {})
    plans, units = lower(device, program, attempts, firmware)
    boards = []
    for name, plan in sorted(plans.items()):
        fw = units.fw[name]
        dmem = int(fw["tprocs"][0]["dmem_size"])
        if attempts > dmem:
            raise CtrlError(
                f"board {name}: data memory: {attempts} attempt slots need one outcome word each; dmem_size is {dmem}"
            )
        usage = check_plan(plan, fw)
        boards.append(_board_program(plan, fw, usage, units))
    report = _report(program, plans, boards)
    sheet = QickSheet(
        device.wiring_hash, {b.board: _sha(b.firmware) for b in boards},
        tuple(sorted(b for b in plans if b in firmware)),
        attempts, program.clock_hz, dict(units._pulses), {q: tuple(v) for q, v in units.tape.items()},
        dict(units.corrections), frame_sums(units.tape, units.corrections), tuple(units.readout_users),
        {b.board: b.sheet for b in boards}, report,
    )  # fmt: skip
    return QickPrograms(tuple(boards), report, sheet)


def programs_from_sheet(sheet: QickSheet, files: Mapping[str, str | bytes]) -> QickPrograms:
    """The QICK programs of an emission from its sheet and the files write_qick wrote (by name, text or
    bytes), as patch_qick needs them (their `plan` is not kept)."""
    def text(name: str) -> str:
        v = files[name]
        return v.decode() if isinstance(v, bytes) else v

    boards = tuple(
        BoardProgram(b, text(f"qick_{b}.asm"), text(f"qick_{b}.json"), text(f"firmware_{b}.json"), bs.usage,
                     _plan_not_kept, bs)
        for b, bs in sorted(sheet.boards.items())
    )  # fmt: skip
    return QickPrograms(boards, sheet.report, sheet)


def _plan_not_kept():
    raise CtrlError("the plan of QICK programs rebuilt from their files is not kept: emit_qick gives it")


def frame_sums(tape: dict, corrections: dict) -> dict[str, tuple[float, ...]]:
    """Each qubit's frame after each of its increments, summed in the lowering's order."""
    values = {gate: dict(pairs) for gate, pairs in corrections.items()}
    out = {}
    for q, entries in tape.items():
        s = 0.0
        sums = [s]
        for e in entries:
            s = s + (values[(e[1], e[2])][q] if isinstance(e, tuple) else e)
            sums.append(s)
        out[q] = tuple(sums)
    return out


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def write_qick(programs: QickPrograms, out: Path) -> list[Path]:
    """qick_<board>.asm, qick_<board>.json (dump_prog) and firmware_<board>.json per board."""
    out = Path(out)
    paths = []
    for b in programs.boards:
        for name, text in ((f"qick_{b.board}.asm", b.asm), (f"qick_{b.board}.json", b.dump),
                           (f"firmware_{b.board}.json", b.firmware)):  # fmt: skip
            write_atomic(out / name, text)
            paths.append(out / name)
    return paths


def load_program(dump: dict | str, firmware: dict | str):
    """A qick program object rebuilt from a dump (as a client would load it)."""
    from qick import QickConfig
    from qick.asm_v2 import AcquireProgramV2

    dump = json.loads(dump) if isinstance(dump, str) else dump
    firmware = json.loads(firmware) if isinstance(firmware, str) else firmware
    with quiet_qick():
        prog = AcquireProgramV2(QickConfig(firmware))
        prog.load_prog(dump)
    return prog


# ------------------------------------------------------------------------------------------ one board


class _Writer:
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


def envelope_data(env: Envelope, maxv: int) -> tuple[np.ndarray, np.ndarray | None]:
    from qick.helpers import DRAG, gauss

    n = env.samples
    if env.shape == "gaussian":
        return gauss(mu=n / 2 - 0.5, si=env.sigma, length=n, maxv=maxv), None
    if env.shape == "drag":
        return DRAG(mu=n / 2 - 0.5, si=env.sigma, length=n, maxv=maxv, delta=env.delta, alpha=env.alpha, det=0)

    def flat(m: int) -> np.ndarray:
        r = env.rise
        if r == 0:
            return np.full(m, float(maxv))
        ramp = gauss(mu=r - 0.5, si=r / 2, length=2 * r, maxv=maxv)
        return np.concatenate([ramp[:r], np.full(m - 2 * r, float(maxv)), ramp[r:]])

    if env.shape == "flat_top":
        return flat(n), None
    if env.shape == "net_zero":
        half = n // 2
        return np.concatenate([flat(half), -flat(n - half)]), None
    raise CtrlError(f"internal: no envelope for shape {env.shape}")


_PROGRAM = None


def program_class():
    """qick's AcquireProgramV2, with its machine-code assembly spared a redundant deep copy (qick copies the
    instruction list before assembling it, and the assembler copies it again; instructions here are flat
    dicts of str and int, so a shallow copy of each is a deep copy) and the waveform words packed for all
    waveforms at once. Same bytes (tested against the plain class)."""
    global _PROGRAM
    if _PROGRAM is None:
        from qick.asm_v2 import AcquireProgramV2
        from qick.tprocv2_assembler import Assembler

        class _Inst(dict):
            __slots__ = ()

            def __deepcopy__(self, memo):
                return _Inst(self)

        class CtrlProgramV2(AcquireProgramV2):
            def _add_asm(self, inst, addr_inc=1):
                inst = _Inst(inst)
                inst["P_ADDR"] = self.p_addr
                inst["LINE"] = self.line
                self.p_addr += addr_inc
                self.line += 1
                self.prog_list.append(inst)

            def _compile_prog(self):
                return Assembler.list2bin(self.prog_list, self.labels)[1]  # list2bin copies before it edits

            def _compile_waves(self):  # Waveform.compile for all at once (tested against it)
                if not self.waves:
                    return None
                regs = np.array([[getattr(w[f], "start", w[f]) for f in REGS] for w in self.waves], dtype=np.int64)
                return wave_words(regs).tolist()

        _PROGRAM = CtrlProgramV2
    return _PROGRAM


_FAST_PULSES = True  # constant and envelope pulses converted by convert.py (tests compare with add_pulse)


def _one_waveform(prog, fw: dict, gen: int) -> bool:
    """A generator whose constant and envelope pulses add_pulse makes into one waveform (a standard
    generator with a DDS: full-speed and interpolated ones)."""
    from qick.asm_v2 import StandardGenManager

    return type(prog._gen_mgrs[gen]) is StandardGenManager and bool(fw["gens"][gen].get("has_dds"))


def declare(prog, soccfg, fw: dict, board: str, gens: dict, readouts: dict, configs: dict) -> dict[str, int]:
    """Declare a board's generators, readouts and readout configurations; check the PFB channels. Returns the
    waveform-memory address of each configuration."""
    for g, decl in gens.items():
        kw = {"nqz": decl.nqz}
        if decl.mixer_hz is not None:
            kw["mixer_freq"] = decl.mixer_hz / 1e6
        if decl.mux_freqs_hz:
            kw["mux_freqs"] = [f / 1e6 for f in decl.mux_freqs_hz]
            if fw["gens"][g].get("has_gain"):
                kw["mux_gains"] = list(decl.mux_gains)
        if decl.ro is not None and (decl.mux_freqs_hz or decl.mixer_hz is not None):
            kw["ro_ch"] = decl.ro
        prog.declare_gen(ch=g, **kw)
    for ro, decl in readouts.items():
        length = decl.cycles / fw["readouts"][ro]["f_output"]
        if decl.dynamic:
            prog.declare_readout(ch=ro, length=length)
        else:
            prog.declare_readout(ch=ro, length=length, freq=decl.freq_hz / 1e6, phase=decl.phase_deg,
                                 gen_ch=decl.gen)  # fmt: skip
    _check_pfb(prog, soccfg, board)
    index = {}
    for name, c in configs.items():
        prog.add_readoutconfig(ch=c.ro, name=name, freq=c.freq_hz / 1e6, phase=c.phase_deg, gen_ch=c.gen)
        index[name] = prog.wave2idx[prog.pulses[name].get_wavenames()[0]]
    return index


def add_envelope(prog, soccfg, fw: dict, board: str, env: Envelope, name: str, what: str) -> None:
    maxv = soccfg.get_maxv(env.gen)
    idata, qdata = envelope_data(env, maxv)
    full = fw["gens"][env.gen]["maxv"]
    if qdata is not None and np.max(np.abs(qdata)) > full:
        raise CtrlError(f"board {board} gen {env.gen}: {what}: the DRAG quadrature exceeds full scale")
    prog.add_envelope(ch=env.gen, name=name, idata=idata, qdata=qdata)


def _board_program(plan: BoardPlan, fw: dict, usage: Usage, units) -> BoardProgram:
    from qick import QickConfig
    from qick.asm_v2 import Waveform

    firmware_text = json.dumps(fw, indent=1, sort_keys=True) + "\n"
    b = plan.board
    with quiet_qick():
        soccfg = QickConfig(json.loads(firmware_text))
        prog = program_class()(soccfg)
        try:
            writer = _Writer(prog, plan, usage, fw)
            writer.config_index = declare(prog, soccfg, fw, b, plan.gens, plan.readouts, plan.configs)
            env_names: dict[Envelope, str] = {}
            rows = []
            conv = Converter(prog, fw, b)
            phases: dict[int, list] = {}  # generator -> (waveform, phase) converted together at the end
            for p in plays(plan):
                key = wave_key(fw, p)
                idx = writer.wave_index.get(key)
                if idx is None:
                    name = f"p{len(writer.wave_index)}"
                    if p.style == "mux":
                        prog.add_pulse(ch=p.gen, name=name, style="const", mask=list(p.tones),
                                       length=p.cycles / fw["gens"][p.gen]["f_fabric"])  # fmt: skip
                    elif _FAST_PULSES and _one_waveform(prog, fw, p.gen):
                        # what add_pulse makes of it (convert.py), without a QickPulse per pulse
                        env, length = 0, None
                        if p.style == "arb":
                            if p.envelope not in env_names:
                                env_names[p.envelope] = f"e{len(env_names)}_{p.envelope.shape}"
                                add_envelope(prog, soccfg, fw, b, p.envelope, env_names[p.envelope], p.what)
                            e = prog.envelopes[p.gen]["envs"][env_names[p.envelope]]
                            spc = fw["gens"][p.gen]["samps_per_clk"]
                            env, length = e["addr"] // spc, e["data"].shape[0] // spc
                        else:
                            length = conv.length(p.gen, p.cycles)
                        if not 3 <= length < 2**16:
                            raise RuntimeError(f"pulse length of {length} cycles is outside [3, 2**16)")
                        wave = Waveform(conv.freq(p.gen, p.freq_hz, p.ro), 0, env, conv.gain(p.gen, p.style, p.gain),
                                        length, conv.conf(p.gen, "dds" if p.style == "const" else p.outsel))
                        prog._register_wave(wave, f"{name}_w0")
                        phases.setdefault(p.gen, []).append((wave, p.phase_deg))
                        idx = writer.wave_index[key] = len(prog.waves) - 1
                        rows.append((p.role[0] if p.role else None, p.role[1] if p.role else -1, idx))
                        continue
                    elif p.style == "const":
                        kw = {"ro_ch": p.ro} if p.ro >= 0 else {}
                        prog.add_pulse(ch=p.gen, name=name, style="const", freq=p.freq_hz / 1e6, phase=p.phase_deg,
                                       gain=p.gain, length=p.cycles / fw["gens"][p.gen]["f_fabric"], **kw)  # fmt: skip
                    else:
                        env = p.envelope
                        if env not in env_names:
                            env_names[env] = f"e{len(env_names)}_{env.shape}"
                            add_envelope(prog, soccfg, fw, b, env, env_names[env], p.what)
                        kw = {"ro_ch": p.ro} if p.ro >= 0 else {}
                        prog.add_pulse(ch=p.gen, name=name, style="arb", freq=p.freq_hz / 1e6, phase=p.phase_deg,
                                       gain=p.gain, envelope=env_names[env], outsel=p.outsel, **kw)  # fmt: skip
                    idx = writer.wave_index[key] = prog.wave2idx[prog.pulses[name].get_wavenames()[0]]
                rows.append((p.role[0] if p.role else None, p.role[1] if p.role else -1, idx))
            for gen, todo in phases.items():
                for (wave, _), reg in zip(todo, conv.phases(gen, [ph for _, ph in todo]).tolist()):
                    wave.phase = reg
            _program_text(writer, plan, program_stamp(units.program, b, plan.attempts))
            prog.compile()
            trigs = {ro: len(labels) for ro, labels in plan.readout_labels.items()}
            for ro, n in trigs.items():
                prog.ro_chs[ro]["trigs"] = n
            prog.setup_acquire(counter_addr=1, loop_dims=[plan.attempts], avg_level=0)
        except RuntimeError as e:  # qick's own refusals: name the board
            raise CtrlError(f"board {b}: qick refused the program: {e}") from None
        usage.pmem_words = len(prog.binprog["pmem"])
        if usage.pmem_words != writer.words:
            raise CtrlError(f"internal: board {b}: counted {writer.words} program words, qick wrote {usage.pmem_words}")
        usage.wmem_words = len(prog.binprog["wmem"] or [])
        dump, spans = render_dump(prog.dump_prog())
        dump += "\n"
        asm = prog.asm()
    header = (
        f"// ctrl QICK program for board {b}: {plan.attempts} attempt slots, {usage.pmem_words}/{usage.pmem_size} "
        f"program words, {usage.wmem_words}/{usage.wmem_size} waveforms\n"
    )
    asm = header + asm
    usage_doc = usage.as_dict()
    # the sheet: where every pulse parameter went
    keys = {idx: key for key, idx in writer.wave_index.items()}
    configs = {idx: name for name, idx in writer.config_index.items()}
    roles: dict[tuple, int] = {}
    play_role = [roles.setdefault(key, len(roles)) if key is not None else -1 for key, _, _ in rows]
    play_wave = [w for _, _, w in rows]
    first = [-1] * len(prog.waves)
    for i in range(len(rows) - 1, -1, -1):
        first[play_wave[i]] = i
    regs = [[int(getattr(w[f], "start", w[f])) for f in REGS] for w in prog.waves]
    envs = tuple(EnvSlot(env.gen, name, env, int(prog.envelopes[env.gen]["envs"][name]["addr"]))
                 for env, name in env_names.items())  # fmt: skip
    asm_tests = []
    at = 0
    for t in writer.tests:
        at = asm.index(f"TEST -op(s8 - #{t.threshold})", at) + len("TEST -op(s8 - #")
        asm_tests.append((at, at + len(str(t.threshold))))
    mixers = {g: (c["mixer_freq"]["rounded"] if "mixer_freq" in c else None) for g, c in prog.gen_chs.items()}
    sheet = BoardSheet(
        b, tuple(roles), np.array(play_role, dtype=np.int32), np.array([n for _, n, _ in rows], dtype=np.int32),
        np.array(play_wave, dtype=np.int32), tuple(w.name for w in prog.waves),
        tuple(keys.get(i) for i in range(len(prog.waves))), np.array(regs, dtype=np.int64).reshape(-1, len(REGS)),
        np.array(first, dtype=np.int32), np.array(spans.waves, dtype=np.int64).reshape(-1, 2), configs, envs,
        spans.envelope_data, tuple(writer.tests), tuple(spans.prog[t.inst] for t in writer.tests), tuple(asm_tests),
        {"envelopes": spans.envelopes, "gen_chs": spans.gen_chs, "ro_chs": spans.ro_chs},
        (dict(plan.gens), dict(plan.readouts), dict(plan.configs),
         {g: dict(v) for (bb, g), v in units.mux_tones.items() if bb == b}),
        mixers, trigs, usage_doc, np.array(prog.binprog["pmem"], dtype=np.int64),
        np.array(prog.binprog["wmem"] or [], dtype=np.int64).reshape(-1, 8),
    )  # fmt: skip
    return BoardProgram(b, asm, dump, firmware_text, usage_doc, plan, sheet)


def _check_pfb(prog, soccfg, board: str) -> None:
    """What qick's config_readouts does when a board runs the program: compute each static readout's
    polyphase-filter channel and refuse two tones on one channel of a PFB that cannot share it."""
    pfbs: dict[str, list] = {}
    for ch, cfg in prog.ro_chs.items():
        rocfg = soccfg["readouts"][ch]
        if "tproc_ctrl" in rocfg or "pfb_port" not in rocfg:
            continue
        gen = cfg.get("gen_ch")
        decl = prog.gen_chs.get(gen, {})
        mixer = decl["mixer_freq"]["rounded"] if "mixer_freq" in decl else 0
        regs = dict(cfg["ro_config"])
        soccfg.calc_ro_freq(rocfg, cfg, regs, prog.ABSOLUTE_FREQS, mixer, prog.FLIP_DOWNCONVERSION)
        others = pfbs.setdefault(rocfg["ro_fullpath"], [])
        try:
            soccfg.check_pfb_collisions(rocfg, regs, others)
        except RuntimeError as e:
            raise CtrlError(f"board {board} ro {ch}: PFB channel: {' '.join(str(e).split())}") from None
        others.append(regs)


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


def _program_text(w: _Writer, plan: BoardPlan, stamp: tuple[int, int]) -> None:
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


# ------------------------------------------------------------------------------------------ the report


def _report(program: TimedProgram, plans: dict[str, BoardPlan], boards: list[BoardProgram]) -> dict:
    clk = program.clock_hz
    any_plan = next(iter(plans.values()))
    realtime = sorted({k for p in plans.values() for k in p.aborts})
    post = [{"decision": p.decision, "checks": list(p.checks), "reason": p.reason} for p in any_plan.post_selected]
    out = {
        "shot_accounting": SHOT_ACCOUNTING,
        "attempt_slots": any_plan.attempts,
        "reset_cycles": any_plan.reset.length,
        "reset_s": any_plan.reset.length / clk,
        "abort_duration_cycles": program.abort_duration,
        "realtime_decisions": realtime,
        "post_selected": post,
        "checks_post_selected": sorted(c for p in any_plan.post_selected for c in p.checks),
        "boards": {},
    }
    for bp in boards:
        p = bp.plan
        out["boards"][bp.board] = {
            "usage": bp.usage,
            "attempt_cycles": p.attempt.length,
            "abort_cycles": {str(k): blk.length for k, blk in sorted(p.aborts.items())},
            "reads_per_shot": {str(ro): len(v) for ro, v in p.readout_labels.items()},
            "readouts": {str(ro): list(v) for ro, v in p.readout_labels.items()},
            "heralded_reset": list(p.heralded),
        }
    return out
