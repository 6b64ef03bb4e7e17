"""Noise as rules per operation, and the one place a rule becomes Stim instructions.

A lowering walks its operations and asks the noise model for each one's `NoiseRule`: the Pauli channels
just before and just after it, on its targets, and for a measurement the probability that its result is
reported flipped (the shape of stimflow's `NoiseRule`). The lowering decides where an operation is in the
circuit; the rule decides what noise it carries; `NoiseRule.append_before`, `append_after` and
`measure_args` write it. So `ctrl.sim.lower` (the protocol IR) and `ctrl.backends.stim` (the compiled
program) place the same model's noise the same way.

Models describe one of two kinds of fault location:

- `ProtocolNoise`: the protocol's operations and time steps (the paper's `uniform:P`). The protocol
  lowering asks for every operation; the compiled lowering asks for the protocol operations each native op
  realises (`NativeOp.source`), so the compiled program has the protocol's fault locations.
- `DeviceNoise`: the compiled program's native operations and the idle gaps between them (calibration
  noise). It needs a device, hence a compiled program: the protocol lowering refuses it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import stim

from ctrl.errors import CtrlError


@dataclass(frozen=True)
class Channel:
    """One Stim noise instruction, without its targets: DEPOLARIZE1(p), PAULI_CHANNEL_1(px, py, pz), ..."""

    name: str
    args: tuple[float, ...]
    tag: str = ""

    def __repr__(self) -> str:
        args = ", ".join(f"{a:g}" for a in self.args)
        return f"{self.name}({args})" + (f"[{self.tag}]" if self.tag else "")


@dataclass(frozen=True)
class NoiseRule:
    """The noise of one operation: channels on its targets just before and just after it, and for a
    measurement the probability that its result is reported flipped."""

    before: tuple[Channel, ...] = ()
    after: tuple[Channel, ...] = ()
    flip_result: float = 0.0

    def __repr__(self) -> str:
        parts = [f"before={list(self.before)}"] if self.before else []
        parts += [f"after={list(self.after)}"] if self.after else []
        parts += [f"flip_result={self.flip_result:g}"] if self.flip_result else []
        return f"NoiseRule({', '.join(parts)})"

    def append_before(self, out: stim.Circuit, targets: list[int]) -> None:
        _append(out, self.before, targets)

    def append_after(self, out: stim.Circuit, targets: list[int]) -> None:
        _append(out, self.after, targets)

    def append_both(self, out: stim.Circuit, targets: list[int]) -> None:
        """For an operation without an instruction of its own (an idle): its channels before, then after."""
        _append(out, self.before + self.after, targets)

    @property
    def measure_args(self) -> list[float]:
        """The measurement instruction's arguments ("M(p)"; a plain "M" when it never flips)."""
        return [self.flip_result] if self.flip_result else []


NOISELESS = NoiseRule()


def _append(out: stim.Circuit, channels: tuple[Channel, ...], targets: list[int]) -> None:
    if not targets:  # Stim would keep an instruction without targets
        return
    for c in channels:
        out.append(stim.CircuitInstruction(c.name, targets, list(c.args), tag=c.tag))


@runtime_checkable
class ProtocolNoise(Protocol):
    """Noise at the protocol's fault locations; gates are named as in the protocol IR."""

    name: str

    def prepare(self, gate: str) -> NoiseRule:
        """A qubit's first preparation in an attempt, a reset: R, RX or RH. The channels after it are
        stated on the prepared state."""

    def gate(self, gate: str) -> NoiseRule:
        """RY_P4, RY_M4, CX, CZ, or RX / RH of a qubit already in |0> (a gate, not a reset)."""

    def measure(self, gate: str) -> NoiseRule:
        """M or MX."""

    def idle(self) -> NoiseRule:
        """A live qubit that does nothing for one protocol time step."""


@runtime_checkable
class DeviceNoise(Protocol):
    """Noise at the compiled program's native operations; qubits are device qubit names."""

    name: str

    def check_program(self, program) -> None:
        """Raise `CtrlError` if the program was compiled for other numbers than the model's."""

    def native_reset(self, qubit: str) -> NoiseRule:
        """The reset that starts an attempt."""

    def native_gate(self, name: str, qubits: tuple[str, ...], angle: float) -> NoiseRule:
        """A native gate: RX, RY, VZ (a frame change), CZ, ECR."""

    def native_measure(self, qubit: str) -> NoiseRule: ...

    def native_idle(self, qubit: str, cycles: int, echo: bool, live: Collection[str]) -> NoiseRule:
        """A gap of `cycles` in a live qubit's timeline; `echo`: next to a dynamical decoupling pulse;
        `live`: the device qubits holding state meanwhile."""


def merge_depolarizing(rules: Iterable[NoiseRule], tag: str) -> NoiseRule:
    """One rule for one-qubit depolarizing rules applied in turn: DEPOLARIZE1(p) shrinks the Bloch vector
    by 1 - 4p/3, so the merged strength is 3/4 (1 - product of the shrinks). Equal strengths are raised to
    their count, so k equal rules give exactly 3/4 (1 - (1 - 4p/3)^k). Only these channels commute with
    every one-qubit unitary, which is what allows a lowering to move them past pulses and merge them."""
    strengths = []
    for r in rules:
        if r.before or r.flip_result or any(c.name != "DEPOLARIZE1" for c in r.after):
            raise CtrlError(f"{r!r} is not one-qubit depolarizing: it cannot be moved past the pulses")
        strengths += [c.args[0] for c in r.after]
    if not strengths:
        return NOISELESS
    shrink = math.prod((1 - 4 * p / 3) ** n for p, n in sorted(Counter(strengths).items()))
    return NoiseRule(after=(Channel("DEPOLARIZE1", (0.75 * (1 - shrink),), tag),))
