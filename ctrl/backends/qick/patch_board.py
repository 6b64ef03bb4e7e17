"""How one board's files are rewritten by a pulse-only patch (`patch.py`): the waveform words (in wmem
and the dump), the envelope table and data, the threshold tests (their machine-code word, the dump and
the assembly line), the generator and readout declarations; each edit spliced into the previous text,
and the sheet's offsets moved with the edits before them.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from ctrl.backends.qick.assemble import BoardProgram, add_envelope, declare, program_class, quiet_qick
from ctrl.backends.qick.convert import wave_words
from ctrl.backends.qick.dumpjson import EnvelopeData, encode, render_envelopes
from ctrl.backends.qick.patch_waves import ENV, FREQ, WaveRegisters
from ctrl.backends.qick.sheet import REGS, EnvSlot, NotPatchable, role_name
from ctrl.errors import CtrlError
from ctrl.jsontext import esc

_IMM = 0x7FFFFF80  # a TEST's immediate operand in its first machine word (24 bits, two's complement)


class BoardPatch(WaveRegisters):
    """The previous program of one board with the new calibration: `run()` gives the patched BoardProgram."""

    def run(self) -> BoardProgram:
        s = self.s
        regs = s.wave_regs
        new_regs = regs.copy()
        dirty_waves = self.pulses_to_waves(new_regs)
        envs, env_moved, usage = self.envelopes()
        decl_waves, gen_text, ro_text, mixers = self.declarations(new_regs)
        rewritten = set(dirty_waves) | decl_waves
        if env_moved or mixers != s.mixers:
            rewritten |= self.refresh(new_regs, envs, mixers)
        rewritten = sorted(set(np.flatnonzero((new_regs != regs).any(axis=1)).tolist()) & rewritten)
        # the dump: waveforms, threshold tests, envelopes, declarations, spliced into the previous text
        edits = []  # (start, end, text)
        wmem = s.wmem
        if rewritten:
            wmem = wmem.copy()
            wmem[rewritten] = wave_words(new_regs[rewritten])
            names = s.wave_names
            for w, r, (a, b) in zip(rewritten, new_regs[rewritten].tolist(), s.wave_spans[rewritten].tolist()):
                edits.append((a, b, _wave_text(r, names[w])))
        pmem, tests, asm_edits, test_edits = self.thresholds()
        edits += test_edits
        env_spans = s.env_spans
        env_old = s.spans["envelopes"]
        if env_moved:
            text, env_spans = self.envelope_section(envs, env_old[0])
            edits.append((env_old[0], env_old[1], text))
        else:
            for e in envs:
                if e.envelope != self.old_env[(e.gen, e.name)]:
                    span = s.env_spans[(e.gen, e.name)]
                    edits.append((span[0], span[1], '"' + self.data(e).b64 + '"'))
        if gen_text is not None:
            edits.append((*s.spans["gen_chs"], gen_text))
        if ro_text is not None:
            edits.append((*s.spans["ro_chs"], ro_text))
        dump, moves = _splice(self.bp.dump, edits)
        asm, _ = _splice(self.bp.asm, asm_edits)
        # the sheet of the new program: offsets move with the edits before them
        names = list(s.spans)
        env_keys = list(env_spans)
        flat = np.array([s.spans[k] for k in names] + list(s.test_spans) + ([] if env_moved else
                        [env_spans[k] for k in env_keys]), dtype=np.int64).reshape(-1, 2)  # fmt: skip
        flat = _shift(flat, moves).tolist()
        spans = {k: tuple(flat[i]) for i, k in enumerate(names)}
        test_spans = tuple(tuple(v) for v in flat[len(names):len(names) + len(s.test_spans)])
        if env_moved:
            shift = spans["envelopes"][0] - env_old[0]
            env_spans = {k: (a + shift, b + shift) for k, (a, b) in env_spans.items()}
        else:
            env_spans = {k: tuple(v) for k, v in zip(env_keys, flat[len(names) + len(s.test_spans):])}
        wave_spans = _shift(s.wave_spans, moves)
        asm_tests = tuple(tuple(v) for v in _shift(np.array(s.asm_tests, dtype=np.int64).reshape(-1, 2),
                                                   _splice_moves(asm_edits)).tolist())  # fmt: skip
        new_sheet = replace(
            s, wave_keys=self.wave_keys, wave_regs=new_regs, wave_spans=wave_spans, envelopes=envs,
            env_spans=env_spans, tests=tests, test_spans=test_spans,
            asm_tests=asm_tests, spans=spans, decls=self.decls, mixers=mixers, usage=usage, pmem=pmem, wmem=wmem,
        )  # fmt: skip
        return BoardProgram(self.board, asm, dump, self.bp.firmware, usage, _no_plan, new_sheet)

    # --- envelopes
    def envelopes(self):
        """The envelope table on the new calibration: (slots, whether names or addresses moved, usage)."""
        s = self.s
        self.old_env = {(e.gen, e.name): e.envelope for e in s.envelopes}
        if not any(self.pulses[k].envelope != self.sheet.pulses[k].envelope for k in s.roles if k in self.changed):
            return s.envelopes, False, s.usage
        names: dict = {}
        slots = []
        next_addr: dict[int, int] = {}
        for r in s.play_role.tolist():
            if r < 0:
                continue
            env = self.pulses[s.roles[r]].envelope
            if env is None or env in names:
                continue
            names[env] = name = f"e{len(names)}_{env.shape}"
            addr = next_addr.get(env.gen, 0)
            next_addr[env.gen] = addr + env.samples
            slots.append(EnvSlot(env.gen, name, env, addr))
        moved = [(e.gen, e.name, e.addr) for e in slots] != [(e.gen, e.name, e.addr) for e in s.envelopes]
        usage = s.usage
        if moved:
            used = {g: sum(e.envelope.samples for e in slots if e.gen == g) for g in next_addr}
            for g, n in used.items():
                maxlen = int(self.fw["gens"][g].get("maxlen", 0))
                if n > maxlen:
                    raise NotPatchable(f"board {self.board} gen {g}: envelope memory: {n} samples exceed {maxlen}")
            usage = json.loads(json.dumps(usage))
            usage["envelope_samples"] = {str(g): {"used": n, "maxlen": int(self.fw["gens"][g].get("maxlen", 0))}
                                         for g, n in sorted(used.items())}  # fmt: skip
        return tuple(slots), moved, usage

    def data(self, e: EnvSlot) -> EnvelopeData:
        """An envelope's data as qick's add_envelope stores it and NpEncoder writes it."""
        key = ("e", e.envelope)
        d = self._memo.get(key)
        if d is None:
            prog = program_class()(self.soccfg)
            try:
                with quiet_qick():
                    add_envelope(prog, self.soccfg, self.fw, self.board, e.envelope, e.name, role_name(("env",)))
            except (CtrlError, RuntimeError, ValueError) as err:
                raise NotPatchable(str(err)) from None
            from qick.helpers import NpEncoder

            b64, shape, dtype = NpEncoder().default(prog.envelopes[e.gen]["envs"][e.name]["data"])
            d = self._memo[key] = EnvelopeData(b64, list(shape), dtype)
        return d

    def envelope_section(self, envs, start: int):
        """The dump's `envelopes` value for a new envelope table (data of unchanged envelopes reused)."""
        s = self.s
        old_by_value = {e.envelope: (e.gen, e.name) for e in s.envelopes}
        table = [{"envs": {}, "next_addr": 0} for _ in self.fw["gens"]]
        for e in envs:
            old = old_by_value.get(e.envelope)
            if old is not None:
                a, b = s.env_spans[old]
                data = EnvelopeData(json.loads(self.bp.dump[a:b]), [e.envelope.samples, 2], "<i2")
            else:
                data = self.data(e)
            table[e.gen]["envs"][e.name] = {"addr": e.addr, "data": data}
            table[e.gen]["next_addr"] = e.addr + e.envelope.samples
        return render_envelopes(table, start)

    # --- declarations
    def declarations(self, new_regs: np.ndarray):
        """Generators' and readouts' declarations on the new calibration; when any changed, declared again
        through qick: (configuration waveforms rewritten, gen_chs text or None, ro_chs text or None, mixers)."""
        s, u, b = self.s, self.units, self.board
        gens, readouts, configs, tones = s.decls
        new_tones = {g: dict(v) for (bb, g), v in u.mux_tones.items() if bb == b}
        old_pulses = self.sheet.pulses
        if new_tones == tones and all(self.pulses[k].freq_hz == old_pulses[k].freq_hz for k in s.roles
                                      if k in self.changed):  # fmt: skip
            new_gens = gens  # what gen_decl reads (the tones, each generator's frequencies) is as it was
        else:
            freqs: dict[int, set] = {}
            for key in s.roles:
                p = self.pulses[key]
                freqs.setdefault(p.gen, set()).add(p.freq_hz)
            try:
                new_gens = {g: u.gen_decl(b, g, set() if g in new_tones else freqs.get(g, set())) for g in gens}
            except CtrlError as e:
                raise NotPatchable(str(e)) from None
        new_readouts = dict(sorted(u.readouts[b].items()))
        new_configs = dict(sorted(u.configs[b].items()))
        self.decls = (new_gens, new_readouts, new_configs, new_tones)
        if (new_gens, new_readouts, new_configs, new_tones) == (gens, readouts, configs, tones):
            return set(), None, None, s.mixers
        if list(new_readouts) != list(readouts) or list(new_configs) != list(configs) or list(new_gens) != list(gens):
            raise NotPatchable(f"board {b}: other generators, readouts or readout configurations")
        prog = program_class()(self.soccfg)
        try:
            with quiet_qick():
                index = declare(prog, self.soccfg, self.fw, b, new_gens, new_readouts, new_configs)
        except CtrlError as e:
            raise NotPatchable(str(e)) from None
        except RuntimeError as e:
            raise NotPatchable(f"board {b}: qick refused the declarations: {e}") from None
        rewritten = set()
        for name, w in index.items():
            if s.configs.get(w) != name:
                raise NotPatchable(f"board {b}: readout configuration {name} moved in waveform memory")
            wave = prog.waves[w]
            new_regs[w] = [int(getattr(wave[f], "start", wave[f])) for f in REGS]
            rewritten.add(w)
        for ro, n in s.trigs.items():
            prog.ro_chs[ro]["trigs"] = n
        mixers = {g: (c["mixer_freq"]["rounded"] if "mixer_freq" in c else None) for g, c in prog.gen_chs.items()}
        return rewritten, encode(prog.gen_chs, "\n "), encode(prog.ro_chs, "\n "), mixers

    def refresh(self, new_regs: np.ndarray, envs, mixers: dict) -> set[int]:
        """Registers that follow the envelope table and the mixers: env addresses, frequencies."""
        s = self.s
        addr = {e.envelope: e.addr for e in envs}
        moved_mixer = {g for g in set(mixers) | set(s.mixers) if mixers.get(g) != s.mixers.get(g)}
        out = set()
        for w, key in enumerate(self.wave_keys):
            if key is None or key[1] == "mux":
                continue
            gen, style, env, freq_hz, ro = key[0], key[1], key[2], key[3], key[8]
            if env is not None:
                spc = self.fw["gens"][gen]["samps_per_clk"]
                new_regs[w][ENV] = addr[env] // spc
                out.add(w)
            if gen in moved_mixer:
                new_regs[w][FREQ] = self.freq_reg(gen, freq_hz, ro, mixers.get(gen))
                out.add(w)
        return out

    # --- thresholds
    def thresholds(self):
        s, u = self.s, self.units
        pmem = s.pmem
        tests, asm_edits, test_edits = [], [], []
        for t, span, aspan in zip(s.tests, s.test_spans, s.asm_tests):
            try:
                thr = u.threshold(t.qubit)
            except CtrlError as e:
                raise NotPatchable(str(e)) from None
            if thr == t.threshold:
                tests.append(t)
                continue
            if pmem is s.pmem:
                pmem = pmem.copy()
            pmem[t.addr] = self.test_word(thr, t.threshold, s.pmem[t.addr])
            old = self.bp.dump[span[0]:span[1]]
            a, b = f'"s8 - #{t.threshold}"', f'"s8 - #{thr}"'
            if old.count(a) != 1:
                raise NotPatchable(f"board {self.board}: threshold test {t.inst} is not where the sheet says")
            test_edits.append((span[0], span[1], old.replace(a, b)))
            asm_edits.append((aspan[0], aspan[1], str(thr)))
            tests.append(replace(t, threshold=thr))
        return pmem, tuple(tests), asm_edits, test_edits

    def test_word(self, thr: int, old_thr: int | None = None, old_word=None) -> list[int]:
        """The machine code of `TEST s8 - #thr`. The 24-bit immediate is bits 7-30 of the first word; when
        the test's previous word is exactly that with the previous threshold, only those bits are replaced
        (as the assembler would: tests/test_recompile.py compares), else the assembler is asked."""
        if old_word is not None and int(old_word[0]) == (old_thr << 7) & _IMM and -(2**23) <= thr < 2**23:
            word = [int(w) for w in old_word]
            word[0] = (thr << 7) & _IMM
            return word
        key = ("t", thr)
        r = self._memo.get(key)
        if r is None:
            from qick.tprocv2_assembler import Assembler

            inst = {"CMD": "TEST", "OP": f"s8 - #{thr}", "UF": "1", "P_ADDR": 1, "LINE": 1}
            r = self._memo[key] = list(Assembler.list2bin([inst], {})[1][0])
        return r



