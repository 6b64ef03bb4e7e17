"""Monte Carlo of the Clifford proxies with post-selection on every protocol check.

Shots are split into fixed chunks, each seeded from (seed, proxy, chunk index), so a run's numbers depend
only on its inputs, never on the number of worker processes. An accepted shot is scored through the ideal
round: its syndrome is decoded by the minimum-weight table and compared with the noiseless logical.
"""

from __future__ import annotations

import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import stim

from ctrl.noise.models import UniformNoise
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.sim.decode import decode_flips
from ctrl.sim.lower import IDEAL, to_stim

CHUNK = 20_000


@dataclass(frozen=True)
class Tally:
    shots: int = 0
    accepted: int = 0
    errors: int = 0
    discards: dict[str, int] = field(default_factory=dict)  # first failing check's kind -> shots

    def __add__(self, other: Tally) -> Tally:
        kinds = sorted(set(self.discards) | set(other.discards))
        return Tally(
            self.shots + other.shots,
            self.accepted + other.accepted,
            self.errors + other.errors,
            {k: self.discards.get(k, 0) + other.discards.get(k, 0) for k in kinds},
        )


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for k successes in n trials."""
    if n == 0:
        return (0.0, 1.0)
    phat = k / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def per_accepted(parts) -> tuple[float | None, list[float] | None]:
    """(logical error per accepted state summed over components, its 95% interval) from (errors, accepted)
    per component; (None, None) when a component accepted nothing: the figure is undefined, not 0.

    Kept bit for bit because `emulate`, `simulate` and the lab client write it into locked outputs. Its
    interval (sum of each component's 95% Wilson bounds) covers only about 0.95**2 of the time; the sweep
    uses `either_fails`, which is the honest one, and these callers should move to it with a reviewed
    relock (tools/lock_outputs.py)."""
    parts = list(parts)
    if any(a == 0 for _, a in parts):
        return None, None
    rate = sum(e / a for e, a in parts)
    lo = sum(wilson(e, a)[0] for e, a in parts)
    hi = min(1.0, sum(wilson(e, a)[1] for e, a in parts))
    return rate, [lo, hi]


def _chunk(args: tuple[int, float, str, int, int]) -> Tally:
    distance, p, proxy, shots, seed = args
    circuit = cn20_protocol(distance)
    stim_circuit = to_stim(circuit, proxy, UniformNoise(p))
    tags = [i.tag for i in stim_circuit.flattened() if i.name == "DETECTOR"]
    ideal = np.array([t == IDEAL for t in tags])
    kind_of = {c.name: c.kind for c in circuit.checks}
    kinds = np.array([kind_of.get(t, "") for t in tags])
    n_faces = len(circuit.code.faces)
    sampler = stim_circuit.compile_detector_sampler(seed=seed)
    det, obs = sampler.sample(shots, separate_observables=True)
    checks = det[:, ~ideal]
    fired = checks.any(axis=1)
    first = np.argmax(checks[fired], axis=1)
    names, counts = np.unique(kinds[~ideal][first], return_counts=True)
    ok = ~fired
    syn = det[ok][:, ideal]
    syn = syn[:, :n_faces] if proxy == "X" else syn[:, n_faces:]
    wrong = decode_flips(distance, syn) != obs[ok, 0]
    return Tally(shots, int(ok.sum()), int(wrong.sum()), dict(zip(names.tolist(), counts.tolist())))


def sample_proxy(
    distance: int, noise: UniformNoise, shots: int, proxy: str, seed: int, workers: int | None = None
) -> Tally:
    jobs = []
    left = shots
    index = 0
    while left > 0:
        n = min(CHUNK, left)
        # SeedSequence mixes the parts so neighbouring seeds give unrelated streams.
        s = np.random.SeedSequence([seed, ord(proxy), index]).generate_state(1)[0]
        jobs.append((distance, noise.p, proxy, n, int(s)))
        left -= n
        index += 1
    workers = workers or os.cpu_count() or 1
    total = Tally()
    progress = sys.stderr.isatty()
    if workers == 1 or len(jobs) == 1:
        results = map(_chunk, jobs)
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_chunk, jobs)
    for i, t in enumerate(results, 1):
        total = total + t
        if progress:
            print(f"\r  proxy {proxy}: {total.shots}/{shots} shots, {total.accepted} accepted", end="", file=sys.stderr)
    if progress:
        print(file=sys.stderr)
    return total


def binomial_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) interval for k hits in n trials, from scipy; (0, 1) when n == 0."""
    if n == 0:
        return (0.0, 1.0)
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return (float(ci.low), float(ci.high))


def either_fails(parts, confidence: float = 0.95) -> tuple[float | None, list[float] | None]:
    """(rate that at least one component fails, its interval) from (errors, accepted) per component.

    The components (the X and Z proxies) are independent samples of independent failure modes, so the
    protocol's logical error per accepted state is 1 - prod(1 - e_i) (~ sum e_i when small). Interval:
    each component gets a Clopper-Pearson interval at confidence**(1/m) (m components); by independence
    all m hold together with probability >= confidence, and 1 - prod(1 - e_i) increases in every e_i, so
    [f(lows), f(highs)] covers the true rate with probability >= confidence. Conservative, never short
    (summing 95% bounds, as `per_accepted` does, covers only ~0.95**m).
    (None, None) when a component accepted nothing: the rate is undefined, not 0."""
    parts = [(int(e), int(a)) for e, a in parts]
    if not parts or any(a == 0 for _, a in parts):
        return None, None
    each = confidence ** (1 / len(parts))
    bounds = [binomial_ci(e, a, each) for e, a in parts]

    def f(rates):
        return 1.0 - math.prod(1.0 - r for r in rates)

    return f(e / a for e, a in parts), [f(lo for lo, _ in bounds), f(hi for _, hi in bounds)]
