"""A Stim circuit compiled gate by gate into the state-vector operations that `Program` runs, and its
fault locations (`Location`). This is the reference path: `fused.py` compiles the same circuit into fewer,
fused operations and tests/test_exact_compiled.py checks that both run to the same state.

Only the active qubits are in the state vector (see `Program`): the compiler tracks which they are op by
op, so every op carries the shape that exposes its qubits' axes in the layout of that moment.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from dataclasses import dataclass

import numpy as np
import stim

from ctrl.errors import CtrlError

_SQRT_HALF = math.sqrt(0.5)
_PAULIS_2 = tuple(a + b for a, b in itertools.product("IXYZ", repeat=2) if a + b != "II")
_NOISE = {
    "X_ERROR": ("X",),
    "Y_ERROR": ("Y",),
    "Z_ERROR": ("Z",),
    "DEPOLARIZE1": ("X", "Y", "Z"),
    "DEPOLARIZE2": _PAULIS_2,
}


def _ry(theta: float) -> np.ndarray:
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -s], [s, c]])


def _rx(theta: float) -> np.ndarray:
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array([[c, -1j * s], [-1j * s, c]])


_ROTATIONS = {"RY_P4": _ry(math.pi / 4), "RY_M4": _ry(-math.pi / 4)}
_ANGLE_TAG = re.compile(r"(RX|RY|RZ):([^;]+)(?:;.*)?", re.S)
_H = np.array([[1.0, 1.0], [1.0, -1.0]]) * _SQRT_HALF
_Y = np.array([[0.0, -1.0], [1.0, 0.0]])  # Y up to its global phase i: real, so it runs in float64 too
# Diagonal two-qubit gates by their phases on |01>, |10>, |11> (relative to |00>; all three are symmetric).
_DIAGONAL_2 = {
    name: tuple(complex(np.diag(stim.gate_data(name).unitary_matrix)[i]) for i in (1, 2, 3))
    for name in ("SQRT_ZZ", "SQRT_ZZ_DAG")
}


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


class Compiler:
    """Compiles `circuit` into `ops`, `locations` and `measurement_tags` for a Program, one op per gate;
    `final_active` are the qubits still active at the end. Subclassed by `FusingCompiler` (fused.py),
    which overrides `_fused`, `_flush` and `_order`."""

    def __init__(self, circuit: stim.Circuit, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.ops: list[tuple] = []
        self.locations: list[Location] = []
        self.measurement_tags: list[str] = []
        self._active: list[int] = []  # the active qubits, sorted by rank
        self._rank = self._order(circuit)
        self._compile(circuit)
        self.final_active = tuple(self._active)

    @staticmethod
    def _order(circuit: stim.Circuit) -> list[int]:
        """rank[q]: where qubit q's axis goes among the active qubits (only speed depends on it)."""
        return list(range(circuit.num_qubits))

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
            if self._fused(name, tag, targets):
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
            elif name in ("H", "X", "Y", "Z"):  # Y: an echo pulse of xy4 decoupling
                for q in targets:
                    self._activate(q)
                    if name in ("H", "Y"):
                        self.ops.append(("U", self._shape1(q), _H if name == "H" else _Y))
                    else:
                        self.ops.append((name, self._shape1(q)))
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

    def _fused(self, name: str, tag: str, targets: list[int]) -> bool:
        """Gate by gate, no instruction is taken into a fused operation."""
        return False

    def _flush(self) -> None:
        """Gate by gate, nothing is pending."""

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
