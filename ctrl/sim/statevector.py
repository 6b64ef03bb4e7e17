"""The exact check: the real protocol, R_y(+-pi/4) rotations and all, as a state vector (docs/protocol.md,
"How it is simulated": at d=3, 16 qubits, a plain state vector is cheap and measures what the proxies estimate).

`ctrl.sim.lower.to_stim(circuit, "exact", noise)` keeps every R_y(+-pi/4) as an `I` tagged `RY_P4`/`RY_M4`;
`Program` compiles that circuit into state-vector operations and runs it with an explicit set of Pauli
faults, one per chosen fault location. Every measurement of the protocol is a check that must read 0, so a
measurement is a projection onto outcome 0 and the squared norm that survives is the probability that the
attempt is accepted. A measurement flip is a fault location of its own, run as an X before the M (a Z
before the MX): the accepted branch is the same, and the qubit is re-prepared before it is used again.
A just-measured qubit is in a known product state, so its reset only moves amplitude; a reset of a qubit
that was never measured (the encoder's ancillas) is the real channel: one branch when the qubit is in a
product state, as it is without faults, a mixture of two branches when faults left it entangled.

Every gate of the exact circuit (CX, CZ, R_y, the projections, the resets) is real and a Y fault is i*X*Z,
a global phase away from a real one, so the protocol runs in float64: the same figures as complex128 (a
test compares them) at half the memory traffic.

Scoring, as the paper does: a noiseless ideal round measures every X and Z face; each syndrome s gets the
minimum-weight correction C_s; an accepted output psi (unnormalised, norm^2 = acceptance) is wrong with
probability 1 - sum_s |<H_L| C_s P_s psi>|^2 / ||psi||^2.

Sampling (`sample_exact`): fault locations are independent, so the number of faults k has an exact
distribution. k = 0 needs no run (accepted, no error). k = 1 is enumerated: every location, every Pauli,
once per circuit (the outcomes do not depend on p, only their weights do). k >= 2 is sampled, stratified
by k, from the exact law of the configuration given k; for k = 2 only the pairs that the single-fault runs
do not already decide are drawn (see `_Pairs`).

Other circuits than the protocol's (the compiled program, `ctrl.emulate.exact`) come in as a `Target`:
their exact Stim form may also carry rotations by any angle (`I` tagged `RX:<angle>`, `RY:<angle>` or
`RZ:<angle>`, optionally followed by `;` and a note), SQRT_ZZ(_DAG) and PAULI_CHANNEL_1, whose Paulis are
not equally likely (`Location.weights`).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Callable

import numpy as np
import stim

from ctrl.codes.color import ColorCode
from ctrl.errors import CtrlError
from ctrl.noise.models import UniformNoise
from ctrl.protocol.ir import ProtocolCircuit

# A branch whose acceptance probability falls below this is dropped as rejected: a check that a fault
# makes fail with certainty leaves ~1e-32 of rounding, and nothing that small moves any reported figure.
REJECT_BELOW = 1e-20
MAX_QUBITS = 20
_SQRT_HALF = math.sqrt(0.5)
_PAULIS_2 = tuple(a + b for a, b in itertools.product("IXYZ", repeat=2) if a + b != "II")
_NOISE = {
    "X_ERROR": ("X",),
    "Y_ERROR": ("Y",),
    "Z_ERROR": ("Z",),
    "DEPOLARIZE1": ("X", "Y", "Z"),
    "DEPOLARIZE2": _PAULIS_2,
}


def _norm2(psi: np.ndarray) -> float:
    """Squared norm without BLAS: np.vdot's threads stall for milliseconds on a busy machine."""
    f = psi.view(np.float64)
    axes = "abcdefgh"[: f.ndim]
    return float(np.einsum(f"{axes},{axes}->", f, f))


def _ry(theta: float) -> np.ndarray:
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -s], [s, c]])


def _rx(theta: float) -> np.ndarray:
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -1j * s], [-1j * s, c]])


_ROTATIONS = {"RY_P4": _ry(math.pi / 4), "RY_M4": _ry(-math.pi / 4)}
_ANGLE_TAG = re.compile(r"(RX|RY|RZ):([^;]+)(?:;.*)?", re.S)
_H = np.array([[1.0, 1.0], [1.0, -1.0]]) * _SQRT_HALF
# Diagonal two-qubit gates by their phases on |01>, |10>, |11> (relative to |00>; all three are symmetric).
_DIAGONAL_2 = {
    name: tuple(complex(np.diag(stim.gate_data(name).unitary_matrix)[i]) for i in (1, 2, 3))
    for name in ("SQRT_ZZ", "SQRT_ZZ_DAG")
}


def _rz(theta: float) -> np.ndarray:
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.diag([complex(c, -s), complex(c, s)])


_FUSABLE_1 = {"H": _H, "X": np.array([[0.0, 1.0], [1.0, 0.0]]), "Z": np.diag([1.0, -1.0])}
_FUSABLE_2 = {
    "CX": np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=complex),  # first controls
    "CZ": np.diag([1, 1, 1, -1]).astype(complex),
    **{name: np.diag((1, *phases)) for name, phases in _DIAGONAL_2.items()},
}
# Below this many amplitudes after a qubit's axis, matmul's inner loops are too short: a fused gate is
# applied as a Kronecker-expanded matrix instead; two-qubit gates whose trailing block is at most
# _EMBED_WIDTH wide are one matmul over that whole block.
_MATMUL_INNER = 16
_EMBED_WIDTH = 32


