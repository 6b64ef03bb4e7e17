"""The exact check: the real protocol, R_y(+-pi/4) rotations and all, as a state vector (docs/protocol.md,
"How it is simulated": at d=3, 16 qubits, a plain state vector is cheap and measures what the proxies estimate).

`ctrl.sim.lower.to_stim(circuit, "exact", noise)` keeps every R_y(+-pi/4) as an `I` tagged `RY_P4`/`RY_M4`;
`Program` compiles that circuit into state-vector operations and runs it with an explicit set of Pauli
faults, one per chosen fault location.

Every gate of the exact circuit (CX, CZ, R_y, the projections, the resets) is real and a Y fault is i*X*Z,
a global phase away from a real one, so the protocol runs in float64: the same figures as complex128 (a
test compares them) at half the memory traffic.

    from ctrl.sim.statevector import sample_exact
    r = sample_exact(cn20_protocol(3), UniformNoise(1e-3), shots=1000, seed=0)

The modules, in the order they depend on each other:

    compiler.py  the Stim circuit as ops, gate by gate (the reference path), and its fault locations
    fused.py     the fenced fast path: fused unitaries and their matmul kernels (Program(fuse=True))
    program.py   Program: runs the ops on a state vector with a set of faults
    ideal.py     the ideal round that scores an output state
    target.py    Target (a Program and what scoring needs), evaluate, describe
    workers.py   worker processes and progress
    singles.py   every single fault, run exactly
    sample.py    sample_exact: the stratified estimate over the number of faults
"""

from ctrl.sim.statevector.compiler import Location
from ctrl.sim.statevector.ideal import logical_h_state, minimum_weight_corrections, score
from ctrl.sim.statevector.program import MAX_QUBITS, REJECT_BELOW, Program, Run, State
from ctrl.sim.statevector.sample import MIN_RUNS_PER_STRATUM, sample_exact
from ctrl.sim.statevector.singles import SingleFaults, single_faults
from ctrl.sim.statevector.target import Outcome, Target, describe, evaluate

__all__ = [
    "Location", "logical_h_state", "minimum_weight_corrections", "score", "MAX_QUBITS", "REJECT_BELOW", "Program",
    "Run", "State", "MIN_RUNS_PER_STRATUM", "sample_exact", "SingleFaults", "single_faults", "Outcome", "Target",
    "describe", "evaluate",
]
