"""Pulse-only re-emission: the previous QICK programs with a new calibration's pulse parameters, byte for
byte what `emit_qick` writes for the new calibration, without planning, assembling or dumping again.

    programs, why = reemit_qick(previous, new_device, program)   # patched (why None), else emitted anew
    programs = patch_qick(previous, new_device)                 # or NotPatchable(reason)

The contract: `previous` was emitted (by emit_qick, or patched from such) for the same timed program and
wiring, on a calibration that differs from `device`'s only in pulse parameters (ctrl.recompile.diff's
`pulse` class: amplitudes, phases, DRAG, sigma, edges, frequencies, thresholds, IQ rotation, the gates'
virtual-Z corrections; and `metadata` and `quality`, which the programs do not read). The instruction
stream then stands: every time, every jump, every waveform-memory address. What the calibration feeds is
recomputed from the pulses' roles (`Play.role`), with the lowering's own code (`Units.pulse`, the frame
sums in the same order) and qick's own converters:

- each pulse's frequency, phase (its frame: VZ angles and the corrections of CZ/ECR gates), gain and
  envelope; the waveform-memory words they make (freq, phase, env, gain registers), in wmem and in the
  dump's `waves`;
- the envelopes' data (and, when envelopes merge or split, the envelope table: names, addresses, every
  waveform's env register, the envelope-memory figures);
- thresholds: the `TEST s8 - #thr` instructions (program-memory word, dump, asm line);
- generator and readout declarations (mixers, Nyquist zones, mux tones and gains, readout frequencies and
  phases, dynamic readouts' configurations), declared again through qick when any of them changed, and
  then the frequency registers of the generators whose mixer moved.

It refuses (NotPatchable, with the reason; reemit_qick then emits in full and returns the reason) when the
result would not be what emit_qick writes: two pulses that shared a waveform no longer agree or two that
did not now would (the waveform table would change), a pulse changes style, length, generator or readout,
the wiring or firmware differs, or anything the full emission would refuse (it then raises that error).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from ctrl.backends.qick.convert import Converter, wave_words
from ctrl.backends.qick.dumpjson import _esc, EnvelopeData, encode, render_envelopes
from ctrl.backends.qick.emit import (BoardProgram, QickPrograms, _sha, add_envelope, declare, emit_qick, frame_sums,
                                     program_class, quiet_qick)  # fmt: skip
from ctrl.backends.qick.plan import plan_program
from ctrl.backends.qick.resources import pulse_key
from ctrl.backends.qick.sheet import REGS, EnvSlot, QickSheet
from ctrl.backends.qick.units import Pulse, Units
from ctrl.errors import CtrlError

if TYPE_CHECKING:
    from ctrl.device import Device

_FREQ, _PHASE, _ENV, _GAIN = 0, 1, 2, 3
_ZERO = (0.0,)  # the frame of a qubit without increments
_RAD_TO_DEG = 180.0 / math.pi  # math.degrees multiplies by this
_KINDS = {"zero": 0, "rot": 1, "sub": 2, "neg": 3}  # the phase formulas (units.Pulse.phase)
_IMM = 0x7FFFFF80  # a TEST's immediate operand in its first machine word (24 bits, two's complement)


class NotPatchable(Exception):
    """The new calibration cannot be patched into the previous programs (the reason); emit them anew."""


def reemit_qick(previous: QickPrograms | None, device: Device, program, firmware=None) -> tuple[QickPrograms, str | None]:
    """`patch_qick`, or on NotPatchable `emit_qick(device, program, ...)` (same attempts): (programs, None)
    when patched, else (programs, why it was emitted anew). `program`: the timed program, or a function
    returning it (called only when needed: a full emission, or a patched program's `plan`)."""
    try:
        if previous is None:
            raise NotPatchable("no previous emission with a sheet")
        return patch_qick(previous, device, program, firmware), None
    except NotPatchable as e:
        attempts = previous.sheet.attempts if previous is not None and previous.sheet is not None else None
        prog = program() if callable(program) else program
        kw = {"attempts": attempts} if attempts is not None else {}
        return emit_qick(device, prog, firmware=firmware, **kw), str(e)


def patch_qick(previous: QickPrograms, device: Device, program=None, firmware=None) -> QickPrograms:
    """The programs `emit_qick(device, program, attempts, firmware)` would give, patched from `previous`
    (see the module docstring for the contract). `program` (or a function giving it) is only needed for
    the patched boards' `plan`. Raises NotPatchable."""
    if callable(program):
        program = _checked(program, device)
    elif program is not None:
        device.target.check_program(program)
    sheet = previous.sheet
    if sheet is None:
        raise NotPatchable("the previous programs carry no sheet")
    if device.wiring_hash != sheet.wiring_hash:
        raise NotPatchable("the wiring differs from the previous emission's")
    firmware = dict(firmware or {})
    if tuple(sorted(b for b in firmware if b in sheet.boards)) != sheet.given_firmware:
        raise NotPatchable("compiled against other firmware descriptions than the previous emission")
    fws, parsed = {}, {}
    for bp in previous.boards:
        if bp.board in firmware:
            if _sha(json.dumps(firmware[bp.board], indent=1, sort_keys=True) + "\n") != sheet.firmware[bp.board]:
                raise NotPatchable(f"board {bp.board}: another firmware description than the previous emission's")
        # boards of one kind share one description; read, never written, so parsed once
        fw = parsed.get(bp.firmware)
        if fw is None:
            fw = parsed[bp.firmware] = json.loads(bp.firmware)
        fws[bp.board] = fw
    units = Units(device.target, sheet.clock_hz, fws)
    pulses, changed = _pulses(sheet, units)
    corrections, frames = _frames(sheet, device.target)
    frames_moved = frames is not sheet.frames
    for q in sheet.readout_users:
        try:
            units.use_readout(q, f"readout of {q}")
        except CtrlError as e:
            raise NotPatchable(str(e)) from None
    boards, new_sheets = [], {}
    for bp in previous.boards:
        nb = _Board(bp, fws[bp.board], units, sheet, pulses, changed, frames, frames_moved).run()
        boards.append(nb)
        new_sheets[bp.board] = nb.sheet
    report = previous.report
    if any(nb.usage != bp.usage for nb, bp in zip(boards, previous.boards)):
        report = json.loads(json.dumps(report))
        for nb in boards:
            report["boards"][nb.board]["usage"] = nb.usage
    new = replace(sheet, pulses=pulses, corrections=corrections, frames=frames, boards=new_sheets, report=report)
    if program is not None:
        get = program if callable(program) else (lambda: program)
        for i, nb in enumerate(boards):
            boards[i] = replace(nb, plan_source=_planner(device, get, sheet.attempts, firmware, nb.board))
    return QickPrograms(tuple(boards), report, new)


def _checked(get_program, device: Device):
    """`get_program`, whose program is checked against the device when it is asked for: a patch calls it
    only for a patched board's plan, and building the timed program may be what a caller saves."""

    def get():
        program = get_program()
        device.target.check_program(program)
        return program

    return get


def _planner(device, get_program, attempts, firmware, board):
    def plan():
        return plan_program(device, get_program(), attempts, firmware)[board]

    return plan


def _no_plan():
    raise CtrlError("the plan of a patched QICK program needs its timed program (patch_qick(..., program))")


# ------------------------------------------------------------------------------------------ calibration


def _pulses(sheet: QickSheet, units: Units):
    """Every pulse role on the new calibration, and the roles whose values changed."""
    pulses, changed = {}, set()
    for key, old in sheet.pulses.items():
        try:
            new = units.pulse(key)
        except CtrlError as e:
            raise NotPatchable(str(e)) from None
        if new == old:
            pulses[key] = old  # the same objects: comparisons of keys holding them stop at identity
            continue
        env = new.envelope
        if env is not None and env is not old.envelope and env == old.envelope:
            new = Pulse(new.board, new.gen, new.style, old.envelope, *new[4:])
        pulses[key] = new
        if (new.board, new.gen, new.style, new.cycles, new.outsel, new.ro, new.frame, new.phase[0]) != (
                old.board, old.gen, old.style, old.cycles, old.outsel, old.ro, old.frame, old.phase[0]):  # fmt: skip
            raise NotPatchable(f"{_role(key)}: its style, length, channel or readout changed ({old.style} "
                               f"{old.cycles} cycles -> {new.style} {new.cycles} cycles)")  # fmt: skip
        if (env is None) != (old.envelope is None) or (env is not None and env.samples != old.envelope.samples):
            raise NotPatchable(f"{_role(key)}: its envelope length changed")
        if not 0 <= new.gain <= 1.0 + 1e-9:
            raise NotPatchable(f"{_role(key)}: gain {new.gain:.4g} is outside [0, 1] of full scale")
        changed.add(key)
    return pulses, changed


def _role(key: tuple) -> str:
    names = {"rot": "rotation", "cz": "CZ flux pulse", "cr": "CR segment", "echo": "ECR echo",
             "canc": "cancellation tone", "ro": "readout pulse", "flip": "reset flip"}  # fmt: skip
    return f"{names.get(key[0], key[0])} of {'-'.join(str(k) for k in key[1:3] if isinstance(k, str))}"


def _frames(sheet: QickSheet, target):
    """The gates' corrections on the new calibration (in the form natives gives a CZ) and the frame sums
    (the previous ones, the same object, when no correction changed)."""
    out, moved = {}, False
    for (a, b), old in sheet.corrections.items():
        try:
            new = target.gate(a, b).virtual_z_rad
        except CtrlError as e:
            raise NotPatchable(str(e)) from None
        if tuple(k for k, _ in new) != tuple(k for k, _ in old):
            raise NotPatchable(f"coupler {a}-{b}: its phase corrections name other qubits")
        out[(a, b)] = new
        moved = moved or new != old
    if not moved:
        return sheet.corrections, sheet.frames
    return out, frame_sums(sheet.tape, out)


# ------------------------------------------------------------------------------------------ one board


class _Board:
    def __init__(self, bp: BoardProgram, fw: dict, units: Units, sheet: QickSheet, pulses: dict, changed: set,
                 frames: dict, frames_moved: bool) -> None:  # fmt: skip
        self.bp, self.s, self.fw, self.units = bp, bp.sheet, fw, units
        self.sheet, self.pulses, self.changed = sheet, pulses, changed
        self.frames, self.frames_moved = frames, frames_moved
        self.board = bp.board
        self._soccfg = None
        self._conv = None
        self._memo: dict = {}

    @property
    def soccfg(self):
        if self._soccfg is None:
            from qick import QickConfig

            with quiet_qick():
                self._soccfg = QickConfig(json.loads(self.bp.firmware))
        return self._soccfg

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

    # --- pulses -> waveforms
    def pulses_to_waves(self, new_regs: np.ndarray) -> list[int]:
        """New keys of the waveforms whose pulses changed (self.wave_keys); the registers qick derives from
        their first pulse (freq, phase, gain) in new_regs. Returns the waveforms whose first pulse changed.

        Per pulse, numpy over the sheet's columns: a pulse changed if its role's values did, or its frame
        moved; its phase is computed anew only then, with the lowering's float operations elementwise.
        Per role (not per pulse or waveform) what only the role's values decide: the key around the phase,
        the frequency and gain registers."""
        s, pulses, changed = self.s, self.pulses, self.changed
        frames, old_frames, old_pulses = self.frames, self.sheet.frames, self.sheet.pulses
        g_of = self.fw["gens"]
        roles = s.roles
        n_roles = len(roles)
        self.wave_keys = s.wave_keys
        if not n_roles:
            return []
        role_pulses = [pulses[k] for k in roles]
        touched = np.array([k in changed for k in roles], dtype=bool)
        frame_q = [p.frame for p in role_pulses]
        if self.frames_moved:
            follows = any(q is not None and frames.get(q, _ZERO) != old_frames.get(q, _ZERO) for q in frame_q)
        else:
            follows = False
        if not (follows or touched.any()):
            return []
        pr, pn, pw = s.play_role, s.play_frame, s.play_wave
        real = pr >= 0
        r = np.where(real, pr, 0)
        # the frame of each pulse, old and new, from the frame sums laid end to end
        offset, new_flat, old_flat = {}, [0.0], [0.0]  # index 0: the frame of no qubit
        for q in sorted({q for q in frame_q if q is not None}):
            new_q = frames.get(q, _ZERO)
            offset[q] = len(new_flat)
            new_flat.extend(new_q)
            if follows:
                old_flat.extend(old_frames.get(q, _ZERO))
        role_off = np.array([offset.get(q, -1) for q in frame_q], dtype=np.int64)
        has_frame = real & (role_off[r] >= 0)
        at = np.where(has_frame, role_off[r] + pn, 0)
        frame = np.array(new_flat)[at]
        moved = has_frame & (frame != np.array(old_flat)[at]) if follows else np.zeros(len(pr), dtype=bool)
        active = real & (touched[r] | moved)
        # per role of an active pulse: the key around its phase, the phase formula, whether it changed
        live = np.zeros(n_roles, dtype=bool)
        live[r[active]] = True
        heads: dict = {}
        hid = np.zeros(n_roles, dtype=np.int64)
        kind = np.zeros(n_roles, dtype=np.int8)  # 0 zero, 1 rot, 2 sub, 3 neg
        a_of = np.zeros(n_roles)
        b_of = np.zeros(n_roles)
        full = np.ones(n_roles, dtype=np.int64)
        same_spec = np.ones(n_roles, dtype=bool)
        for i in np.flatnonzero(live).tolist():
            p = role_pulses[i]
            g = g_of[p.gen]
            base = pulse_key(g, p.gen, p.style, p.envelope, p.freq_hz, 0.0, min(p.gain, 1.0), p.cycles, p.outsel, p.ro)
            hid[i] = heads.setdefault((base[:4], base[5:]), len(heads))
            spec = p.phase
            kind[i] = _KINDS[spec[0]]
            if spec[0] in ("rot", "sub"):
                a_of[i] = spec[1]
            if spec[0] == "rot":
                b_of[i] = spec[2]
            full[i] = 2 ** g["b_phase"]
            same_spec[i] = spec == old_pulses[roles[i]].phase
        head_list = list(heads)
        # phases: anew where the frame moved or the formula changed, else the waveform's own
        fresh = active & (moved | ~same_spec[r])
        old_keys = s.wave_keys
        phase_int = self._old_phases()[pw]
        phase_deg = None
        if fresh.any():
            rf = r[fresh]
            k, a, b = kind[rf], a_of[rf], b_of[rf]
            f = frame[fresh]
            rad = np.where(k == 1, a - f + b, np.where(k == 2, a - f, np.where(k == 3, -f, 0.0)))
            deg = (rad * _RAD_TO_DEG) % 360.0  # math.degrees(x) % 360.0
            n = full[rf]
            phase_deg = np.full(len(pr), np.nan)
            phase_deg[fresh] = deg
            phase_int[fresh] = np.round(deg * n / 360).astype(np.int64) % n
        # every waveform's pulses must agree on the new key; a changed key needs all of them changed
        idx = np.flatnonzero(active)
        aw, ah, ap = pw[idx], hid[r[idx]], phase_int[idx]
        order = np.argsort(aw, kind="stable")
        aw, ah, ap = aw[order], ah[order], ap[order]
        step = aw[1:] != aw[:-1]
        starts = np.flatnonzero(np.r_[True, step])
        group = np.cumsum(np.r_[False, step])
        bad = (ah != ah[starts][group]) | (ap != ap[starts][group])
        if bad.any():
            w = int(aw[np.flatnonzero(bad)[0]])
            raise NotPatchable(f"waveform {s.wave_names[w]}: pulses that shared it now differ")
        waves = aw[starts]
        wl = waves.tolist()
        heads_of = [head_list[h] for h in ah[starts].tolist()]
        new_keys = [head + (ph,) + tail for (head, tail), ph in zip(heads_of, ap[starts].tolist())]
        differs = np.array([k != old_keys[w] for k, w in zip(new_keys, wl)], dtype=bool)
        if differs.any():
            counts = np.diff(np.r_[starts, len(aw)])
            total = np.bincount(pw, minlength=len(old_keys))
            partial = differs & (counts != total[waves])
            if partial.any():
                w = int(waves[partial][0])
                raise NotPatchable(f"waveform {s.wave_names[w]}: some of the pulses sharing it changed, some did not")
            keys = list(old_keys)
            changed_waves = waves[differs].tolist()
            for w, k, d in zip(wl, new_keys, differs.tolist()):
                if d:
                    keys[w] = k
            _no_merge(keys, changed_waves, s.wave_names)
            self.wave_keys = tuple(keys)
        # registers from each changed waveform's first pulse, as add_pulse converts them; per role
        firsts = s.wave_first[waves]
        lead = firsts[active[firsts]]
        lw, lr = pw[lead], pr[lead]
        mixers = self.s.mixers
        freq: dict[int, int] = {}  # role -> its new register, where its value changed
        gain: dict[int, int] = {}
        gains: dict[tuple, list] = {}  # (gen, style) -> roles, converted together
        for i in set(lr.tolist()):
            p, old = role_pulses[i], old_pulses[roles[i]]
            if p.freq_hz != old.freq_hz:
                freq[i] = self.freq_reg(p.gen, p.freq_hz, p.ro, mixers.get(p.gen))
            if p.gain != old.gain:
                gains.setdefault((p.gen, p.style), []).append(i)
        for (gen, style), todo in gains.items():
            regs = self.gain_regs(gen, style, [min(role_pulses[i].gain, 1.0) for i in todo])
            gain.update(zip(todo, regs))
        for col, regs in ((_FREQ, freq), (_GAIN, gain)):
            if regs:
                has = np.zeros(n_roles, dtype=bool)
                value = np.zeros(n_roles, dtype=np.int64)
                has[list(regs)] = True
                value[list(regs)] = list(regs.values())
                m = has[lr]
                new_regs[lw[m], col] = value[lr[m]]
        if phase_deg is not None:
            fl = fresh[lead]
            if fl.any():
                gens = np.array([p.gen for p in role_pulses], dtype=np.int64)[lr]
                for gen in np.unique(gens[fl]).tolist():
                    sel = fl & (gens == gen)
                    new_regs[lw[sel], _PHASE] = self.phase_regs(gen, phase_deg[lead[sel]])
        return lw.tolist()

    def _old_phases(self) -> np.ndarray:
        """Each waveform's phase register value as its key holds it (0: mux or readout configuration)."""
        return np.array([k[4] if k is not None and k[1] != "mux" else 0 for k in self.s.wave_keys], dtype=np.int64)

    # --- qick's conversions, as add_pulse makes them (convert.py)
    @property
    def conv(self) -> Converter:
        if self._conv is None:
            self._conv = Converter(lambda: program_class()(self.soccfg), self.fw, self.board, dict(self.s.mixers))
        return self._conv

    def freq_reg(self, gen: int, freq_hz: float, ro: int, mixer) -> int:
        self.conv.mixers[gen] = mixer
        try:
            with quiet_qick():
                return self.conv.freq(gen, freq_hz, ro)
        except (CtrlError, RuntimeError) as e:
            raise NotPatchable(f"board {self.board} gen {gen}: the frequency: {e}") from None

    def phase_regs(self, gen: int, phases_deg: list[float]) -> np.ndarray:
        return self.conv.phases(gen, phases_deg)

    def gain_regs(self, gen: int, style: str, gains: list[float]) -> list[int]:
        """Converter.gain for many gains at once: qick's to_int(gain, scale, trunc=True), that is
        int(1 * np.trunc(gain * scale / 1)), with numpy doing the same float operations elementwise."""
        cfg = self.fw["gens"][gen]
        scale = cfg["maxv"] * cfg["maxv_scale"] if style == "const" else cfg["maxv"]
        return (1 * np.trunc(np.array(gains, dtype=np.float64) * scale / 1)).astype(np.int64).tolist()

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
                    add_envelope(prog, self.soccfg, self.fw, self.board, e.envelope, e.name, _role(("env",)))
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
                new_regs[w][_ENV] = addr[env] // spc
                out.add(w)
            if gen in moved_mixer:
                new_regs[w][_FREQ] = self.freq_reg(gen, freq_hz, ro, mixers.get(gen))
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


def _no_merge(keys: list, changed: list[int], names: tuple) -> None:
    """NotPatchable if a changed waveform's key equals another waveform's (the emission would have merged
    them). Candidates by generator, frequency, phase and gain (cheap to hash), then compared in full."""
    sig = [(k[0], k[3], k[4], k[5]) if k is not None and k[1] != "mux" else None for k in keys]
    shared = {sg for sg, n in Counter(sig).items() if n > 1 and sg is not None}
    if not shared:
        return
    where: dict = {}
    for w, sg in enumerate(sig):
        if sg in shared:
            where.setdefault(sg, []).append(w)
    for w in changed:
        k = keys[w]
        for other in where.get(sig[w], ()):
            if other != w and keys[other] == k:
                raise NotPatchable(f"waveforms {names[other]} and {names[w]} would merge")


def _wave_text(regs: list[int], name: str) -> str:
    """A waveform in the dump: its to_dict() at depth 2, keys sorted, as json.dumps(indent=1) writes it."""
    freq, phase, env, gain, length, conf = regs
    return (f'{{\n   "conf": {conf},\n   "env": {env},\n   "freq": {freq},\n   "gain": {gain},\n   "length": {length},'
            f'\n   "name": {_esc(name)},\n   "phase": {phase}\n  }}')


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
