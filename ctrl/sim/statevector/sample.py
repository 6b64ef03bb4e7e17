"""Sampling (`sample_exact`): fault locations are independent, so the number of faults k has an exact
distribution. k = 0 needs no run (accepted, no error). k = 1 is enumerated: every location, every Pauli,
once per circuit (`single_faults`; the outcomes do not depend on p, only their weights do). k >= 2 is
sampled, stratified by k, from the exact law of the configuration given k; for k = 2 only the pairs that
the single-fault runs do not already decide are drawn (see `_Pairs`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ctrl.errors import CtrlError
from ctrl.noise.models import UniformNoise
from ctrl.protocol.ir import ProtocolCircuit
from ctrl.sim.statevector.compiler import Location
from ctrl.sim.statevector.program import REJECT_BELOW
from ctrl.sim.statevector.singles import SingleFaults, single_faults
from ctrl.sim.statevector.target import Outcome, Target, _describe, _protocol_target, evaluate
from ctrl.sim.statevector.workers import _counter, _map

MIN_RUNS_PER_STRATUM = 10


def _binomial_pmf(n: int, q: float) -> np.ndarray:
    m = np.arange(n + 1)
    if q >= 1:
        return (m == n).astype(float)
    log_choose = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in m])
    return np.exp(log_choose + m * math.log(q) + (n - m) * math.log1p(-q))


@dataclass(frozen=True)
class _FaultModel:
    """Fault locations grouped by probability: the number of faults in a group is binomial, so the law of
    the total and the law of the configuration given the total are exact."""

    locations: tuple[Location, ...]
    classes: tuple[np.ndarray, ...]  # location indices of each probability, by probability
    pmfs: tuple[np.ndarray, ...]  # per class: P(m faults in it), m = 0..size
    suffix: tuple[np.ndarray, ...]  # suffix[c]: P(j faults in classes c, c+1, ...)

    @staticmethod
    def build(locations: tuple[Location, ...]) -> _FaultModel:
        by_p: dict[float, list[int]] = {}
        for loc in locations:
            by_p.setdefault(loc.probability, []).append(loc.index)
        classes = tuple(np.array(by_p[q], dtype=np.int64) for q in sorted(by_p))
        pmfs = tuple(_binomial_pmf(len(by_p[q]), q) for q in sorted(by_p))
        suffix = [np.ones(1)]
        for pmf in reversed(pmfs):
            suffix.append(np.convolve(pmf, suffix[-1]))
        return _FaultModel(locations, classes, pmfs, tuple(reversed(suffix)))

    @property
    def k_distribution(self) -> np.ndarray:
        """P(exactly k faults), k = 0..number of locations."""
        return self.suffix[0]

    def sample(self, rng: np.random.Generator, k: int) -> dict[int, str]:
        """A configuration drawn from the exact law of the faults given that exactly k occur."""
        faults: dict[int, str] = {}
        left = k
        for c, idx in enumerate(self.classes):
            rest = self.suffix[c + 1]
            m = np.arange(max(0, left - len(rest) + 1), min(len(idx), left) + 1)
            w = self.pmfs[c][m] * rest[left - m]
            take = int(m[rng.choice(len(m), p=w / w.sum())])
            for i in np.sort(rng.choice(len(idx), size=take, replace=False)):
                loc = self.locations[idx[i]]
                if loc.weights:
                    faults[loc.index] = loc.paulis[int(rng.choice(len(loc.paulis), p=loc.weights))]
                else:
                    faults[loc.index] = loc.paulis[int(rng.integers(len(loc.paulis)))]
            left -= take
        return faults


class _Pairs:
    """Two-fault configurations, split exactly into those a single-fault run already decides and the
    rest, which alone are sampled.

    Order single faults by op. If the earlier fault of a pair, alone, is rejected with certainty before
    the later one happens, the pair is rejected the same way: no run needed. The weight of those pairs
    and their losses are summed exactly; only the other pairs (the ones that can be accepted) are drawn.
    """

    def __init__(self, singles: SingleFaults, weight: np.ndarray) -> None:
        # weight[c]: P(exactly single fault c) / P(no fault); pairs multiply, given two faults.
        self.singles = singles
        w = weight
        ops = np.array([singles.locations[l].op for l in singles.location])
        cum = np.concatenate([[0.0], np.cumsum(w)])
        n = len(w)
        loc = singles.location
        # first configuration after c at another location (same-location ones are contiguous)
        change = np.flatnonzero(np.diff(loc)) + 1
        self.begin = np.concatenate([change, [n]])[np.searchsorted(change, np.arange(n), side="right")]
        self.end = np.maximum(np.searchsorted(ops, singles.rejected_at, side="left"), self.begin)
        self.cum = cum
        allowed = cum[self.end] - cum[self.begin]
        decided = cum[n] - cum[self.end]
        total = float(w @ (cum[n] - cum[self.begin]))
        self.first = w * allowed / total  # P(first fault c and the pair undecided | two faults)
        self.undecided = float(self.first.sum())
        self.decided_losses = (w * decided / total) @ singles.losses  # the decided pairs' first failing checks

    def sample(self, rng: np.random.Generator) -> dict[int, str]:
        """An undecided pair from its exact law given two faults."""
        s = self.singles
        c1 = int(rng.choice(len(self.first), p=self.first / self.undecided))
        lo, hi = self.cum[self.begin[c1]], self.cum[self.end[c1]]
        c2 = int(np.searchsorted(self.cum, lo + rng.random() * (hi - lo), side="right")) - 1
        c2 = min(max(c2, int(self.begin[c1])), int(self.end[c1]) - 1)
        return {int(s.location[c1]): s.pauli[c1], int(s.location[c2]): s.pauli[c2]}


def _decided(singles: SingleFaults | None, faults: dict[int, str]) -> Outcome | None:
    """The outcome of `faults` without a run, when its earliest fault alone is rejected with certainty
    before any other fault happens."""
    if singles is None or len(faults) < 2:
        return None
    order = sorted(faults, key=lambda l: singles.locations[l].op)
    first, second = singles.locations[order[0]].op, singles.locations[order[1]].op
    c = singles.index(order[0], faults[order[0]])
    if first < second and singles.rejected_at[c] < second:
        return Outcome(0.0, 0.0, singles.losses[c], int(singles.rejected_at[c]))
    return None


def _evaluate_chunk(args: tuple[ProtocolCircuit, list[dict[int, str]]]) -> list[Outcome]:
    circuit, configs = args
    return [evaluate(circuit, f) for f in configs]


@dataclass
class _Stratum:
    label: str
    probability: float  # that an attempt's faults fall in this stratum
    runs: int
    outcomes: list[Outcome]
    fixed_losses: np.ndarray | float = 0.0  # losses of configurations decided without a run


def sample_exact(
    circuit: ProtocolCircuit | Target,
    noise: UniformNoise | None,
    shots: int,
    seed: int,
    workers: int | None = None,
    progress=None,
) -> dict:
    """Acceptance and logical error of accepted attempts from the exact state vector (distance 3 only).

    `progress(stage, done, total)`, if given, hears each finished piece of work: stage "single faults",
    then "fault configurations" (chunks of 32 runs).

    `circuit` is the protocol, lowered here with `noise`, or a `Target`, whose program already carries
    its noise (then `noise` must be None).

    `shots` is the budget of sampled configurations of two or more faults (stratified by their number;
    for two faults, only the pairs that a single-fault run does not already decide; at least one per
    stratum). No fault needs no run; every single fault is run exactly on top of the budget
    (`exact.single_fault_runs`, once per circuit). `accepted`, `logical_errors` and `discards` are
    expected counts in `shots` attempts, not tallies: this method computes probabilities.

    Confidence intervals: normal, from the stratified sample variances; a stratum in which no run saw
    a logical error adds its rule-of-three bound to the upper end. `exact.strata` gives, per stratum, its
    probability, runs, mean acceptance and mean acceptance * logical error.
    """
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise CtrlError(f"shots must be a positive integer, got {shots!r}")
    if isinstance(circuit, Target):
        if noise is not None:
            raise CtrlError("a Target carries its own noise: pass noise=None")
        target = circuit
    else:
        target = _protocol_target(circuit, noise.p)
    program = target.program
    locations = tuple(program.locations)
    model = _FaultModel.build(locations)
    k_dist = model.k_distribution
    singles = single_faults(target, workers, progress) if locations else None
    if singles is not None:
        if [(l.op, l.qubits, l.paulis) for l in singles.locations] != [(l.op, l.qubits, l.paulis) for l in locations]:
            raise CtrlError("the fault locations at this noise strength differ from the enumerated ones")

    noiseless = evaluate(target, {})
    acc = k_dist[0] * noiseless.acceptance
    err = k_dist[0] * noiseless.error
    lost = k_dist[0] * noiseless.losses
    first_order = {"logical_error": 0.0, "rejection": 0.0}
    single = {"logical_error": 0.0, "rejection": 0.0}
    failures: list[dict] = []
    strata: list[_Stratum] = []
    simulated = 0
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E7]))
    if singles is not None:
        q = np.array([l.probability for l in locations])
        inverse_share = _inverse_pauli_shares(locations, singles)
        weight = (q / (1 - q))[singles.location] / inverse_share
        w1 = weight / weight.sum()
        acc += k_dist[1] * float(w1 @ singles.acceptance)
        err += k_dist[1] * float(w1 @ singles.error)
        lost = lost + k_dist[1] * (w1 @ singles.losses)
        single = {
            "logical_error": k_dist[1] * float(w1 @ singles.error),
            "rejection": k_dist[1] * float(w1 @ (1 - singles.acceptance)),
        }
        if target.p:
            per_p = (q / target.p)[singles.location] / inverse_share
            first_order = {
                "logical_error": float(per_p @ singles.error),
                "rejection": float(per_p @ (1 - singles.acceptance)),
            }
        else:  # no single strength to divide by
            first_order = {"logical_error": None, "rejection": None}
        failures = [
            _describe(target, locations[singles.location[i]], singles.pauli[i]) | {"error": float(singles.error[i])}
            for i in singles.failures()
        ]
        strata, configs = _plan(rng, model, _Pairs(singles, weight), shots)
        todo = [i for i, f in enumerate(configs) if _decided(singles, f) is None]
        simulated = len(todo)
        chunks = [[configs[i] for i in todo[j : j + 32]] for j in range(0, len(todo), 32)]
        count = _counter(progress, "fault configurations", len(chunks))
        ran = iter(o for chunk in _map(_evaluate_chunk, [(target, c) for c in chunks], workers, count) for o in chunk)
        outcomes = [_decided(singles, f) or next(ran) for f in configs]
        pos = 0
        for s in strata:
            s.outcomes = outcomes[pos : pos + s.runs]
            pos += s.runs

    var_acc = var_err = cov = bound = 0.0
    for s in strata:
        lost = lost + s.fixed_losses
        if not s.runs:
            continue
        a = np.array([o.acceptance for o in s.outcomes])
        e = np.array([o.error for o in s.outcomes])
        acc += s.probability * a.mean()
        err += s.probability * e.mean()
        lost = lost + s.probability * np.mean([o.losses for o in s.outcomes], axis=0)
        if s.runs > 1:
            c = np.cov(a, e)
            var_acc += s.probability**2 * c[0, 0] / s.runs
            var_err += s.probability**2 * c[1, 1] / s.runs
            cov += s.probability**2 * c[0, 1] / s.runs
        else:  # one run shows no spread: take the widest possible for values in [0, 1]
            var_acc += s.probability**2 / 4
            var_err += s.probability**2 / 4
        if not (e > 1e-12).any():
            bound += s.probability * 3 / s.runs  # rule of three: no error in `runs` tries

    acc = min(acc, 1.0)  # rounding can lift a noiseless 1 by an ulp
    rate = err / acc if acc > 0 else 0.0
    z = 1.959964
    sd_acc = math.sqrt(var_acc)
    sd_rate = math.sqrt(max(0.0, var_err - 2 * rate * cov + rate * rate * var_acc)) / acc if acc > 0 else 0.0
    kinds = target.kinds
    discards: dict[str, float] = {}
    for tag, x in zip(program.measurement_tags, lost):
        kind = kinds.get(tag, tag)
        discards[kind] = discards.get(kind, 0.0) + float(x)
    return {
        "shots": shots,
        "accepted": round(acc * shots, 2),
        "acceptance": acc,
        "acceptance_ci95": [max(0.0, acc - z * sd_acc), min(1.0, acc + z * sd_acc)],
        "logical_errors": round(err * shots, 4),
        "logical_error_rate": rate,
        "logical_error_rate_ci95": [
            max(0.0, rate - z * sd_rate),
            min(1.0, max(rate + z * sd_rate, bound / acc if acc > 0 else 0.0)),
        ],
        "discards": {k: round(v * shots, 2) for k, v in sorted(discards.items()) if v > 0},
        "first_order_coefficient": first_order["logical_error"],
        "exact": {
            "simulator": (
                "state vector, float64, exact R_y(+-pi/4)"
                if target.source is not None
                else f"state vector, {program.dtype.name}, exact rotations"
            ),
            "fault_locations": len(locations),
            "single_fault_runs": 0 if singles is None else len(singles.pauli),
            "sampled_configurations": sum(s.runs for s in strata),
            "sampled_runs": simulated,  # the others were decided by their first fault's single run
            "single_fault_failures": failures,
            "first_order_rejection_coefficient": first_order["rejection"],
            # exactly one fault, as probabilities at this noise (the k = 1 stratum's share of each)
            "single_fault_logical_error": single["logical_error"],
            "single_fault_rejection": single["rejection"],
            "p_faults": {
                "0": float(k_dist[0]),
                "1": float(k_dist[1]) if len(k_dist) > 1 else 0.0,
                ">=2": float(k_dist[2:].sum()),
            },
            "strata": [
                {
                    "faults": s.label,
                    "probability": s.probability,
                    "runs": s.runs,
                    "acceptance": float(np.mean([o.acceptance for o in s.outcomes])) if s.runs else 0.0,
                    "accepted_error": float(np.mean([o.error for o in s.outcomes])) if s.runs else 0.0,
                }
                for s in strata
            ],
            "reject_below": REJECT_BELOW,
        },
    }


def _inverse_pauli_shares(locations: tuple[Location, ...], singles: SingleFaults) -> np.ndarray:
    """1 / P(this configuration's Pauli | a fault at its location), per single-fault configuration: the
    number of Paulis when they are equally likely (a division, as before weights existed, so the figures
    of uniform channels do not move by an ulp)."""
    out = np.array([len(l.paulis) for l in locations], dtype=float)[singles.location]
    for c, (l, p) in enumerate(zip(singles.location, singles.pauli)):
        loc = locations[l]
        if loc.weights:
            w = loc.weights[loc.paulis.index(p)]
            out[c] = 1 / w if w > 0 else math.inf
    return out


def _plan(
    rng: np.random.Generator, model: _FaultModel, pairs: _Pairs, shots: int
) -> tuple[list[_Stratum], list[dict[int, str]]]:
    """Strata of the configurations with two or more faults and the configurations drawn for each.

    Two faults: the decided pairs enter exactly (a stratum without runs), the others are drawn. Three or
    more: one stratum per k while it would get at least MIN_RUNS_PER_STRATUM runs, then one pooled
    stratum. Runs go in proportion to each stratum's probability, at least one each.
    """
    k_dist = model.k_distribution
    if len(k_dist) < 3 or k_dist[2:].sum() <= 0:
        return [], []
    strata = [_Stratum("2 decided", float(k_dist[2] * (1 - pairs.undecided)), 0, [], k_dist[2] * pairs.decided_losses)]
    groups: list[tuple[str, list[int], float]] = []
    if pairs.undecided > 0:
        groups.append(("2", [2], k_dist[2] * pairs.undecided))
    ks = [k for k in range(3, len(k_dist)) if k_dist[k] > 0]
    total = sum(g[2] for g in groups) + k_dist[3:].sum()
    while ks and shots * k_dist[ks[0]] / total >= MIN_RUNS_PER_STRATUM:
        groups.append((str(ks[0]), [ks[0]], k_dist[ks[0]]))
        ks.pop(0)
    if ks:
        groups.append((f">={ks[0]}", ks, float(k_dist[ks].sum())))
    if not groups:
        return strata, []
    share = np.array([g[2] for g in groups]) / total * shots
    runs = np.maximum(1, np.floor(share).astype(int))
    for i in np.argsort(-(share - np.floor(share)), kind="stable")[: max(0, shots - int(runs.sum()))]:
        runs[i] += 1
    configs = []
    for (label, ks_, probability), n in zip(groups, runs):
        if label == "2":
            configs += [pairs.sample(rng) for _ in range(n)]
        else:
            law = k_dist[ks_] / k_dist[ks_].sum()
            configs += [model.sample(rng, int(ks_[rng.choice(len(ks_), p=law)])) for _ in range(n)]
        strata.append(_Stratum(label, float(probability), int(n), []))
    return strata, configs
