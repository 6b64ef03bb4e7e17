"""Every single fault of the exact circuit (every location, every Pauli), run exactly once per circuit
structure: the outcomes do not depend on p, only their weights do. This is the first-order term of
`sample_exact` and the table its sampler uses to decide pairs without a run.

The enumeration continues the noiseless state op by op and skips the run of a fault that is a stabilizer of
the state where it happens; tests/test_statevector.py checks its table against plain runs from the start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctrl.protocol.ir import ProtocolCircuit
from ctrl.sim.statevector.compiler import Location
from ctrl.sim.statevector.program import _norm2
from ctrl.sim.statevector.target import Outcome, Target, _scored, _target, evaluate
from ctrl.sim.statevector.workers import _counter, _map


def _enumerate_chunk(args: tuple[ProtocolCircuit | Target, int, int]) -> list[tuple[int, str, Outcome]]:
    """Every single fault at the noise ops in ops[lo:hi], continuing the noiseless state op by op."""
    circuit, lo, hi = args
    target = _target(circuit)
    program = target.runner
    saved = program.checkpoints()
    start = max(j for j in saved if j <= lo)
    state, lost = saved[start]
    run = program.run(start=start, state=state, losses=lost, stop=lo)
    (state,), lost = run.branches, run.losses
    noiseless = evaluate(circuit, {})
    out = []
    for i in range(lo, hi):
        op = program.ops[i]
        if op[0] == "N":
            norm2 = _norm2(state.psi)
            for loc in op[1]:
                for pauli in program.locations[loc].paulis:
                    faulted = program.apply_fault(state, loc, pauli)
                    overlap = np.einsum("i,i->", np.conj(state.psi), faulted.psi)
                    if faulted.labels == state.labels and abs(overlap) ** 2 >= norm2 * norm2 * (1 - 1e-12):
                        # the fault is a stabilizer of the state here (a Z on a fresh |0>, ...): what
                        # follows is the noiseless run
                        out.append((loc, pauli, noiseless))
                    else:
                        run = program.run(start=i + 1, state=faulted, losses=lost)
                        out.append((loc, pauli, _scored(target, run)))
        run = program.run(start=i, state=state, losses=lost, stop=i + 1)
        (state,), lost = run.branches, run.losses
    return out


@dataclass
class SingleFaults:
    """Every single fault (location, Pauli) of the exact circuit and its outcome, in circuit order."""

    locations: tuple[Location, ...]
    location: np.ndarray  # per configuration: location index
    pauli: tuple[str, ...]
    acceptance: np.ndarray
    error: np.ndarray  # acceptance * logical error
    losses: np.ndarray  # configurations x measurements
    rejected_at: np.ndarray  # op that rejected it for certain, or the number of ops

    def __post_init__(self) -> None:
        self._index = {(int(l), p): i for i, (l, p) in enumerate(zip(self.location, self.pauli))}

    def index(self, location: int, pauli: str) -> int:
        """The configuration of one fault: `pauli` at `location`."""
        return self._index[location, pauli]

    def failures(self, tolerance: float = 1e-12) -> list[int]:
        """Configurations that pass every check with some probability and leave a logical error."""
        return [int(i) for i in np.flatnonzero(self.error > tolerance)]


_SINGLE: dict[str, SingleFaults] = {}  # by Target.key


def single_faults(circuit: ProtocolCircuit | Target, workers: int | None = None, progress=None) -> SingleFaults:
    """Every single fault, run exactly (once per circuit structure: it does not depend on p).
    `progress(stage, done, total)`, if given, hears each finished piece of the work."""
    target = _target(circuit)
    if target.key not in _SINGLE:
        program = target.runner
        program.checkpoints()  # before the workers fork, so they inherit it
        n_ops = len(program.ops)
        # Cut the op list into pieces of about equal work: a fault costs about the ops left after it.
        cost = np.zeros(n_ops)
        for loc in program.locations:
            cost[loc.op] += len(loc.paulis) * (n_ops - loc.op)
        cum = np.cumsum(cost)
        pieces = 16
        cuts = sorted({0, n_ops} | {int(np.searchsorted(cum, cum[-1] * k / pieces)) + 1 for k in range(1, pieces)})
        tasks = [(target, lo, hi) for lo, hi in zip(cuts, cuts[1:]) if lo < hi <= n_ops]
        count = _counter(progress, "single faults", len(tasks))
        rows = [r for chunk in _map(_enumerate_chunk, tasks, workers, count) for r in chunk]
        _SINGLE[target.key] = SingleFaults(
            locations=tuple(program.locations),
            location=np.array([r[0] for r in rows], dtype=np.int64),
            pauli=tuple(r[1] for r in rows),
            acceptance=np.array([r[2].acceptance for r in rows]),
            error=np.array([r[2].error for r in rows]),
            losses=np.array([r[2].losses for r in rows]).reshape(len(rows), len(program.measurement_tags)),
            rejected_at=np.array([r[2].rejected_at for r in rows], dtype=np.int64),
        )
    return _SINGLE[target.key]
