"""Scoring, as the paper does: a noiseless ideal round measures every X and Z face; each syndrome s gets
the minimum-weight correction C_s; an accepted output psi (unnormalised, norm^2 = acceptance) is wrong with
probability 1 - sum_s |<H_L| C_s P_s psi>|^2 / ||psi||^2."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ctrl.codes.color import ColorCode
from ctrl.errors import CtrlError
from ctrl.sim.statevector.program import _norm2


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
