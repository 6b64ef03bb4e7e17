"""Named noise models. `uniform:P` is the standard circuit-level model of the magic-state literature:

- after every two-qubit gate, one of the 15 non-identity two-qubit Paulis, total probability P;
- after every single-qubit gate, and on every live qubit that idles for a time step, X, Y or Z, total P;
- every preparation and every measurement result flips with probability 2P/3.

A qubit is live from its preparation until its measurement (data qubits: until the end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ctrl.errors import CtrlError


@dataclass(frozen=True)
class UniformNoise:
    p: float

    @property
    def name(self) -> str:
        return f"uniform:{self.p:g}"

    @property
    def gate1(self) -> float:
        return self.p

    @property
    def gate2(self) -> float:
        return self.p

    @property
    def idle(self) -> float:
        return self.p

    @property
    def flip(self) -> float:
        return 2 * self.p / 3


def parse_noise(spec: str) -> UniformNoise:
    """`uniform:P` with 0 <= P <= 0.5."""
    kind, sep, value = str(spec).partition(":")
    if kind != "uniform" or not sep:
        raise CtrlError(f"unknown noise model {spec!r}: expected uniform:P, for example uniform:0.001")
    try:
        p = float(value)
    except ValueError:
        raise CtrlError(f"noise {spec!r}: P must be a number, got {value!r}") from None
    if not math.isfinite(p) or not 0 <= p <= 0.5:
        raise CtrlError(f"noise {spec!r}: P must be in [0, 0.5], got {value}")
    return UniformNoise(p)