def _swap_qubits(m: np.ndarray) -> np.ndarray:
    """A 4x4 two-qubit matrix with its qubits' order exchanged."""
    order = [0, 2, 1, 3]
    return m[np.ix_(order, order)]


def _embed(m: np.ndarray, qubits: tuple[int, ...], union: tuple[int, ...]) -> np.ndarray:
    """`m` on `qubits` as a matrix on `union` (a superset, in the same order; the first is the high bit)."""
    if qubits == union:
        return m
    return np.kron(m, np.eye(2)) if qubits[0] == union[0] else np.kron(np.eye(2), m)


def _control_first_order(circuit: stim.Circuit) -> list[int]:
    """rank[q] for a layout in which the control of every two-qubit gate comes before its target where
    possible (CX's control; for a diagonal gate next to a Hadamard, as in an ECR, the qubit without the
    Hadamard): each fused gate then acts on the target's axis within halves of the state, fast with
    matmul. Only speed depends on it."""
    n = circuit.num_qubits
    after: dict[int, set[int]] = {q: set() for q in range(n)}
    previous = None
    for inst in circuit.flattened():
        qs = [t.value for t in inst.targets_copy()]
        if inst.name == "CX":
            for c, t in zip(qs[::2], qs[1::2]):
                after[c].add(t)
        elif inst.name in _DIAGONAL_2 or inst.name == "CZ":
            hadamards = set(previous) if previous is not None else set()
            for a, b in zip(qs[::2], qs[1::2]):
                if b in hadamards and a not in hadamards:
                    after[a].add(b)
                elif a in hadamards and b not in hadamards:
                    after[b].add(a)
        previous = qs if inst.name == "H" else None
    indegree = {q: 0 for q in range(n)}
    for c in after:
        for t in after[c]:
            indegree[t] += 1
    order: list[int] = []
    left = set(range(n))
    while left:
        ready = [q for q in left if indegree[q] == 0] or [min(left)]  # a cycle: break it anywhere
        q = min(ready)
        order.append(q)
        left.remove(q)
        for t in after[q]:
            indegree[t] -= 1
    rank = [0] * n
    for i, q in enumerate(order):
        rank[q] = i
    return rank


@dataclass(frozen=True)
class Location:
    """One fault location: with `probability` one of `paulis` hits `qubits` at this point, each with its
    share in `weights` (empty: all equally likely)."""

    index: int
    op: int  # position in Program.ops of the noise op that applies it
    tick: int
    instruction: str  # the Stim instruction it comes from, restricted to these targets
    qubits: tuple[int, ...]
    paulis: tuple[str, ...]  # one letter per qubit
    probability: float
    weights: tuple[float, ...] = ()
    context: str = ""  # tag of the last operation on these qubits before it (where it is, in a timed circuit)

    @property
    def pauli_weights(self) -> tuple[float, ...]:
        """P(this Pauli | a fault here), for each of `paulis`."""
        return self.weights or (1 / len(self.paulis),) * len(self.paulis)


_PRODUCT = {"0": (1.0, 0.0), "1": (0.0, 1.0), "+": (_SQRT_HALF, _SQRT_HALF), "-": (_SQRT_HALF, -_SQRT_HALF)}
# A Pauli on a qubit in a known product state only relabels it (up to a global phase).
_RELABEL = {
    "X": {"0": "1", "1": "0", "+": "+", "-": "-"},
    "Z": {"0": "0", "1": "1", "+": "-", "-": "+"},
    "Y": {"0": "1", "1": "0", "+": "-", "-": "+"},
}
# <basis|label>: the amplitude a projection keeps from a qubit in a known product state.
_OVERLAP = {
    "0": {"0": 1.0, "1": 0.0, "+": _SQRT_HALF, "-": _SQRT_HALF},
    "+": {"0": _SQRT_HALF, "1": _SQRT_HALF, "+": 1.0, "-": 0.0},
}
# With fuse=True a qubit stays inactive through one-qubit gates too, so its label can be any product
# state: a pair of amplitudes (a0, a1) instead of one of the four letters.
_PAULI_ON_PAIR = {
    "X": lambda a0, a1: (a1, a0),
    "Z": lambda a0, a1: (a0, -a1),
    "Y": lambda a0, a1: (-1j * a1, 1j * a0),
}


def _amplitudes(label: str | tuple) -> tuple:
    return _PRODUCT[label] if isinstance(label, str) else label


def _relabel(pauli: str, label: str | tuple) -> str | tuple:
    return _RELABEL[pauli][label] if isinstance(label, str) else _PAULI_ON_PAIR[pauli](*label)


def _structure(circuit: stim.Circuit, dtype: np.dtype) -> str:
    """A digest of the circuit without its noise strengths (only whether each channel is on): circuits
    with one structure have the same fault locations, and every fault configuration the same outcome."""
    h = hashlib.sha256(dtype.name.encode())
    for inst in circuit.flattened():
        args = inst.gate_args_copy()
        if inst.name in _NOISE or inst.name in ("PAULI_CHANNEL_1", "M", "MX"):
            args = [sum(args) > 0]
        h.update(f"{inst.name}[{inst.tag}]{args}{[t.value for t in inst.targets_copy()]}\n".encode())
    return h.hexdigest()


