"""Readout outcomes for the emulated board: one attempt of the compiled program at a time, sampled from
its noisy Clifford-proxy Stim circuit (`ctrl.backends.stim.timed_to_stim` with the device's noise).

Attempts alternate between proxy X and proxy Z (even attempts X), so that one run yields both logical
error components that `ctrl emulate` sums. The two proxies' acceptances differ a little (their circuits
differ in the Clifford substitutes of non-Clifford rotations, which moves where errors propagate: 0.619
against 0.626 at calibration noise x0.1), so a run's acceptance is their mean.
Each attempt also carries the ideal round's verdict (did the final state carry a logical error), which
no real board can measure: the emulated board hands it out separately (`EmulatedSoc.ctrl_truth`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctrl.backends.stim import timed_to_stim
from ctrl.codes.color import color_code
from ctrl.compile.timed import TimedProgram
from ctrl.sim.decode import decode_flips

CHUNK = 4096


@dataclass(frozen=True)
class Attempt:
    proxy: str  # "X" or "Z"
    bits: dict  # measurement key -> 0/1 as the readout would report it
    logical_error: bool  # the ideal round's verdict on this attempt's final state


class AttemptSource:
    """`next()` gives the next attempt's outcomes; seeded, so a board with the same seed replays."""

    def __init__(self, program: TimedProgram, noise, seed: int = 0) -> None:
        self.program = program
        self.n_faces = len(color_code(program.distance).faces)
        # timed_to_stim appends one M per MEASURE, in program order, before the ideal round's MPPs
        self.keys = [t.op.key for t in program.ops if t.op.name == "MEASURE"]
        self._sampler = {p: timed_to_stim(program, p, noise).compile_sampler(seed=_seed(seed, p)) for p in "XZ"}
        self._buf = {"X": [], "Z": []}
        self._count = 0

    def next(self) -> Attempt:
        proxy = "XZ"[self._count % 2]
        self._count += 1
        if not self._buf[proxy]:
            self._refill(proxy)
        return self._buf[proxy].pop()

    def _refill(self, proxy: str) -> None:
        rows = self._sampler[proxy].sample(CHUNK).astype(np.uint8)
        keys = self.keys
        k = len(keys)
        ideal = rows[:, k:]
        nf = self.n_faces
        syn = ideal[:, :nf] if proxy == "X" else ideal[:, nf : 2 * nf]
        flips = ideal[:, 2 * nf].astype(bool)
        errors = decode_flips(self.program.distance, syn) != flips
        # popped from the end: reverse so attempts come out in sampling order
        self._buf[proxy] = [
            Attempt(proxy, dict(zip(keys, map(int, rows[i, :k]))), bool(errors[i])) for i in range(CHUNK - 1, -1, -1)
        ]


def _seed(seed: int, proxy: str) -> int:
    return int(np.random.SeedSequence([seed, ord(proxy), 0x1AB]).generate_state(1)[0])
