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
from ctrl.noise.rules import NOISELESS, Channel, NoiseRule


@dataclass(frozen=True)
class UniformNoise:
    """The rules of `uniform:P` (module docstring) at the protocol's fault locations (`ProtocolNoise`).
    `uniform:0` has no channels at all."""

    p: float

    @property
    def name(self) -> str:
        return f"uniform:{self.p:g}"

    def prepare(self, gate: str) -> NoiseRule:
        # A flipped |H> is the orthogonal state Y|H>; Y also anticommutes with both proxies' logical.
        return self._after(_FLIPS[gate], 2 * self.p / 3)

    def gate(self, gate: str) -> NoiseRule:
        return self._after("DEPOLARIZE2" if gate in ("CX", "CZ") else "DEPOLARIZE1", self.p)

    def measure(self, gate: str) -> NoiseRule:
        return NoiseRule(flip_result=2 * self.p / 3)

    def idle(self) -> NoiseRule:
        return self._after("DEPOLARIZE1", self.p)

    def _after(self, channel: str, p: float) -> NoiseRule:
        return NoiseRule(after=(Channel(channel, (p,)),)) if self.p else NOISELESS


_FLIPS = {"R": "X_ERROR", "RX": "Z_ERROR", "RH": "Y_ERROR"}  # the Pauli that flips each prepared state


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
