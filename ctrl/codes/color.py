"""Geometry and algebra of the triangular 6.6.6 color code at any odd distance.

Sites of a triangular lattice with integer coordinates (a, b), a, b >= 0, a + b <= 3(d-1)/2, are either
face centres ((a - b) % 3 == 1) or data qubits. Each face is the set of data qubits around a centre
(six inside the patch, four on its boundary). The code is self-dual: every face carries one X-type and
one Z-type stabilizer, so H on every data qubit is the logical Hadamard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ctrl.errors import CtrlError

COLORS = ("red", "green", "blue")
_NEIGHBOURS = ((1, 0), (0, 1), (-1, 1), (-1, 0), (0, -1), (1, -1))  # counter-clockwise


@dataclass(frozen=True)
class Face:
    """One plaquette: its data qubits in counter-clockwise order around the centre."""

    index: int
    color: str
    qubits: tuple[int, ...]
    center: tuple[float, float]

    def __repr__(self) -> str:
        return f"Face({self.index}, {self.color}, qubits={self.qubits})"


@dataclass(frozen=True)
class ColorCode:
    """The [[n, 1, d]] triangular color code. `logical` is a weight-d support of both X_L and Z_L."""

    distance: int
    coords: tuple[tuple[float, float], ...]
    faces: tuple[Face, ...]
    logical: tuple[int, ...]
    sides: tuple[tuple[int, ...], ...]  # the three boundaries: each a weight-d logical support

    def __repr__(self) -> str:
        return f"ColorCode(d={self.distance}, n={self.n}, faces={len(self.faces)})"

    @property
    def n(self) -> int:
        return len(self.coords)

    @cached_property
    def check_matrix(self) -> np.ndarray:
        """faces x qubits incidence over GF(2): both the X- and the Z-type stabilizers."""
        h = np.zeros((len(self.faces), self.n), dtype=np.uint8)
        for f in self.faces:
            h[f.index, list(f.qubits)] = 1
        return h

    @cached_property
    def logical_vector(self) -> np.ndarray:
        v = np.zeros(self.n, dtype=np.uint8)
        v[list(self.logical)] = 1
        return v

    def faces_of(self, qubit: int) -> tuple[int, ...]:
        return tuple(f.index for f in self.faces if qubit in f.qubits)


MAX_DISTANCE = 15  # 481 qubits; building d=15 takes tens of seconds, and no device holds more


def check_distance(distance: object) -> int:
    """The distance as an int, or a CtrlError saying why it is not a valid one."""
    if isinstance(distance, bool) or not isinstance(distance, int):
        raise CtrlError(f"distance must be an odd integer from 3 to {MAX_DISTANCE}, got {distance!r}")
    if not 3 <= distance <= MAX_DISTANCE or distance % 2 == 0:
        raise CtrlError(f"distance must be an odd integer from 3 to {MAX_DISTANCE}, got {distance}")
    return distance


def color_code(distance: int) -> ColorCode:
    d = check_distance(distance)
    side = 3 * (d - 1) // 2
    sites = [(a, b) for b in range(side + 1) for a in range(side + 1 - b)]
    data_sites = [s for s in sites if (s[0] - s[1]) % 3 != 1]
    index = {s: i for i, s in enumerate(data_sites)}
    faces = []
    for b in range(-1, side + 2):
        for a in range(-1, side + 2):
            if (a - b) % 3 != 1:
                continue
            ring = [(a + da, b + db) for da, db in _NEIGHBOURS if (a + da, b + db) in index]
            if len(ring) < 4:
                continue
            faces.append(
                Face(
                    index=len(faces),
                    color=COLORS[a % 3],
                    qubits=tuple(index[s] for s in ring),
                    center=_xy(a, b),
                )
            )
    sides = (
        tuple(index[s] for s in data_sites if s[1] == 0),
        tuple(index[s] for s in data_sites if s[0] == 0),
        tuple(index[s] for s in data_sites if s[0] + s[1] == side),
    )
    return ColorCode(
        distance=d,
        coords=tuple(_xy(*s) for s in data_sites),
        faces=tuple(faces),
        logical=sides[0],
        sides=sides,
    )


def _xy(a: float, b: float) -> tuple[float, float]:
    return (round(a + b / 2, 6), round(b * math.sqrt(3) / 2, 6))
