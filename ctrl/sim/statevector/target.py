"""What the exact check runs and how one fault configuration is scored: a `Target` (a Program and what
scoring needs besides it), the protocol's own target, `evaluate` and where a fault is (`describe`).

Other circuits than the protocol's (the compiled program, `ctrl.emulate.exact`) come in as a `Target`:
their exact Stim form may also carry rotations by any angle (`I` tagged `RX:<angle>`, `RY:<angle>` or
`RZ:<angle>`, optionally followed by `;` and a note), SQRT_ZZ(_DAG) and PAULI_CHANNEL_1, whose Paulis are
not equally likely (`Location.weights`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Callable

import numpy as np

from ctrl.codes.color import ColorCode
from ctrl.errors import CtrlError
from ctrl.noise.models import UniformNoise
from ctrl.protocol.ir import ProtocolCircuit
from ctrl.sim.statevector.compiler import Location
from ctrl.sim.statevector.ideal import score
from ctrl.sim.statevector.program import Program, Run

# Single-fault results do not depend on p (only their weights do), so they are computed once per circuit
# structure, on the circuit lowered at this reference strength; location indices are the same at any p > 0.
_REFERENCE_P = 1e-3


@lru_cache(maxsize=4)
def _program(circuit: ProtocolCircuit, p: float) -> Program:
    if circuit.distance != 3:
        raise CtrlError(
            f"the exact state-vector check runs distance 3 only (16 qubits); distance {circuit.distance} "
            f"has {len(circuit.qubits)} qubits, far beyond a state vector"
        )
    from ctrl.sim.lower import to_stim

    return Program(to_stim(circuit, "exact", UniformNoise(p) if p > 0 else None), np.float64)


@dataclass(eq=False)
class Target:
    """A circuit for the exact check and what scoring and reporting need besides its Program: the code
    whose |H>_L the data qubits must hold at the end (code qubit j is circuit qubit `data[j]`), the kind of
    each check (for the discard report), the uniform noise strength if there is one (first-order
    coefficients are per unit p) and how to say where a fault location is.

    `program.locations` carry this noise's probabilities. Runs go through `runner`, the first Program
    built with the same structure (`Program.structure`), so circuits that differ only in noise strengths
    share one set of checkpoints and one single-fault table. Worker processes get a Target by its key
    (the registry is inherited when they fork), or rebuild it from `source` when there is one.
    """

    program: Program
    code: ColorCode
    data: tuple[int, ...]
    kinds: dict[str, str]
    p: float | None = None
    where: Callable[[Location, str], dict] | None = None
    source: object = None  # something `_target` rebuilds it from (a ProtocolCircuit), or None
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = self.program.structure
        _TARGETS.setdefault(self.key, self)

    @property
    def runner(self) -> Program:
        return _TARGETS.setdefault(self.key, self).program

    def __reduce__(self):
        return (_registered, (self.key, self.source))


_TARGETS: dict[str, Target] = {}


def _registered(key: str, source: object) -> Target:
    if key not in _TARGETS and source is not None:
        _target(source)
    if key not in _TARGETS:
        raise CtrlError("this exact-check target is not known in this process: worker processes must be forked")
    return _TARGETS[key]


@lru_cache(maxsize=8)
def _protocol_target(circuit: ProtocolCircuit, p: float) -> Target:
    kinds = {c.name: c.kind for c in circuit.checks}
    return Target(_program(circuit, p), circuit.code, circuit.data, kinds, p, partial(describe, circuit), circuit)


def _target(circuit: ProtocolCircuit | Target) -> Target:
    return circuit if isinstance(circuit, Target) else _protocol_target(circuit, _REFERENCE_P)


@dataclass(frozen=True)
class Outcome:
    """One fault configuration, run exactly and scored.

    acceptance: probability that every check passes; error: acceptance * logical error after the ideal
    round; losses[m]: probability that measurement m is the first check to fire; rejected_at: the op at
    which the last branch was rejected if every branch was, else the number of ops.
    """

    acceptance: float
    error: float
    losses: np.ndarray
    rejected_at: int


def evaluate(circuit: ProtocolCircuit | Target, faults: dict[int, str]) -> Outcome:
    """Run the exact circuit with `faults` (location index -> one Pauli letter per qubit) and score it."""
    target = _target(circuit)
    return _scored(target, target.runner.run_from_checkpoint(faults))


def _scored(target: Target, run: Run) -> Outcome:
    program = target.runner
    acc = err = 0.0
    for state in run.branches:
        a, e = score(target.code, program.output(state, target.data))
        acc += a
        err += e
    return Outcome(acc, err, run.losses, len(program.ops) if run.branches else run.rejected_at)


def describe(circuit: ProtocolCircuit, location: Location, pauli: str) -> dict:
    """Where a fault is, in the protocol's words: tick, Stim instruction, Pauli, and the gadgets that the
    protocol ops on its qubits in that time step belong to."""
    tags = sorted({op.tag for op in circuit.ops if op.step == location.tick and set(op.targets) & set(location.qubits)})
    return {
        "tick": location.tick,
        "instruction": location.instruction,
        "pauli": pauli,
        "qubits": list(location.qubits),
        "gadgets": tags,
    }


def _describe(target: Target, location: Location, pauli: str) -> dict:
    if target.where is not None:
        return target.where(location, pauli)
    return {
        "instruction": location.instruction,
        "after": location.context,
        "pauli": pauli,
        "qubits": list(location.qubits),
    }
