"""A board being patched (`patch.py`), and its waveform registers on the new calibration: which pulses
changed (their role's values, or their frame), the new key of every waveform they play (refused when
pulses that shared a waveform would no longer agree, or two waveforms would merge), and the frequency,
phase and gain registers converted as qick's add_pulse converts them (convert.py).
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np

from ctrl.backends.qick.assemble import BoardProgram, program_class, quiet_qick
from ctrl.backends.qick.convert import Converter
from ctrl.backends.qick.resources import pulse_key
from ctrl.backends.qick.sheet import NotPatchable, QickSheet
from ctrl.backends.qick.units import Units
from ctrl.errors import CtrlError

FREQ, PHASE, ENV, GAIN = 0, 1, 2, 3  # columns of the waveform registers (sheet.REGS)
_ZERO = (0.0,)  # the frame of a qubit without increments
_RAD_TO_DEG = 180.0 / math.pi  # math.degrees multiplies by this
_KINDS = {"zero": 0, "rot": 1, "sub": 2, "neg": 3}  # the phase formulas (units.Pulse.phase)


class WaveRegisters:
    """One board of the previous programs with the new calibration's pulses (`BoardPatch` rewrites its files)."""

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
        for col, regs in ((FREQ, freq), (GAIN, gain)):
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
                    new_regs[lw[sel], PHASE] = self.phase_regs(gen, phase_deg[lead[sel]])
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
