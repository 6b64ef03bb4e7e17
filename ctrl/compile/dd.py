"""Dynamical decoupling: echo pulses in the long idles of a scheduled program, without moving anything.

A padding pass, as Qiskit's `PadDynamicalDecoupling` is: it runs after the schedule and only fills gaps,
so every start time, every readout and every decision point stays where the scheduler put it.

Which gaps: the idle between two operations on one qubit while the qubit carries a state. Not before a
qubit's first operation, not after a measurement or a preparation (the qubit is in |0>, where an echo
only trades dephasing it does not suffer for a spell in |1>, where it decays), not after the last one.

A sequence (`SEQUENCES`) is a list of pi pulses whose product is the identity up to a phase: "xx" (CPMG,
X X) or "xy4" (X Y X Y, which also refocuses pulse-amplitude errors to first order). Its n pulses sit
at the centres of n equal slices of the gap (the usual spacing: half an interval at either end). A gap
takes a sequence only if the pulses fill at most half of it, and only if the qubit's drive channels are
free at those times (a drive line shared with another qubit may be busy); otherwise it stays empty.

The pulses are the qubit's x180 pulse with tag `DD_TAG` and no protocol source: identities of the
protocol, so the paper's uniform noise model skips them; the calibration noise model gives each its
pulse error, and gaps next to them dephase at the echo rate (T2E) instead of the Ramsey rate (T2*).
The boards play them in the fixed frame (axis 0 or 90 degrees, whatever virtual Z the qubit has
collected): a sequence is the identity about any pair of orthogonal axes, and so a qubit's echo pulses
need two waveforms instead of one per frame. Lowered to Stim they are X and Y, which differ from the
played pulses only by a rotation about Z, under which every channel here (depolarizing, T1/T2 with
p_x = p_y) is the same channel.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

from ctrl.compile.natives import NativeOp
from ctrl.compile.timed import TimedOp
from ctrl.errors import CtrlError

DD_TAG = "dd"
SEQUENCES = {"xx": ("RX", "RX"), "xy4": ("RX", "RY", "RX", "RY")}
_QUIET = ("MEASURE", "PREP")  # after these the qubit is in |0>: nothing to protect


def is_dd(op: NativeOp) -> bool:
    return op.tag == DD_TAG


@dataclass(frozen=True)
class Padding:
    """What the pass did: the sequence, pulses added, gaps filled, and gaps long enough but left empty
    because a shared drive channel was busy."""

    sequence: str
    pulses: int
    gaps_filled: int
    gaps_blocked: int
    idle_covered_cycles: int

    def report(self, clock_hz: float) -> dict:
        return {"sequence": self.sequence, "pulses": self.pulses, "gaps_filled": self.gaps_filled,
                "gaps_left_empty_drive_busy": self.gaps_blocked,
                "idle_covered_s": round(self.idle_covered_cycles / clock_hz, 12)}  # fmt: skip


def check_sequence(sequence: str | None) -> None:
    if sequence is not None and sequence not in SEQUENCES:
        raise CtrlError(f"unknown dynamical decoupling sequence {sequence!r}: expected one of {sorted(SEQUENCES)}")


def pad(timed: list[TimedOp], sequence: str, pi_pulse) -> tuple[list[TimedOp], Padding]:
    """`timed` in time order with `sequence`'s pulses added; `pi_pulse(qubit)` gives the (duration in
    cycles, channels) of the qubit's x180 pulse."""
    check_sequence(sequence)
    names = SEQUENCES[sequence]
    n = len(names)
    busy: dict[str, list[tuple[int, int]]] = {}
    for t in timed:
        if t.duration:
            for c in t.channels:
                busy.setdefault(c, []).append((t.start, t.start + t.duration))
    for intervals in busy.values():
        intervals.sort()
    previous: dict[str, TimedOp] = {}
    added: list[TimedOp] = []
    filled = blocked = covered = 0
    for t in timed:
        for q in t.op.qubits:
            before = previous.get(q)
            previous[q] = t
            if before is None or before.op.name in _QUIET:
                continue
            g0, g1 = before.start + before.duration, t.start
            duration, channels = pi_pulse(q)
            if g1 - g0 < 2 * n * duration:
                continue
            slots = [g0 + (g1 - g0) * (2 * k + 1) // (2 * n) - duration // 2 for k in range(n)]
            if any(_overlaps(busy.get(c, ()), s, s + duration) for s in slots for c in channels):
                blocked += 1
                continue
            for s, name in zip(slots, names):
                op = NativeOp(name, (q,), DD_TAG, math.pi, (math.pi, math.pi))
                added.append(TimedOp(op, s, duration, channels))
                for c in channels:
                    intervals = busy.setdefault(c, [])
                    intervals.insert(bisect_left(intervals, (s, s + duration)), (s, s + duration))
            filled += 1
            covered += g1 - g0
    # Stable: at equal starts the scheduled ops keep their order and come first.
    ops = sorted(timed + added, key=lambda t: t.start)
    return ops, Padding(sequence, len(added), filled, blocked, covered)


def _overlaps(intervals, start: int, end: int) -> bool:
    k = bisect_left(intervals, (start, start))
    if k and intervals[k - 1][1] > start:
        return True
    return k < len(intervals) and intervals[k][0] < end