def _no_plan():
    raise CtrlError("the plan of a patched QICK program needs its timed program (patch_qick(..., program))")


def _wave_text(regs: list[int], name: str) -> str:
    """A waveform in the dump: its to_dict() at depth 2, keys sorted, as json.dumps(indent=1) writes it."""
    freq, phase, env, gain, length, conf = regs
    return (f'{{\n   "conf": {conf},\n   "env": {env},\n   "freq": {freq},\n   "gain": {gain},\n   "length": {length},'
            f'\n   "name": {esc(name)},\n   "phase": {phase}\n  }}')


def _splice(text: str, edits: list) -> tuple[str, list]:
    """`text` with each (start, end, new) span replaced; returns the text and the moves (end, delta)."""
    if not edits:
        return text, []
    edits = sorted(edits)
    parts, moves, at, delta = [], [], 0, 0
    for a, b, new in edits:
        if a < at:
            raise CtrlError("internal: overlapping patch edits")
        parts.append(text[at:a])
        parts.append(new)
        at = b
        delta += len(new) - (b - a)
        moves.append((b, delta))
    parts.append(text[at:])
    return "".join(parts), moves


def _splice_moves(edits: list) -> list:
    moves, delta = [], 0
    for a, b, new in sorted(edits):
        delta += len(new) - (b - a)
        moves.append((b, delta))
    return moves


def _shift(positions: np.ndarray, moves: list) -> np.ndarray:
    """Offsets after the edits: each moves by the total change of the edits ending at or before it."""
    if not moves:
        return positions
    ends = np.array([e for e, _ in moves], dtype=np.int64)
    deltas = np.concatenate([[0], np.array([d for _, d in moves], dtype=np.int64)])
    return positions + deltas[np.searchsorted(ends, positions, side="right")]
