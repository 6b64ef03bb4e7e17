"""qick's conversions of a one-waveform pulse's parameters to waveform registers, memoised and, for
phases, vectorised: what `add_pulse` computes (StandardGenManager.params2pulse and params2wave, qick
0.2.436), without building a QickPulse per pulse. The emitter uses it for its constant and envelope
pulses, the pulse-only patch to recompute registers; tests/test_qick.py checks both against qick's own
add_pulse (the whole emission, with and without this path) and its converters.

Each value goes through qick's own function where that is cheap enough (frequencies, gains, lengths,
output configuration, all as QickParam like add_pulse passes them; qick leaves such raw values unwrapped,
hence no modulo). Phases, thousands per program, are converted with numpy doing deg2reg's float
operations elementwise: to_int(phase, 2**b_phase / 360) = int(1 * np.round(phase * scale / 1)).
"""

from __future__ import annotations

import numpy as np

from ctrl.errors import CtrlError


class Converter:
    """One board's program (or a function giving one: made only if a conversion needs qick) and firmware;
    the mixers are the program's declared ones unless given."""

    def __init__(self, prog, fw: dict, board: str, mixers: dict | None = None) -> None:
        self._prog = prog
        self.fw = fw
        self.board = board
        # generator -> qick's rounded mixer frequency (MHz); from the program's declarations unless given
        self.mixers = mixers
        self._memo: dict = {}

    @property
    def prog(self):
        if callable(self._prog):
            self._prog = self._prog()
        return self._prog

    def mixer(self, gen: int):
        if self.mixers is not None:
            return self.mixers.get(gen)
        decl = self.prog.gen_chs.get(gen, {})
        return decl["mixer_freq"]["rounded"] if "mixer_freq" in decl else None

    def freq(self, gen: int, freq_hz: float, ro: int) -> int:
        key = ("f", gen, freq_hz, ro, self.mixer(gen))
        r = self._memo.get(key)
        if r is None:
            from qick.asm_v2 import QickParam

            f = QickParam(start=freq_hz / 1e6, spans={})
            if self.prog.ABSOLUTE_FREQS and self.fw["gens"][gen]["has_mixer"]:
                mixer = self.mixer(gen)
                if mixer is None:
                    raise CtrlError(f"board {self.board} gen {gen}: no mixer frequency declared")
                f = f - mixer
            r = self.prog.soccfg.freq2reg(gen_ch=gen, f=f, ro_ch=ro if ro >= 0 else None)
            r = self._memo[key] = int(getattr(r, "start", r))
        return r

    def phases(self, gen: int, phases_deg) -> np.ndarray:
        scale = 2 ** self.fw["gens"][gen]["b_phase"] / 360
        return (1 * np.round(np.asarray(phases_deg, dtype=np.float64) * scale / 1)).astype(np.int64)

    def gain(self, gen: int, style: str, gain: float) -> int:
        key = ("g", gen, style, gain)
        r = self._memo.get(key)
        if r is None:
            from qick.asm_v2 import QickParam
            from qick.helpers import to_int

            cfg = self.fw["gens"][gen]  # the JSON the QickConfig reads
            scale = cfg["maxv"] * cfg["maxv_scale"] if style == "const" else cfg["maxv"]
            r = to_int(QickParam(start=gain, spans={}), scale, parname="gain", trunc=True)
            r = self._memo[key] = int(getattr(r, "start", r))
        return r

    def length(self, gen: int, cycles: int) -> int:
        """A constant pulse's length register, from the length in us add_pulse is given."""
        key = ("l", gen, cycles)
        r = self._memo.get(key)
        if r is None:
            from qick.asm_v2 import QickParam

            us = QickParam(start=cycles / self.fw["gens"][gen]["f_fabric"], spans={})
            r = self.prog.soccfg.us2cycles(gen_ch=gen, us=us)
            r = self._memo[key] = int(getattr(r, "start", r))
        return r

    def conf(self, gen: int, outsel: str) -> int:
        key = ("c", gen, outsel)
        r = self._memo.get(key)
        if r is None:
            r = self._memo[key] = int(self.prog._gen_mgrs[gen].cfg2reg(outsel=outsel, mode=None, stdysel=None,
                                                                       phrst=None))  # fmt: skip
        return r


def wave_words(regs: np.ndarray) -> np.ndarray:
    """qick's Waveform.compile for rows of registers (freq, phase, env, gain, length, conf): freq, phase (4
    bytes), env (3), a zero byte, gain, length (4), conf (2), ten zero bytes, read as eight little-endian
    int32."""
    out = np.zeros((len(regs), 8), dtype=np.int64)
    for col, width in enumerate((4, 4, 3, 4, 4, 2)):
        v = regs[:, col] % 2 ** (8 * width)
        out[:, col] = np.where(v >= 2**31, v - 2**32, v)  # int32 words (only 4-byte fields reach 2**31)
    return out