@dataclass
class State:
    """A pure state: `psi` over the active qubits (one axis each, in increasing qubit order; which qubits
    are active is fixed by the op index, see Program) and the product state '0', '1', '+' or '-' of
    every inactive qubit in `labels`."""

    psi: np.ndarray
    labels: dict[int, str]

    def copy(self) -> State:
        return State(self.psi.copy(), dict(self.labels))


@dataclass
class Run:
    """The result of running (part of) a Program.

    The state is the mixture of `branches` (more than one only when a reset meets a qubit that faults
    left entangled); their summed squared norm is the probability that every check so far passed.
    losses[m] is the probability that measurement m is the first check to fire. `rejected_at` is the
    last op at which a branch was rejected (-1 if none was).
    """

    branches: list[State]
    losses: np.ndarray
    rejected_at: int


class Program:
    """A Stim circuit compiled to state-vector operations on its qubits 0..n-1.

    Supported: QUBIT_COORDS, TICK, R, RX, H, X, Z, CX, CZ, SQRT_ZZ, SQRT_ZZ_DAG, I[RY_P4], I[RY_M4],
    I[RY:<angle>], I[RX:<angle>], I[RZ:<angle>] (the last two need complex128), M(p), MX(p), DETECTOR (one
    record each; every measurement in exactly one), X_ERROR, Y_ERROR, Z_ERROR, DEPOLARIZE1, DEPOLARIZE2,
    PAULI_CHANNEL_1.

    Only the active qubits are in the state vector: a qubit becomes active at its first gate after a
    reset (or the start) and inactive again when it is measured or reset, after which it is in a known
    product state (a fault there only relabels it). The protocol keeps most of its 16 qubits inactive
    most of the time, which makes a run two to three times cheaper. Which qubits are active depends only
    on the op index, so every layout is fixed at compile time.

    `fuse=True` (complex128 only; the compiled program runs this way) goes further: a qubit becomes
    active at its first two-qubit gate (one-qubit gates before it turn its product state, "L"), and runs
    of unitaries on at most two qubits with nothing in between become one matrix product each (see
    `_fused`). The compiled program's runs get four times cheaper; the figures agree with the unfused
    runs to rounding (tests/test_exact_compiled.py compares them).
    """

    def __init__(self, circuit: stim.Circuit, dtype: type = np.complex128, fuse: bool = False) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.complex128), np.dtype(np.float64)):
            raise CtrlError(f"state-vector dtype must be complex128 or float64, got {self.dtype}")
        self.n = circuit.num_qubits
        if self.n > MAX_QUBITS:
            raise CtrlError(f"the state-vector simulator handles at most {MAX_QUBITS} qubits, got {self.n}")
        self.fuse = fuse
        if fuse and self.dtype.kind != "c":
            raise CtrlError("fused gates are complex matrices: fuse=True needs complex128")
        self.ops: list[tuple] = []
        self.locations: list[Location] = []
        self.measurement_tags: list[str] = []
        self._active: list[int] = []  # during compilation: the active qubits, sorted by rank
        self._rank = _control_first_order(circuit) if fuse else list(range(self.n))
        self._pending: tuple[tuple[int, ...], np.ndarray] | None = None  # fuse: unitary not yet emitted
        self._compile(circuit)
        self.structure = _structure(circuit, self.dtype) + (":fused" if fuse else "")
        self.final_active = tuple(self._active)
        self._checkpoints: dict[int, tuple[State, np.ndarray]] | None = None
        half = 1 << max(0, self.n - 1)
        self._buffers = (np.empty(half, self.dtype), np.empty(half, self.dtype))

    # ---- compilation ---------------------------------------------------------------------------------

    def _compile(self, circuit: stim.Circuit) -> None:
        tick = 0
        n_meas = 0
        detected: dict[int, str] = {}
        last: dict[int, str] = {}  # qubit -> tag (or name) of the last operation on it
        for inst in circuit.flattened():
            name, tag, args = inst.name, inst.tag, inst.gate_args_copy()
            targets = [t.value for t in inst.targets_copy()]
            if name in ("QUBIT_COORDS", "SHIFT_COORDS"):
                continue
            if name not in _NOISE and name not in ("TICK", "DETECTOR", "PAULI_CHANNEL_1"):
                for q in targets:
                    last[q] = tag or name
            if self.fuse and self._fused(name, tag, targets):
                continue
            self._flush()
            if name == "TICK":
                tick += 1
            elif name == "DETECTOR":
                recs = inst.targets_copy()
                if len(recs) != 1 or not recs[0].is_measurement_record_target:
                    raise CtrlError(f"exact simulation needs one measurement per DETECTOR, got {inst}")
                m = n_meas + recs[0].value
                if m in detected:
                    raise CtrlError(f"measurement {m} is in two DETECTORs ({detected[m]!r} and {tag!r})")
                detected[m] = tag
            elif name in ("R", "RX"):
                for q in targets:
                    basis = "0" if name == "R" else "+"
                    if q in self._active:
                        self.ops.append(("R", q, self._shape1(q), basis))
                        self._active.remove(q)
                    else:
                        self.ops.append(("RI", q, basis))
            elif name == "I" and tag in _ROTATIONS:
                for q in targets:
                    self._activate(q)
                    self.ops.append(("U", self._shape1(q), _ROTATIONS[tag]))
            elif name == "I" and _ANGLE_TAG.fullmatch(tag):
                axis, angle = _ANGLE_TAG.fullmatch(tag).groups()
                theta = float(angle)
                if axis != "RY" and self.dtype.kind != "c":
                    raise CtrlError(f"I[{tag}] is a complex rotation: run it in complex128")
                for q in targets:
                    self._activate(q)
                    if axis == "RZ":  # diagonal: RZ(t) = exp(-it/2) diag(1, exp(it)), a phase on |1>
                        self.ops.append(("PH", self._shape1(q), complex(math.cos(theta), math.sin(theta))))
                    else:
                        self.ops.append(("U", self._shape1(q), (_ry if axis == "RY" else _rx)(theta)))
            elif name == "I":
                continue
            elif name in ("H", "X", "Z"):
                for q in targets:
                    self._activate(q)
                    self.ops.append(("U", self._shape1(q), _H) if name == "H" else (name, self._shape1(q)))
            elif name in ("CX", "CZ"):
                for a, b in zip(targets[::2], targets[1::2]):
                    self._activate(a)
                    self._activate(b)
                    self.ops.append((name, *self._shape2(a, b)))
            elif name in _DIAGONAL_2:
                if self.dtype.kind != "c":
                    raise CtrlError(f"{name} has complex phases: run it in complex128")
                for a, b in zip(targets[::2], targets[1::2]):
                    self._activate(a)
                    self._activate(b)
                    shape, _ = self._shape2(a, b)  # symmetric: the order of a and b does not matter
                    self.ops.append(("D2", shape, _DIAGONAL_2[name]))
            elif name in ("M", "MX"):
                basis = "0" if name == "M" else "+"
                flip = args[0] if args else 0.0
                if flip > 0:
                    pauli = "X" if name == "M" else "Z"
                    contexts = [tag or name] * len(targets)
                    self._noise([(q,) for q in targets], (pauli,), flip, f"{name}({flip:g})", tick, contexts=contexts)
                for q in targets:
                    if q in self._active:
                        self.ops.append(("P", q, self._shape1(q), basis, n_meas))
                        self._active.remove(q)
                    else:
                        self.ops.append(("PI", q, basis, n_meas))
                    n_meas += 1
            elif name in _NOISE:
                width = 2 if name == "DEPOLARIZE2" else 1
                groups = [tuple(targets[i : i + width]) for i in range(0, len(targets), width)]
                if args[0] > 0:
                    contexts = [self._context(tag, last, g[0]) for g in groups]
                    self._noise(groups, _NOISE[name], args[0], f"{name}({args[0]:g})", tick, contexts=contexts)
            elif name == "PAULI_CHANNEL_1":
                total = sum(args)
                if total > 0:
                    text = f"{name}({', '.join(f'{a:g}' for a in args)})"
                    weights = tuple(a / total for a in args)
                    contexts = [self._context(tag, last, q) for q in targets]
                    self._noise([(q,) for q in targets], ("X", "Y", "Z"), total, text, tick, weights, contexts)
            else:
                raise CtrlError(f"exact simulation does not support the Stim instruction {inst}")
        self._flush()
        missing = sorted(set(range(n_meas)) - set(detected))
        if missing:
            raise CtrlError(f"measurements {missing} are in no DETECTOR: exact simulation projects every one onto 0")
        self.measurement_tags = [detected[m] for m in range(n_meas)]

    # ---- fusion (fuse=True) ------------------------------------------------------------------------------
    # Consecutive unitaries on at most two qubits, with nothing in between (not even a fault location), are
    # one operation: a pulse's virtual Zs and the pulse, the four gates of an ECR. Each fused operation is a
    # matrix product into a second array (numpy's matmul makes one pass where the gate-by-gate updates
    # make six), with a Kronecker-expanded matrix when the qubit's axis is too far down for matmul's
    # small inner loops.

    def _fused(self, name: str, tag: str, targets: list[int]) -> bool:
        """Take a unitary instruction into the pending fused operation; False if it is not one."""
        if name == "I" and (tag in _ROTATIONS or _ANGLE_TAG.fullmatch(tag)):
            if tag in _ROTATIONS:
                m = _ROTATIONS[tag]
            else:
                axis, angle = _ANGLE_TAG.fullmatch(tag).groups()
                theta = float(angle)
                m = {"RY": _ry, "RX": _rx, "RZ": _rz}[axis](theta)
            for q in targets:
                self._gate((q,), m)
            return True
        if name in _FUSABLE_1:
            for q in targets:
                self._gate((q,), _FUSABLE_1[name])
            return True
        if name in _FUSABLE_2:
            for a, b in zip(targets[::2], targets[1::2]):
                self._gate((a, b), _FUSABLE_2[name])
            return True
        return False

    def _gate(self, qubits: tuple[int, ...], m: np.ndarray) -> None:
        if len(qubits) == 2:  # a one-qubit gate leaves an inactive qubit in a product state (see "L")
            for q in qubits:
                self._activate(q)
        if len(qubits) == 2 and self._rank[qubits[0]] > self._rank[qubits[1]]:
            qubits, m = qubits[::-1], _swap_qubits(m)
        if self._pending is not None:
            old_qubits, old = self._pending
            union = tuple(sorted(set(old_qubits) | set(qubits), key=self._rank.__getitem__))
            if len(union) == 1 or (len(union) == 2 and all(q in self._active for q in union)):
                merged = _embed(m, qubits, union) @ _embed(old, old_qubits, union)
                if len(union) == 1 or self._kernel2(union, merged, slow=False) is not None:
                    self._pending = (union, merged)
                    return
            self._flush()
        self._pending = (qubits, m)

    def _flush(self) -> None:
        if self._pending is None:
            return
        qubits, m = self._pending
        self._pending = None
        if len(qubits) == 1 and qubits[0] not in self._active:
            self.ops.append(("L", qubits[0], m))
        elif len(qubits) == 1:
            shape = self._shape1(qubits[0])
            a, _, c = shape
            if m[0, 1] == 0 and m[1, 0] == 0 and c >= _MATMUL_INNER:
                self.ops.append(("DG", shape, complex(m[1, 1] / m[0, 0])))  # in place, one half
            else:
                kron = np.ascontiguousarray(np.kron(m, np.eye(c)).T) if c < _MATMUL_INNER else None
                self.ops.append(("V", shape, m.astype(self.dtype), kron))
        else:
            self.ops.append(self._kernel2(qubits, m, slow=True))

    def _kernel2(self, qubits: tuple[int, int], m: np.ndarray, slow: bool) -> tuple | None:
        """How to apply the 4x4 `m` on `qubits` (in active order) in the current layout; when only the
        slow way would do, that way if `slow`, else None (and it is not fused further)."""
        shape, _ = self._shape2(*qubits)
        a, _, b, _, c = shape
        width = 4 * b * c
        if width <= _EMBED_WIDTH:  # both axes near the end: one matmul on the trailing block
            block = np.einsum("ijkl,bB,cC->ibjckBlC", m.reshape(2, 2, 2, 2), np.eye(b), np.eye(c))
            return ("E", a, width, np.ascontiguousarray(block.reshape(width, width).T))
        blocks = m.reshape(2, 2, 2, 2)  # [first out, second out, first in, second in]
        for perm in (0, 1):  # controlled on the first qubit: out[x ^ perm] = U_x in[x]
            off = blocks[np.arange(2) ^ (1 - perm), :, np.arange(2)]
            if not off.any():
                us = [blocks[x ^ perm, :, x, :] for x in (0, 1)]
                krons = [np.ascontiguousarray(np.kron(u, np.eye(c)).T) for u in us] if c < _MATMUL_INNER else None
                return ("W", shape, perm, us, krons)
        return ("G", shape, m) if slow else None

    # Active qubits are kept in increasing rank, the most significant first (rank: qubit number, or with
    # fuse=True an order that puts the controls of two-qubit gates before their targets).

    def _shape1(self, q: int) -> tuple[int, int, int]:
        k, m = self._active.index(q), len(self._active)
        return (1 << k, 2, 1 << (m - 1 - k))

    def _shape2(self, a: int, b: int) -> tuple[tuple[int, ...], bool]:
        """The shape that exposes the axes of a and b (lower-numbered first), and whether a is first."""
        ka, kb, m = self._active.index(a), self._active.index(b), len(self._active)
        lo, hi = min(ka, kb), max(ka, kb)
        return (1 << lo, 2, 1 << (hi - lo - 1), 2, 1 << (m - 1 - hi)), ka < kb

    def _activate(self, q: int) -> None:
        if q not in self._active:
            self._flush()
            self._active.append(q)
            self._active.sort(key=self._rank.__getitem__)
            self.ops.append(("ACT", q, self._shape1(q)))

    @staticmethod
    def _context(tag: str, last: dict[int, str], q: int) -> str:
        return f"{tag} after {last.get(q, 'start')}" if tag else last.get(q, "")

    def _noise(
        self,
        groups: list[tuple[int, ...]],
        paulis: tuple[str, ...],
        p: float,
        text: str,
        tick: int,
        weights: tuple[float, ...] = (),
        contexts: list[str] | None = None,
    ) -> None:
        indices = []
        shapes = {}
        for g, qubits in enumerate(groups):
            loc = Location(
                len(self.locations), len(self.ops), tick, f"{text} {' '.join(map(str, qubits))}",
                qubits, paulis, float(p), weights, contexts[g] if contexts else "",
            )
            self.locations.append(loc)
            indices.append(loc.index)
            shapes.update({q: self._shape1(q) for q in qubits if q in self._active})
        self.ops.append(("N", tuple(indices), shapes))

    # ---- running -------------------------------------------------------------------------------------

    def initial_state(self) -> State:
        return State(np.ones(1, dtype=self.dtype), {q: "0" for q in range(self.n)})

    def _scratch(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Two work arrays of half the state's size, so the hot loop allocates nothing."""
        size = math.prod(shape)
        return self._buffers[0][:size].reshape(shape), self._buffers[1][:size].reshape(shape)

    def _pauli(self, psi: np.ndarray, shape: tuple[int, int, int], p: str) -> np.ndarray:
        v = psi.reshape(shape)
        if p in "ZY":
            v[:, 1, :] *= -1
        if p in "XY":
            psi = np.ascontiguousarray(v[:, ::-1, :]).reshape(-1)
            if p == "Y" and self.dtype.kind == "c":
                psi *= 1j  # Y = iXZ; real runs drop the global phase
        return psi

    def apply_fault(self, state: State, location: int, pauli: str) -> State:
        """`state` (taken just before the location's noise op) with the fault applied; a new State."""
        loc = self.locations[location]
        shapes = self.ops[loc.op][2]
        out = state.copy()
        for q, letter in zip(loc.qubits, pauli):
            if letter == "I":
                continue
            if q in shapes:
                out.psi = self._pauli(out.psi, shapes[q], letter)
            else:
                out.labels[q] = _relabel(letter, out.labels[q])
        return out

    def run(
        self,
        faults: dict[int, str] | None = None,
        *,
        start: int = 0,
        state: State | None = None,
        losses: np.ndarray | None = None,
        stop: int | None = None,
    ) -> Run:
        """Run ops[start:stop] from `state` (default: every qubit |0>) with `faults` (location index -> one
        Pauli letter per qubit of the location)."""
        faults = faults or {}
        lost = np.zeros(len(self.measurement_tags)) if losses is None else losses.copy()
        state = self.initial_state() if state is None else state.copy()
        stop = len(self.ops) if stop is None else min(stop, len(self.ops))
        stack = [(start, state.psi, state.labels, _norm2(state.psi))]
        done = []
        rejected_at = -1
        while stack:
            i, psi, labels, norm2 = stack.pop()
            psi, i = self._advance(faults, i, stop, psi, labels, norm2, lost, stack)
            if psi is None:
                rejected_at = max(rejected_at, i - 1)
            else:
                done.append(State(psi, labels))
        return Run(done, lost, rejected_at)

    def _advance(self, faults, i, stop, psi, labels, norm2, lost, stack) -> tuple[np.ndarray | None, int]:
        """Apply ops[i:stop] to one branch (psi, labels: updated in place); returns (psi, stop) or, when
        the branch is rejected, (None, one past the op that rejected it). Branches split off by a reset
        go onto `stack`."""
        spares: dict[int, np.ndarray] = {}  # fused kernels write into a second array: one per size, reused
        while i < stop:
            op = self.ops[i]
            i += 1
            kind = op[0]
            if kind in ("V", "E", "W", "G"):
                out = spares.pop(psi.size, None)
                if out is None:
                    out = np.empty_like(psi)
                self._fused_kernel(op, psi, out)
                spares[psi.size] = psi
                psi = out
                continue
            if kind == "N":
                for loc in op[1]:
                    pauli = faults.get(loc)
                    if pauli is not None:
                        for q, p in zip(self.locations[loc].qubits, pauli):
                            if p == "I":
                                continue
                            if q in op[2]:
                                psi = self._pauli(psi, op[2][q], p)
                            else:
                                labels[q] = _relabel(p, labels[q])
            elif kind == "CX":
                v = psi.reshape(op[1])
                # swap the target's 0 and 1 where the control is 1
                if op[2]:
                    a, b = v[:, 1, :, 0, :], v[:, 1, :, 1, :]
                else:
                    a, b = v[:, 0, :, 1, :], v[:, 1, :, 1, :]
                t, _ = self._scratch(a.shape)
                t[...] = a
                a[...] = b
                b[...] = t
            elif kind == "CZ":
                psi.reshape(op[1])[:, 1, :, 1, :] *= -1
            elif kind == "D2":
                v = psi.reshape(op[1])
                p01, p10, p11 = op[2]
                v[:, 0, :, 1, :] *= p01
                v[:, 1, :, 0, :] *= p10
                v[:, 1, :, 1, :] *= p11
            elif kind in ("PH", "DG"):
                psi.reshape(op[1])[:, 1, :] *= op[2]
            elif kind == "U":
                v = psi.reshape(op[1])
                m = op[2]
                a, b = v[:, 0, :], v[:, 1, :]
                t, u = self._scratch(a.shape)
                np.multiply(a, m[0, 0], out=t)
                np.multiply(b, m[0, 1], out=u)
                t += u
                np.multiply(a, m[1, 0], out=u)
                b *= m[1, 1]
                b += u
                a[...] = t
            elif kind == "ACT":
                a0, a1 = _amplitudes(labels.pop(op[1]))
                shape = op[2]
                flat = psi.reshape(shape[0], shape[2])
                psi = np.empty(2 * psi.size, self.dtype)
                v = psi.reshape(shape)
                np.multiply(flat, a0, out=v[:, 0, :])
                np.multiply(flat, a1, out=v[:, 1, :])
            elif kind == "P":
                # project onto outcome 0 and drop the qubit, now in the known state `basis`
                _, q, shape, basis, m = op
                v = psi.reshape(shape)
                kept = v[:, 0, :] if basis == "0" else (v[:, 0, :] + v[:, 1, :]) * _SQRT_HALF
                psi = np.ascontiguousarray(kept).reshape(-1)  # every op reshapes psi in place: keep it contiguous
                labels[q] = basis
                after = _norm2(psi)
                if after < REJECT_BELOW:
                    lost[m] += norm2
                    return None, i
                lost[m] += norm2 - after
                norm2 = after
            elif kind == "PI" and not isinstance(labels[op[1]], str):
                _, q, basis, m = op
                a0, a1 = labels[q]
                keep = a0 if basis == "0" else (a0 + a1) * _SQRT_HALF
                labels[q] = basis
                kept = abs(keep) ** 2
                if kept < REJECT_BELOW:
                    lost[m] += norm2
                    return None, i
                psi = psi * keep
                lost[m] += norm2 * (1 - kept)
                norm2 *= kept
            elif kind == "L":  # a one-qubit gate on an inactive qubit: a new product state
                _, q, u = op
                a0, a1 = _amplitudes(labels[q])
                labels[q] = (u[0, 0] * a0 + u[0, 1] * a1, u[1, 0] * a0 + u[1, 1] * a1)
            elif kind == "PI":
                _, q, basis, m = op
                keep = _OVERLAP[basis][labels[q]]
                labels[q] = basis
                if keep != 1.0:
                    if keep == 0.0:
                        lost[m] += norm2
                        return None, i
                    psi = psi * keep
                    lost[m] += norm2 * (1 - keep * keep)
                    norm2 *= keep * keep
            elif kind == "RI":
                labels[op[1]] = op[2]
            elif kind == "R":
                psi, norm2 = self._reset(psi, labels, op, i, stack)
                if psi is None:
                    return None, i
            elif kind in ("X", "Z"):
                psi = self._pauli(psi, op[1], kind)
            else:  # pragma: no cover - _compile emits nothing else
                raise AssertionError(op)
        return psi, i

    @staticmethod
    def _fused_kernel(op: tuple, psi: np.ndarray, out: np.ndarray) -> None:
        """A fused unitary (see `_flush`), from psi into out."""
        kind = op[0]
        if kind == "V":
            _, shape, m, kron = op
            a, _, c = shape
            if kron is None:
                np.matmul(m, psi.reshape(shape), out=out.reshape(shape))
            else:
                np.matmul(psi.reshape(a, 2 * c), kron, out=out.reshape(a, 2 * c))
        elif kind == "E":
            _, a, width, mt = op
            np.matmul(psi.reshape(a, width), mt, out=out.reshape(a, width))
        elif kind == "W":
            _, shape, perm, us, krons = op
            a, _, b, _, c = shape
            if krons is None:
                v, o = psi.reshape(shape), out.reshape(shape)
                for x in (0, 1):
                    np.matmul(us[x], v[:, x], out=o[:, x ^ perm])
            else:
                v, o = psi.reshape(a, 2, b, 2 * c), out.reshape(a, 2, b, 2 * c)
                for x in (0, 1):
                    np.matmul(v[:, x], krons[x], out=o[:, x ^ perm])
        else:  # "G": any 4x4, quarter by quarter
            _, shape, m = op
            v, o = psi.reshape(shape), out.reshape(shape)
            for i in range(4):
                dst = o[:, i >> 1, :, i & 1, :]
                dst[...] = 0
                for j in np.flatnonzero(m[i]):
                    dst += m[i, j] * v[:, j >> 1, :, j & 1, :]

    def _reset(self, psi, labels, op, i, stack) -> tuple[np.ndarray | None, float]:
        """Reset an active qubit and drop it. A reset is a channel, not a unitary: split the state along
        the eigenbasis of the qubit's reduced density matrix; each part is a branch of the mixture. A
        qubit in a product state (always so without faults) gives one branch."""
        _, q, shape, basis = op
        v = psi.reshape(shape)
        labels[q] = basis
        w1 = _norm2(v[:, 1, :])
        if w1 < REJECT_BELOW:  # already |0> up to rounding: the common case, kept cheap
            part = np.ascontiguousarray(v[:, 0, :]).reshape(-1)
            return part, _norm2(part)
        halves = (v[:, 0, :], v[:, 1, :])
        rho = np.array([[np.einsum("ij,ij->", np.conj(y), x) for y in halves] for x in halves])
        weights, vectors = np.linalg.eigh(rho)
        parts = []
        for k in (1, 0):  # the larger weight continues in place
            if weights[k] >= REJECT_BELOW:
                part = np.conj(vectors[0, k]) * halves[0] + np.conj(vectors[1, k]) * halves[1]
                parts.append((part.reshape(-1), _norm2(part)))
        for part, w in parts[1:]:
            stack.append((i, part, dict(labels), w))
        return parts[0] if parts else (None, 0.0)

    def checkpoints(self) -> dict[int, tuple[State, np.ndarray]]:
        """Noiseless (state, losses) before ops[i], at about 64 evenly spaced i: the prefix that every
        fault configuration shares up to its first fault."""
        if self._checkpoints is None:
            every = max(1, len(self.ops) // 64)
            state, lost = self.initial_state(), np.zeros(len(self.measurement_tags))
            saved = {}
            for i in range(0, len(self.ops), every):
                saved[i] = (state, lost)
                run = self.run(start=i, state=state, losses=lost, stop=i + every)
                (state,), lost = run.branches, run.losses
            self._checkpoints = saved
        return self._checkpoints

    def run_from_checkpoint(self, faults: dict[int, str]) -> Run:
        """`run(faults)`, starting from the last noiseless checkpoint before the first fault."""
        saved = self.checkpoints()
        first = min((self.locations[loc].op for loc in faults), default=len(self.ops))
        i = max(j for j in saved if j <= first)
        state, lost = saved[i]
        return self.run(faults, start=i, state=state, losses=lost)

    def _expand(self, state: State, qubits: list[int]) -> np.ndarray:
        """The state on `qubits` (one axis each, in that order), the inactive ones among them tensored
        in from their labels. Every active qubit must be in `qubits`."""
        active = self.final_active if state.psi.size == 1 << len(self.final_active) else None
        if active is None:
            raise CtrlError("only a state at the end of the program can be expanded")
        stray = [q for q in active if q not in qubits]
        if stray:
            raise CtrlError(f"qubits {stray} are still active at the end (never measured): they cannot be traced out")
        t = state.psi.reshape((2,) * len(active))
        axes = list(active)
        for q in qubits:
            if q not in active:
                t = np.multiply.outer(t, np.array(_amplitudes(state.labels[q]), dtype=self.dtype))
                axes.append(q)
        return t.transpose([axes.index(q) for q in qubits])

    def amplitudes(self, state: State) -> np.ndarray:
        """The final state of every qubit in Stim's little-endian order (qubit q = bit q of the index)."""
        return self._expand(state, list(range(self.n - 1, -1, -1))).reshape(-1)

    def output(self, state: State, data: tuple[int, ...]) -> np.ndarray:
        """The final state of the data qubits (bit j of the index = qubit data[j]); every other qubit is
        measured, in a product state, and left out. Unnormalised, like the state."""
        return np.ascontiguousarray(self._expand(state, list(reversed(data)))).reshape(-1)


# ---- the ideal round ----------------------------------------------------------------------------------


def _apply_pauli(vec: np.ndarray, xs: tuple[int, ...] = (), zs: tuple[int, ...] = ()) -> np.ndarray:
    """X on `xs` times Z on `zs` (Z acts first) applied to a state of the data qubits (bit j = qubit j)."""
    idx = np.arange(vec.size)
    parity = np.zeros(vec.size, dtype=np.int64)
    for q in zs:
        parity ^= (idx >> q) & 1
    out = np.empty_like(vec)
    out[idx ^ sum(1 << q for q in xs)] = (1 - 2 * parity) * vec
    return out


def logical_h_state(code: ColorCode) -> np.ndarray:
    """|H>_L = cos(pi/8)|0_L> + sin(pi/8)|1_L> on the code's data qubits (bit j = data qubit j)."""
    zero = np.zeros(1 << code.n)
    zero[0] = 1
    for f in code.faces:
        zero = zero + _apply_pauli(zero, xs=f.qubits)
    zero /= math.sqrt(_norm2(zero))
    one = _apply_pauli(zero, xs=code.logical)
    return math.cos(math.pi / 8) * zero + math.sin(math.pi / 8) * one


def minimum_weight_corrections(code: ColorCode) -> dict[int, tuple[int, ...]]:
    """syndrome (bit f = face f) -> qubits of a least-weight error with that syndrome, for d = 3.

    The code is CSS and self-dual, so the same table corrects X errors from the Z faces and Z errors from
    the X faces. For d = 3 every syndrome has a correction of weight <= 1.
    """
    table: dict[int, tuple[int, ...]] = {0: ()}
    for q in range(code.n):
        table.setdefault(sum(1 << f for f in code.faces_of(q)), (q,))
    if len(table) != 1 << len(code.faces):
        raise CtrlError(f"distance {code.distance}: weight <= 1 corrections do not cover every syndrome")
    return table


@lru_cache(maxsize=4)
def _ideal_round_rows(code: ColorCode) -> np.ndarray:
    """Rows <H_L| C_s P_s for every ideal-round syndrome s = (X faces, Z faces): the squared norm of
    rows @ psi is the probability that psi, measured and corrected, is |H>_L. Everything here is real."""
    table = minimum_weight_corrections(code)
    target = logical_h_state(code)
    rows = []
    for sx in range(1 << len(code.faces)):
        for sz in range(1 << len(code.faces)):
            # X faces flag Z errors, Z faces flag X errors; (C_s)^T = Z^a X^b undoes C_s = X^b Z^a
            row = _apply_pauli(_apply_pauli(target, xs=table[sz]), zs=table[sx])
            for f in code.faces:  # P_s: the product of (1 +- S_f) / 2 over every face and type
                flip_x = -1 if sx >> f.index & 1 else 1
                flip_z = -1 if sz >> f.index & 1 else 1
                row = (row + flip_x * _apply_pauli(row, xs=f.qubits)) / 2
                row = (row + flip_z * _apply_pauli(row, zs=f.qubits)) / 2
            rows.append(row)
    return np.array(rows)


def score(code: ColorCode, output: np.ndarray) -> tuple[float, float]:
    """(acceptance, acceptance * logical error) of an unnormalised output state of the data qubits."""
    acc = _norm2(output)
    good = _norm2(np.einsum("ij,j->i", _ideal_round_rows(code), output))
    return acc, max(0.0, acc - good)


# ---- fault configurations ---------------------------------------------------------------------------

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


def _map(fn, tasks: list, workers: int | None, done=None) -> list:
    """fn over tasks, in order, in `workers` processes (default: every CPU this process may use);
    `done()`, if given, is called as each result arrives (a progress bar)."""
    done = done or (lambda: None)
    workers = min(workers or len(os.sched_getaffinity(0)), len(tasks))
    if workers <= 1:
        return [_after(fn(t), done) for t in tasks]
    # forked workers inherit the registered targets and their checkpoints (see Target)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork") if "fork" in methods else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_one_blas_thread) as pool:
        return [_after(r, done) for r in pool.map(fn, tasks)]


def _after(result, done):
    done()
    return result


def _counter(progress, stage: str, total: int):
    """A `done` for `_map` that tells `progress(stage, done, total)`; None without `progress`."""
    if progress is None:
        return None
    progress(stage, 0, total)
    n = [0]

    def done() -> None:
        n[0] += 1
        progress(stage, n[0], total)

    return done


_SET_BLAS_THREADS = (
    "scipy_openblas_set_num_threads64_",  # numpy's wheels
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def _one_blas_thread() -> None:
    """Worker initializer: one BLAS thread per process. The fused kernels are matmuls, and workers that
    each start OpenBLAS's default thread per CPU oversubscribe the machine: single-fault runs of the
    compiled program went three times slower. Best effort: a BLAS this does not find keeps its threads."""
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SET_BLAS_THREADS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn(1)
                return


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


# ---- sampling -----------------------------------------------------------------------------------------

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
