"""The exact check: the real protocol, R_y(+-pi/4) rotations and all, as a state vector (PROTOCOL.md section 4).

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
"""

from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

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


_ROTATIONS = {"RY_P4": _ry(math.pi / 4), "RY_M4": _ry(-math.pi / 4)}
_H = np.array([[1.0, 1.0], [1.0, -1.0]]) * _SQRT_HALF


@dataclass(frozen=True)
class Location:
    """One fault location: with `probability` one of `paulis` (uniformly) hits `qubits` at this point."""

    index: int
    op: int  # position in Program.ops of the noise op that applies it
    tick: int
    instruction: str  # the Stim instruction it comes from, restricted to these targets
    qubits: tuple[int, ...]
    paulis: tuple[str, ...]  # one letter per qubit
    probability: float


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

    Supported: QUBIT_COORDS, TICK, R, RX, H, X, Z, CX, CZ, I[RY_P4], I[RY_M4], M(p), MX(p), DETECTOR (one
    record each; every measurement in exactly one), X_ERROR, Y_ERROR, Z_ERROR, DEPOLARIZE1, DEPOLARIZE2.

    Only the active qubits are in the state vector: a qubit becomes active at its first gate after a
    reset (or the start) and inactive again when it is measured or reset, after which it is in a known
    product state (a fault there only relabels it). The protocol keeps most of its 16 qubits inactive
    most of the time, which makes a run two to three times cheaper. Which qubits are active depends only
    on the op index, so every layout is fixed at compile time.
    """

    def __init__(self, circuit: stim.Circuit, dtype: type = np.complex128) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.complex128), np.dtype(np.float64)):
            raise CtrlError(f"state-vector dtype must be complex128 or float64, got {self.dtype}")
        self.n = circuit.num_qubits
        if self.n > MAX_QUBITS:
            raise CtrlError(f"the state-vector simulator handles at most {MAX_QUBITS} qubits, got {self.n}")
        self.ops: list[tuple] = []
        self.locations: list[Location] = []
        self.measurement_tags: list[str] = []
        self._active: list[int] = []  # during compilation: the active qubits, sorted
        self._compile(circuit)
        self.final_active = tuple(self._active)
        self._checkpoints: dict[int, tuple[State, np.ndarray]] | None = None
        half = 1 << max(0, self.n - 1)
        self._buffers = (np.empty(half, self.dtype), np.empty(half, self.dtype))

    # ---- compilation ---------------------------------------------------------------------------------

    def _compile(self, circuit: stim.Circuit) -> None:
        tick = 0
        n_meas = 0
        detected: dict[int, str] = {}
        for inst in circuit.flattened():
            name, tag, args = inst.name, inst.tag, inst.gate_args_copy()
            targets = [t.value for t in inst.targets_copy()]
            if name in ("QUBIT_COORDS", "SHIFT_COORDS"):
                continue
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
            elif name in ("M", "MX"):
                basis = "0" if name == "M" else "+"
                flip = args[0] if args else 0.0
                if flip > 0:
                    pauli = "X" if name == "M" else "Z"
                    self._noise([(q,) for q in targets], (pauli,), flip, f"{name}({flip:g})", tick)
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
                    self._noise(groups, _NOISE[name], args[0], f"{name}({args[0]:g})", tick)
            else:
                raise CtrlError(f"exact simulation does not support the Stim instruction {inst}")
        missing = sorted(set(range(n_meas)) - set(detected))
        if missing:
            raise CtrlError(f"measurements {missing} are in no DETECTOR: exact simulation projects every one onto 0")
        self.measurement_tags = [detected[m] for m in range(n_meas)]

    # Active qubits are kept in increasing order, the most significant first: the data qubits, which
    # take every rotation, get long contiguous runs, which numpy needs to be fast.

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
            self._active.append(q)
            self._active.sort()
            self.ops.append(("ACT", q, self._shape1(q)))

    def _noise(self, groups: list[tuple[int, ...]], paulis: tuple[str, ...], p: float, text: str, tick: int) -> None:
        indices = []
        shapes = {}
        for qubits in groups:
            loc = Location(
                len(self.locations), len(self.ops), tick, f"{text} {' '.join(map(str, qubits))}",
                qubits, paulis, float(p),
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
                out.labels[q] = _RELABEL[letter][out.labels[q]]
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
        while i < stop:
            op = self.ops[i]
            i += 1
            kind = op[0]
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
                                labels[q] = _RELABEL[p][labels[q]]
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
                a0, a1 = _PRODUCT[labels.pop(op[1])]
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
                t = np.multiply.outer(t, np.array(_PRODUCT[state.labels[q]], dtype=self.dtype))
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


def evaluate(circuit: ProtocolCircuit, faults: dict[int, str]) -> Outcome:
    """Run the exact circuit with `faults` (location index -> one Pauli letter per qubit) and score it."""
    program = _program(circuit, _REFERENCE_P)
    return _scored(circuit, program, program.run_from_checkpoint(faults))


def _scored(circuit: ProtocolCircuit, program: Program, run: Run) -> Outcome:
    acc = err = 0.0
    for state in run.branches:
        a, e = score(circuit.code, program.output(state, circuit.data))
        acc += a
        err += e
    return Outcome(acc, err, run.losses, len(program.ops) if run.branches else run.rejected_at)


def _enumerate_chunk(args: tuple[ProtocolCircuit, int, int]) -> list[tuple[int, str, Outcome]]:
    """Every single fault at the noise ops in ops[lo:hi], continuing the noiseless state op by op."""
    circuit, lo, hi = args
    program = _program(circuit, _REFERENCE_P)
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
                        out.append((loc, pauli, _scored(circuit, program, run)))
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


def _map(fn, tasks: list, workers: int | None) -> list:
    """fn over tasks, in order, in `workers` processes (default: every CPU this process may use)."""
    workers = min(workers or len(os.sched_getaffinity(0)), len(tasks))
    if workers <= 1:
        return [fn(t) for t in tasks]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, tasks))


_SINGLE: dict[ProtocolCircuit, SingleFaults] = {}


def single_faults(circuit: ProtocolCircuit, workers: int | None = None) -> SingleFaults:
    """Every single fault, run exactly (once per circuit: it does not depend on p)."""
    if circuit not in _SINGLE:
        program = _program(circuit, _REFERENCE_P)
        program.checkpoints()  # before the workers fork, so they inherit it
        n_ops = len(program.ops)
        # Cut the op list into pieces of about equal work: a fault costs about the ops left after it.
        cost = np.zeros(n_ops)
        for loc in program.locations:
            cost[loc.op] += len(loc.paulis) * (n_ops - loc.op)
        cum = np.cumsum(cost)
        pieces = 16
        cuts = sorted({0, n_ops} | {int(np.searchsorted(cum, cum[-1] * k / pieces)) + 1 for k in range(1, pieces)})
        tasks = [(circuit, lo, hi) for lo, hi in zip(cuts, cuts[1:]) if lo < hi <= n_ops]
        rows = [r for chunk in _map(_enumerate_chunk, tasks, workers) for r in chunk]
        _SINGLE[circuit] = SingleFaults(
            locations=tuple(program.locations),
            location=np.array([r[0] for r in rows], dtype=np.int64),
            pauli=tuple(r[1] for r in rows),
            acceptance=np.array([r[2].acceptance for r in rows]),
            error=np.array([r[2].error for r in rows]),
            losses=np.array([r[2].losses for r in rows]).reshape(len(rows), len(program.measurement_tags)),
            rejected_at=np.array([r[2].rejected_at for r in rows], dtype=np.int64),
        )
    return _SINGLE[circuit]


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
    circuit: ProtocolCircuit, noise: UniformNoise, shots: int, seed: int, workers: int | None = None
) -> dict:
    """Acceptance and logical error of accepted attempts from the exact state vector (distance 3 only).

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
    program = _program(circuit, noise.p)
    locations = tuple(program.locations)
    model = _FaultModel.build(locations)
    k_dist = model.k_distribution
    singles = single_faults(circuit, workers) if locations else None
    if singles is not None:
        if [(l.op, l.qubits, l.paulis) for l in singles.locations] != [(l.op, l.qubits, l.paulis) for l in locations]:
            raise CtrlError("the fault locations at this noise strength differ from the enumerated ones")

    noiseless = evaluate(circuit, {})
    acc = k_dist[0] * noiseless.acceptance
    err = k_dist[0] * noiseless.error
    lost = k_dist[0] * noiseless.losses
    first_order = {"logical_error": 0.0, "rejection": 0.0}
    failures: list[dict] = []
    strata: list[_Stratum] = []
    simulated = 0
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E7]))
    if singles is not None:
        q = np.array([l.probability for l in locations])
        n_paulis = np.array([len(l.paulis) for l in locations])
        weight = (q / (1 - q) / n_paulis)[singles.location]
        w1 = weight / weight.sum()
        acc += k_dist[1] * float(w1 @ singles.acceptance)
        err += k_dist[1] * float(w1 @ singles.error)
        lost = lost + k_dist[1] * (w1 @ singles.losses)
        per_p = (q / noise.p / n_paulis)[singles.location]
        first_order = {
            "logical_error": float(per_p @ singles.error),
            "rejection": float(per_p @ (1 - singles.acceptance)),
        }
        failures = [
            describe(circuit, locations[singles.location[i]], singles.pauli[i]) | {"error": float(singles.error[i])}
            for i in singles.failures()
        ]
        strata, configs = _plan(rng, model, _Pairs(singles, weight), shots)
        todo = [i for i, f in enumerate(configs) if _decided(singles, f) is None]
        simulated = len(todo)
        chunks = [[configs[i] for i in todo[j : j + 32]] for j in range(0, len(todo), 32)]
        ran = iter(o for chunk in _map(_evaluate_chunk, [(circuit, c) for c in chunks], workers) for o in chunk)
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
    kinds = {c.name: c.kind for c in circuit.checks}
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
            "simulator": "state vector, float64, exact R_y(+-pi/4)",
            "fault_locations": len(locations),
            "single_fault_runs": 0 if singles is None else len(singles.pauli),
            "sampled_configurations": sum(s.runs for s in strata),
            "sampled_runs": simulated,  # the others were decided by their first fault's single run
            "single_fault_failures": failures,
            "first_order_rejection_coefficient": first_order["rejection"],
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
