"""Noise taken from a device's calibration, for the compiled (timed) program.

- a drive pulse: depolarizing with the probability that matches its error per gate r (the average gate
  infidelity of a one-qubit depolarizing channel of strength p is 2p/3, so p = 3r/2);
- a two-qubit gate: two-qubit depolarizing matched the same way (4p/5 = r, p = 5r/4);
- an idle gap of length t on a live qubit: amplitude and phase damping, Pauli-twirled:
  p_x = p_y = (1 - exp(-t/T1))/4, p_z = (1 - exp(-t/T2))/2 - p_x, with T2 the Ramsey time, or the
  Hahn-echo time for a gap inside a dynamical decoupling sequence (next to one of its pulses);
- static ZZ of strength zeta (Hz) between an idling qubit and a live neighbour: a Z error with the
  probability sin^2(pi zeta t / 2) over an idle of length t (the Pauli-twirled ZZ rotation's effect on
  the idling qubit; its correlation with the neighbour is dropped), composed with the T2 term. An echo
  refocuses it, so idles inside a dynamical decoupling sequence get none;
- a readout: its result flips with the probability of reading 1 from |0> (`error_0to1`), which is what
  decides how often a good attempt is thrown away; a missed |1> is modelled with the same probability
  (Stim has no state-dependent readout error), so `error_1to0` enters only through that approximation;
- the reset at the start of an attempt leaves |1> with the probability `error_1to0` of the measurement
  that active reset relies on.

`scale` multiplies every error rate and divides T1 and T2, for noise-scaling studies.

The model gives its numbers two ways: per calibrated quantity (`pulse`, `two_qubit`, `readout_flip`,
`reset_flip`, `idle`; `ctrl.emulate.budget` silences sources by overriding these) and as the rule of each
native operation (`DeviceNoise`, what the compiled lowering asks), built from the former. A gate, reset or
readout keeps its channel at probability 0, so a silenced source leaves the circuit's fault locations where
they were; an idle without decay has none.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ctrl.noise.rules import NOISELESS, Channel, NoiseRule

if TYPE_CHECKING:
    from ctrl.device import Device
    from ctrl.device.target import Target


@dataclass(frozen=True)
class CalibrationNoise:
    device: Device
    clock_hz: float
    scale: float = 1.0

    @property
    def name(self) -> str:
        return "calibration" if self.scale == 1 else f"calibration*{self.scale:g}"

    @property
    def target(self) -> Target:
        return self.device.target

    def check_program(self, program) -> None:
        self.target.check_program(program)

    def native_reset(self, qubit: str) -> NoiseRule:
        return NoiseRule(after=(Channel("X_ERROR", (self.reset_flip(qubit),)),))

    def native_gate(self, name: str, qubits: tuple[str, ...], angle: float) -> NoiseRule:
        if name == "VZ":  # a frame change: no pulse, no error
            return NOISELESS
        if len(qubits) == 2:
            return NoiseRule(after=(Channel("DEPOLARIZE2", (self.two_qubit(*qubits),)),))
        return NoiseRule(after=(Channel("DEPOLARIZE1", (self.pulse(qubits[0], angle),)),))

    def native_measure(self, qubit: str) -> NoiseRule:
        return NoiseRule(flip_result=self.readout_flip(qubit))

    def native_idle(self, qubit: str, cycles: int, echo: bool, live: Collection[str]) -> NoiseRule:
        px, py, pz = self.idle(qubit, cycles, echo, live)
        if px + py + pz > 0:
            return NoiseRule(after=(Channel("PAULI_CHANNEL_1", (px, py, pz), f"idle+{cycles}"),))
        return NOISELESS

    def pulse(self, qubit: str, angle: float) -> float:
        return min(0.75, 1.5 * self.target.qubit(qubit).pulse_error(angle) * self.scale)

    def two_qubit(self, a: str, b: str) -> float:
        return min(15 / 16, 1.25 * self.target.gate(a, b).error * self.scale)

    def readout_flip(self, qubit: str) -> float:
        return min(0.5, self.target.qubit(qubit).readout_error_0to1 * self.scale)

    def reset_flip(self, qubit: str) -> float:
        return min(0.5, self.target.qubit(qubit).readout_error_1to0 * self.scale)

    def idle(self, qubit: str, cycles: int, echo: bool = False, live: Collection[str] = frozenset()) -> tuple[float, float, float]:
        """Pauli-twirled T1/T2 decay over the idle; `echo`: the idle is part of an echo sequence, whose
        refocusing leaves the Hahn-echo rate T2E instead of T2* (a Markovian model has no other way to
        show what an echo does: twirled channels commute with the pulses); `live`: the qubits holding
        state meanwhile, whose static ZZ with this one dephases it."""
        q = self.target.qubit(qubit)
        t = cycles / self.clock_hz * self.scale
        px = (1 - math.exp(-t / q.t1_s)) / 4
        pz = max(0.0, (1 - math.exp(-t / q.t2_s(echo))) / 2 - px)
        if not echo:
            for other, zz_hz in q.zz_neighbours:
                if other in live:
                    flip = min(0.5, math.sin(math.pi * zz_hz * t / 2) ** 2)
                    pz = pz + flip - 2 * pz * flip
        return (px, px, pz)
