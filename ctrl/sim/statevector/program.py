"""Runs the ops of a compiled Stim circuit on a state vector with an explicit set of Pauli faults, one per
chosen fault location (docs/protocol.md, "How it is simulated").

Every measurement is a check that must read 0, so a measurement is a projection onto outcome 0 and the
squared norm that survives is the probability that the attempt is accepted. A measurement flip is a fault
location of its own, run as an X before the M (a Z before the MX): the accepted branch is the same, and
the qubit is re-prepared before it is used again. A just-measured qubit is in a known product state, so
its reset only moves amplitude; a reset of a qubit that was never measured (the encoder's ancillas) is the
real channel: one branch when the qubit is in a product state, as it is without faults, a mixture of two
branches when faults left it entangled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import stim

from ctrl.errors import CtrlError
from ctrl.sim.statevector.compiler import _SQRT_HALF, Compiler, Location, _structure
from ctrl.sim.statevector.fused import FusingCompiler, fused_kernel

# A branch whose acceptance probability falls below this is dropped as rejected: a check that a fault
# makes fail with certainty leaves ~1e-32 of rounding, and nothing that small moves any reported figure.
REJECT_BELOW = 1e-20
MAX_QUBITS = 20


def _norm2(psi: np.ndarray) -> float:
    """Squared norm without BLAS: np.vdot's threads stall for milliseconds on a busy machine."""
    f = psi.view(np.float64)
    axes = "abcdefgh"[: f.ndim]
    return float(np.einsum(f"{axes},{axes}->", f, f))


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
    fused.py). The compiled program's runs get four times cheaper; the figures agree with the unfused
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
        compiled = (FusingCompiler if fuse else Compiler)(circuit, self.dtype)
        self.ops: list[tuple] = compiled.ops
        self.locations: list[Location] = compiled.locations
        self.measurement_tags: list[str] = compiled.measurement_tags
        self.structure = _structure(circuit, self.dtype) + (":fused" if fuse else "")
        self.final_active = compiled.final_active
        self._checkpoints: dict[int, tuple[State, np.ndarray]] | None = None
        half = 1 << max(0, self.n - 1)
        self._buffers = (np.empty(half, self.dtype), np.empty(half, self.dtype))

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
                fused_kernel(op, psi, out)
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
            else:  # pragma: no cover - the compilers emit nothing else
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
