"""One board's tProc v2 program assembled through qick (AcquireProgramV2): declarations, envelopes and
waveforms, the instruction stream (`stream.py`), machine code, the dump, the assembly text and the sheet
a pulse-only patch needs (`sheet.py`); and the program form a board's files are read back into.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field

import numpy as np

from ctrl.backends.qick.boardplan import BoardPlan, Envelope
from ctrl.backends.qick.convert import Converter, wave_words
from ctrl.backends.qick.dumpjson import render_dump
from ctrl.backends.qick.resources import Usage, plays, wave_key
from ctrl.backends.qick.sheet import REGS, BoardSheet, EnvSlot
from ctrl.backends.qick.stream import Writer, program_stamp, program_text
from ctrl.errors import CtrlError


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


def board_program(plan: BoardPlan, fw: dict, usage: Usage, units) -> BoardProgram:
    """One board's program: its plan assembled through qick, dumped, and the sheet of where every pulse
    parameter went."""
    from qick import QickConfig
    from qick.asm_v2 import Waveform

    firmware_text = json.dumps(fw, indent=1, sort_keys=True) + "\n"
    b = plan.board
    with quiet_qick():
        soccfg = QickConfig(json.loads(firmware_text))
        prog = program_class()(soccfg)
        try:
            writer = Writer(prog, plan, usage, fw)
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
            program_text(writer, plan, program_stamp(units.program, b, plan.attempts))
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
