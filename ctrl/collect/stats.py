"""What a sampling run counts, as one record, and the intervals every report draws from it.

`Stats` is shaped like sinter's `AnonTaskStats` (shots, errors, discards, seconds, custom counts), so a
sweep's CSV is sinter's own format and sinter's tools read it. Here `discards` are aborted attempts and
`errors` logical errors of accepted states. `custom_counts` carries what one run of the decision program
adds: `abort:KIND` (first failing check's kind), `point:I` (aborts at decision point I), `stop:I` (where
the controller stops in real time, when that differs from I) and `chunks` (how many seeded chunks the
record sums, which is where a resumed run continues).

A protocol's logical error per accepted state has two components, sampled as two tasks: proxy X scores
Z-type output errors, proxy Z X-type ones (`COMPONENTS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

CONFIDENCE = 0.95

# proxy -> the output errors its accepted shots score; the labels results are keyed by
COMPONENTS = {"X": "Z-type (proxy X)", "Z": "X-type (proxy Z)"}


def _frozen_counts(counts: Mapping[str, int] | Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    items = counts.items() if isinstance(counts, Mapping) else counts
    return tuple(sorted((str(k), int(v)) for k, v in items if v))


@dataclass(frozen=True, slots=True)
class Stats:
    shots: int = 0
    errors: int = 0  # logical errors among accepted shots
    discards: int = 0  # aborted attempts
    seconds: float = 0.0  # sampling time spent (summed over workers)
    custom_counts: tuple[tuple[str, int], ...] = field(default=())  # sorted, no zeros

    def __post_init__(self) -> None:
        object.__setattr__(self, "custom_counts", _frozen_counts(self.custom_counts))

    def __repr__(self) -> str:
        extra = f", {len(self.custom_counts)} custom counts" if self.custom_counts else ""
        return f"Stats({self.shots} shots, {self.accepted} accepted, {self.errors} errors{extra})"

    @property
    def accepted(self) -> int:
        return self.shots - self.discards

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.custom_counts)

    def count(self, key: str) -> int:
        return self.counts.get(key, 0)

    def prefixed(self, prefix: str) -> dict[str, int]:
        """{rest: n} of the custom counts named PREFIX:rest."""
        head = prefix + ":"
        return {k[len(head) :]: v for k, v in self.custom_counts if k.startswith(head)}

    def __add__(self, other: Stats) -> Stats:
        counts = self.counts
        for k, v in other.custom_counts:
            counts[k] = counts.get(k, 0) + v
        return Stats(self.shots + other.shots, self.errors + other.errors, self.discards + other.discards,
                     self.seconds + other.seconds, counts)  # fmt: skip

    def to_wire(self) -> tuple:
        """Plain data (ints, floats, strings): what crosses a process or network boundary."""
        return (self.shots, self.errors, self.discards, self.seconds, self.custom_counts)

    @classmethod
    def from_wire(cls, data) -> Stats:
        shots, errors, discards, seconds, counts = data
        return cls(int(shots), int(errors), int(discards), float(seconds), tuple((str(k), int(v)) for k, v in counts))


def binomial_ci(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Clopper-Pearson (exact) interval for k hits in n trials, from scipy; (0, 1) when n == 0."""
    if n == 0:
        return (0.0, 1.0)
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return (float(ci.low), float(ci.high))


def either_fails(parts, confidence: float = CONFIDENCE) -> tuple[float | None, list[float] | None]:
    """(rate that at least one component fails, its interval) from (errors, accepted) per component.

    The components (the X and Z proxies) are independent samples of independent failure modes, so the
    protocol's logical error per accepted state is 1 - prod(1 - e_i) (~ sum e_i when small). Interval:
    each component gets a Clopper-Pearson interval at confidence**(1/m) (m components); by independence
    all m hold together with probability >= confidence, and 1 - prod(1 - e_i) increases in every e_i, so
    [f(lows), f(highs)] covers the true rate with probability >= confidence. Conservative, never short
    (summing each component's 95% bounds covers only ~0.95**m).
    (None, None) when a component accepted nothing: the rate is undefined, not 0."""
    parts = [(int(e), int(a)) for e, a in parts]
    if not parts or any(a == 0 for _, a in parts):
        return None, None
    each = confidence ** (1 / len(parts))
    bounds = [binomial_ci(e, a, each) for e, a in parts]

    def f(rates):
        return 1.0 - math.prod(1.0 - r for r in rates)

    return f(e / a for e, a in parts), [f(lo for lo, _ in bounds), f(hi for _, hi in bounds)]


def protocol_figures(by_proxy: Mapping[str, Stats]) -> dict:
    """The figures every report of a protocol run gives, from the X and Z proxies' records: acceptance (proxy
    X's, both proxies sample the same attempts), the logical error per accepted state (`either_fails`) and
    each component's own rate, with >= 95% intervals; null where undefined (nothing accepted)."""
    x = by_proxy["X"]
    rate, ci = either_fails((s.errors, s.accepted) for s in by_proxy.values())
    components = {}
    for proxy, s in by_proxy.items():
        components[COMPONENTS[proxy]] = {
            "accepted": s.accepted,
            "logical_errors": s.errors,
            "logical_error_rate": s.errors / s.accepted if s.accepted else None,
            "logical_error_rate_ci95": list(binomial_ci(s.errors, s.accepted)) if s.accepted else None,
        }
    return {
        "shots": x.shots,
        "accepted": x.accepted,
        "acceptance": x.accepted / x.shots if x.shots else None,
        "acceptance_ci95": list(binomial_ci(x.accepted, x.shots)) if x.shots else None,
        "logical_errors": sum(s.errors for s in by_proxy.values()),
        "logical_error_rate": rate,
        "logical_error_rate_ci95": ci,
        "components": components,
    }


__all__ = ["Stats", "COMPONENTS", "CONFIDENCE", "binomial_ci", "either_fails", "protocol_figures"]
