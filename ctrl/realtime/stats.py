"""Where attempts end and what that costs: per-check and per-decision-point statistics."""

from __future__ import annotations

import numpy as np

from ctrl.realtime.decision import DecisionProgram


def discards(program: DecisionProgram, by_point: np.ndarray, by_rule: np.ndarray) -> dict:
    """Aborts by decision point, by check and by kind of check, from the counts of aborting points
    (`evaluate_batch`) and first fired checks (`first_failures`), as bincounts over points and rules."""
    by_kind: dict[str, int] = {}
    for r, n in zip(program.rules, by_rule):
        if n:
            by_kind[r.kind] = by_kind.get(r.kind, 0) + int(n)
    return {
        "aborts_by_point": {str(i): int(n) for i, n in enumerate(by_point) if n},
        "aborts_by_check": {program.rules[i].name: int(n) for i, n in enumerate(by_rule) if n},
        "aborts_by_kind": dict(sorted(by_kind.items())),
    }


def abort_statistics(program: DecisionProgram, aborts: np.ndarray, first: np.ndarray) -> dict:
    """`aborts` from `evaluate_batch`, `first` from `first_failures`. Times in the program's unit."""
    shots = int(aborts.size)
    accepted = int((aborts < 0).sum())
    times = np.array([p.time for p in program.points] + [program.duration])
    spent = times[np.where(aborts < 0, len(program.points), aborts)]
    by_point = np.bincount(aborts[aborts >= 0], minlength=len(program.points))
    by_rule = np.bincount(first[first >= 0], minlength=len(program.rules))
    aborted = spent[aborts >= 0]
    return {
        "shots": shots,
        "accepted": accepted,
        "acceptance": accepted / shots if shots else 0.0,
        **discards(program, by_point, by_rule),
        "full_attempt_time": int(program.duration),
        "mean_time_per_attempt": float(spent.mean()) if shots else 0.0,
        "mean_time_per_aborted_attempt": float(aborted.mean()) if aborted.size else 0.0,
        "expected_time_per_accepted_state": float(spent.sum() / accepted) if accepted else float("inf"),
    }
