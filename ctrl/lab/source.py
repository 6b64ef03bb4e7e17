"""Readout outcomes for the emulated board: one attempt of the compiled program at a time, sampled from
its noisy Clifford-proxy Stim circuit (`ctrl.backends.stim.timed_to_stim` with the device's noise).

Attempts alternate between proxy X and proxy Z (even attempts X), so that one run yields both logical
error components that `ctrl emulate` sums. The two proxies' acceptances differ a little (their circuits
differ in the Clifford substitutes of non-Clifford rotations, which moves where errors propagate: 0.619
against 0.626 at calibration noise x0.1), so a run's acceptance is their mean.
Each attempt also carries the ideal round's verdict (did the final state carry a logical error), which
no real board can measure: the emulated board hands it out separately (`EmulatedSoc.ctrl_truth`).
A board's attempts form one stream per seed, addressed by position (`AttemptSource.seek`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctrl.backends.stim import timed_to_stim
from ctrl.codes.color import color_code
from ctrl.compile.timed import TimedProgram
from ctrl.codes.decode import decode_flips

CHUNK = 4096


@dataclass(frozen=True)
class Attempt:
    proxy: str  # "X" or "Z"
    bits: dict  # measurement key -> 0/1 as the readout would report it
    logical_error: bool  # the ideal round's verdict on this attempt's final state


class AttemptSource:
    """The attempts of one random stream: attempt `i` of stream `seed` is the same whatever was drawn before
    it, so a board can start an acquisition at any position (`seek`) and a restarted board need not replay.

    Attempt i uses proxy "XZ"[i % 2]; each proxy's attempts come in chunks of CHUNK, chunk c sampled with its
    own seed derived from (seed, proxy, c) (compiling a sampler takes ~0.1 ms, sampling a chunk ~2 ms).
    """

    def __init__(self, program: TimedProgram, noise, seed: int = 0) -> None:
        self.program = program
        self.seed = seed
        self.n_faces = len(color_code(program.distance).faces)
        # timed_to_stim appends one M per MEASURE, in program order, before the ideal round's MPPs
        self.keys = [t.op.key for t in program.ops if t.op.name == "MEASURE"]
        self._circuit = {p: timed_to_stim(program, p, noise) for p in "XZ"}
        self._chunk: dict[str, tuple[int, list[Attempt]]] = {}
        self.position = 0  # the stream position of the next attempt

    def seek(self, position: int) -> None:
        self.position = int(position)

    def next(self) -> Attempt:
        i = self.position
        self.position += 1
        proxy = "XZ"[i % 2]
        c, k = divmod(i // 2, CHUNK)
        got = self._chunk.get(proxy)
        if got is None or got[0] != c:
            got = self._chunk[proxy] = (c, self._sample(proxy, c))
        return got[1][k]

    def _sample(self, proxy: str, chunk: int) -> list[Attempt]:
        sampler = self._circuit[proxy].compile_sampler(seed=_seed(self.seed, proxy, chunk))
        rows = sampler.sample(CHUNK).astype(np.uint8)
        keys = self.keys
        k = len(keys)
        ideal = rows[:, k:]
        nf = self.n_faces
        syn = ideal[:, :nf] if proxy == "X" else ideal[:, nf : 2 * nf]
        flips = ideal[:, 2 * nf].astype(bool)
        errors = decode_flips(self.program.distance, syn) != flips
        return [Attempt(proxy, dict(zip(keys, map(int, rows[i, :k]))), bool(errors[i])) for i in range(CHUNK)]


def _seed(seed: int, proxy: str, chunk: int) -> int:
    return int(np.random.SeedSequence([seed, ord(proxy), 0x1AB, chunk]).generate_state(1)[0])
