"""The fenced fast path of the state-vector simulator (`Program(..., fuse=True)`; the compiled program
runs this way): runs of unitaries on at most two qubits become one matrix product each, and a qubit stays
inactive through one-qubit gates. Everything here is about speed; the gate-by-gate `Compiler` is the
reference, and tests/test_exact_compiled.py checks that both run to the same state (random circuits over
every kernel, and the compiled program with faults).

Consecutive unitaries on at most two qubits, with nothing in between (not even a fault location), are one
operation: a pulse's virtual Zs and the pulse, the four gates of an ECR. Each fused operation is a matrix
product into a second array (numpy's matmul makes one pass where the gate-by-gate updates make six), with
a Kronecker-expanded matrix when the qubit's axis is too far down for matmul's small inner loops.
"""

from __future__ import annotations

import math

import numpy as np
import stim

from ctrl.sim.statevector.compiler import _ANGLE_TAG, _DIAGONAL_2, _H, _ROTATIONS, Compiler, _rx, _ry


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


class FusingCompiler(Compiler):
    """`Compiler` with fusion: a qubit becomes active at its first two-qubit gate (one-qubit gates before
    it turn its product state, op "L"), and unitaries accumulate in `_pending` until something else
    comes (`_flush`)."""

    def __init__(self, circuit: stim.Circuit, dtype: np.dtype) -> None:
        self._pending: tuple[tuple[int, ...], np.ndarray] | None = None  # unitary not yet emitted
        super().__init__(circuit, dtype)

    @staticmethod
    def _order(circuit: stim.Circuit) -> list[int]:
        return _control_first_order(circuit)

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


def fused_kernel(op: tuple, psi: np.ndarray, out: np.ndarray) -> None:
    """A fused unitary (see `FusingCompiler._flush`), from psi into out."""
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
