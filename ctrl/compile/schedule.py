"""Scheduling native operations in time, in integer cycles of the controller's timing clock.

Three steps, as in Qiskit's scheduling passes: durations from the calibration rounded up to whole
cycles (alignment to the clock grid); start times by list scheduling in program order; then the
decision points from the readout times and the controller's latency.

Constraints honoured:
- one operation per qubit at a time, in program order per qubit;
- a generator plays one pulse at a time (drive lines shared by several qubits, flux lines);
- readouts on one multiplexed generator fire together (same start, same length) or not overlap at all;
- couplers in one crosstalk-exclusion group never run together;
- a readout occupies its qubit for the pulse and the window, then the resonator rings down before
  the qubit's next operation;
- every check is decided no earlier than its last result plus the readout-to-decision latency.

`policy="asap"` starts everything as early as possible; `"alap"` schedules the reversed program as
early as possible and mirrors it, so qubits are prepared as late as they can be (less idling).

Readouts on a multiplexed generator are held until their readout group can fire as one block. Held
groups can end up waiting on one another (a member sits behind another group's held readout): asap
then fires the group that can start first, without its late members, as soon as that happens
(`early`); alap keeps the older rule, firing such groups only once nothing else can proceed, which
measured shorter in the mirrored direction (grid55, d=5: 1.038 of the critical path against 1.054).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import add, attrgetter
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from ctrl.compile.listschedule import list_schedule
from ctrl.compile.natives import HALF_PI, NativeCircuit
from ctrl.compile.timed import TimedOp
from ctrl.errors import CtrlError

if TYPE_CHECKING:
    from ctrl.device import Device
    from ctrl.device.target import Target

MUX = "mux"


@dataclass(frozen=True)
class Need:
    """What one native op needs: duration, channels it holds exclusively, a mux group it may share."""

    duration: int
    exclusive: tuple[str, ...]
    mux: str = ""  # a multiplexed readout generator: share its start or stay out of its way
    ready: int = -1  # MEASURE: cycles from start to the end of the window
    tail: int = 0  # cycles the qubit stays busy after the op (resonator ring-down)

    @property
    def channels(self) -> tuple[str, ...]:
        return self.exclusive + ((self.mux,) if self.mux else ())


_NOTHING = Need(0, ())


class _Needs:
    """`needs` for one device and clock: each distinct (op kind, qubits) looked up once in the device's
    Target and turned into cycles; a program repeats the same few hundred of them."""

    def __init__(self, target: Target, clock_hz: float) -> None:
        self.target = target
        self.clock_hz = clock_hz
        self.cache: dict[tuple, Need] = {}

    def need(self, name: str, qubits: tuple[str, ...], angle: float) -> Need:
        if name == "PREP" or name == "VZ":
            return _NOTHING
        if name == "RX" or name == "RY":
            key: tuple = (qubits, abs(angle) <= HALF_PI + 1e-9)
        else:
            key = (name, qubits)
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = self._compute(name, qubits, angle)
        return found

    def _cyc(self, seconds: float) -> int:
        return max(0, math.ceil(seconds * self.clock_hz - 1e-6))

    def _compute(self, name: str, qubits: tuple[str, ...], angle: float) -> Need:
        target = self.target
        if name in ("RX", "RY"):
            q = target.qubit(qubits[0])
            return Need(self._cyc(q.pulse_s(angle)), (target.drive_channel(q.name),))
        if name in ("CZ", "ECR"):
            a, b = qubits
            gate = target.gate(a, b)
            if name == "CZ":
                chans = [target.flux_channel(a, b)]
            else:
                chans = [target.drive_channel(gate.control)]
                if gate.cancellation:
                    chans.append(target.drive_channel(b if gate.control == a else a))
            chans += target.exclusions.get(frozenset((a, b)), ())
            return Need(self._cyc(gate.duration_s), tuple(sorted(set(chans))))
        if name == "MEASURE":
            q = target.qubit(qubits[0])
            exclusive, mux = target.readout_channels(q.name)
            return Need(
                self._cyc(q.readout_busy_s), exclusive, mux=mux, ready=self._cyc(q.readout_window_end_s),
                tail=self._cyc(q.readout_ringdown_s),
            )  # fmt: skip
        raise CtrlError(f"cannot schedule native op {name}")


_NEEDS: WeakKeyDictionary = WeakKeyDictionary()


def _needs_of(device: Device, clock_hz: float) -> _Needs:
    """The `_Needs` of a loaded device and clock, kept as long as the device is: a Device is immutable
    (as its own cached lookups assume), and working out a program's few hundred op kinds from its
    pydantic models again on every compile was a tenth of a d=5 schedule."""
    per_clock = _NEEDS.get(device)
    if per_clock is None:
        per_clock = _NEEDS[device] = {}
    found = per_clock.get(clock_hz)
    if found is None:
        found = per_clock[clock_hz] = _Needs(device.target, clock_hz)
    return found


def pi_pulses(device: Device, clock_hz: float):
    """qubit -> (cycles, channels) of its x180 pulse: what a padding pass (`ctrl.compile.dd`) places."""
    lookup = _needs_of(device, clock_hz)

    def pi_pulse(qubit: str) -> tuple[int, tuple[str, ...]]:
        need = lookup.need("RX", (qubit,), math.pi)
        return need.duration, need.channels

    return pi_pulse


def schedule(
    native: NativeCircuit, device, clock_hz: float, policy: str = "asap", channels: bool = True
) -> list[TimedOp]:
    """Start times for every op. `channels=False` drops every channel constraint (generators, readout
    inputs, mux, crosstalk exclusions) and keeps only per-qubit order and durations: what a
    hardware-agnostic scheduler (Qiskit's) models, for comparison; such a program is not playable."""
    return scheduled(native, device, clock_hz, policy, channels)[0]


def scheduled(
    native: NativeCircuit, device, clock_hz: float, policy: str = "asap", channels: bool = True
) -> tuple[list[TimedOp], int, dict[str, int], tuple]:
    """`schedule`, with what the later passes would otherwise walk the whole program again for: the end
    of the last operation, the cycle each measurement's result exists (by key), and the program's
    timeline as `ctrl.compile.pipeline._timeline` works it out, taken in the same walk: (end of the
    longest chain through per-qubit order, its result cycles by key, {qubit: [first start, last end,
    busy cycles]})."""
    if policy not in ("asap", "alap"):
        raise CtrlError(f"unknown scheduling policy {policy!r}: expected asap or alap")
    ops = native.ops
    kinds, kind_of = _kinds(ops, _needs_of(device, clock_hz))
    used = kinds
    if not channels:
        used = [(Need(d.duration, (), "", d.ready, d.tail), qs) for d, qs in kinds]
    if policy == "asap":
        starts, durations = list_schedule(used, kind_of, ops, early=True)
    else:
        rkind = kind_of[::-1]
        rstarts, rdur = list_schedule(used, rkind, ops[::-1])
        end = max((s + d + used[k][0].tail for s, d, k in zip(rstarts, rdur, rkind)), default=0)
        durations = rdur[::-1]
        starts = [end - s - d - used[k][0].tail for s, d, k in zip(rstarts[::-1], durations, kind_of)]
        # Mirroring keeps every constraint (intervals stay disjoint or identical) and per-qubit order.
        shift = -min(starts, default=0)
        starts = [s + shift for s in starts]
    # What each op occupies is named also when channels=False: the program says where it would play.
    shape = [(d.channels, d.ready) for d, _ in kinds]
    out = []
    append = out.append
    ready_at: dict[str, int] = {}
    for i in sorted(range(len(ops)), key=starts.__getitem__):  # stable: program order among equal starts
        s = starts[i]
        chs, ready = shape[kind_of[i]]
        op = ops[i]
        if ready >= 0:
            ready_at[op.key] = ready = s + ready
        append(TimedOp(op, s, durations[i], chs, ready))
    last_end = max(map(add, starts, durations), default=0)
    names: dict[str, int] = {}
    kq = [tuple(names.setdefault(q, len(names)) for q in qs) for _, qs in kinds]
    line = timeline(kq, [d.ready for d, _ in kinds], kind_of, starts, durations, len(names))
    chain_ready = {ops[i].key: t for i, t in line.results.items()}
    spans = {q: line.spans[n] for q, n in names.items() if n in line.spans}
    return out, last_end, ready_at, (line.chain, chain_ready, spans)


@dataclass(frozen=True)
class Timeline:
    """The longest chain of durations through per-qubit order (channels ignored): `chain` its end,
    `results` the cycle each result exists on it (by op index); `spans`: per qubit number that has ops,
    [first start, last end, busy cycles]."""

    chain: int
    results: dict[int, int]
    spans: dict[int, list[int]]


def timeline(
    kind_qubits: list[tuple[int, ...]], kind_ready: list[int], kind_of: list[int], starts, durations, n_qubits: int
) -> Timeline:
    """The timeline of a schedule: op i has kind `kind_of[i]`, on qubits `kind_qubits[k]` (numbers below
    `n_qubits`), its result `kind_ready[k]` cycles after its start (-1: none). The ops come in any order
    that keeps each qubit's order (program order, or time order): the chain is a longest path, the same
    in every such order, and on one qubit starts and ends only grow."""
    if any(len(qs) > 2 for qs in kind_qubits):
        raise CtrlError("an op on more than two qubits cannot be scheduled")
    pairs = [qs if len(qs) == 2 else qs * 2 for qs in kind_qubits]  # (a, a): one qubit reads the same
    free = [0] * n_qubits
    first = [-1] * n_qubits
    last = [0] * n_qubits
    busy = [0] * n_qubits
    chain = 0
    results = {}
    for i, k, s, d in zip(range(len(kind_of)), kind_of, starts, durations):
        a, b = pairs[k]
        e = free[a]
        if free[b] > e:
            e = free[b]
        e = free[a] = free[b] = e + d
        if e > chain:
            chain = e
        last[a] = last[b] = s + d
        busy[a] += d
        if first[a] < 0:
            first[a] = s
        if b != a:
            busy[b] += d
            if first[b] < 0:
                first[b] = s
        if kind_ready[k] >= 0:
            results[i] = e - d + kind_ready[k]
    spans = {q: [first[q], last[q], busy[q]] for q in range(n_qubits) if first[q] >= 0}
    return Timeline(chain, results, spans)


def _kinds(ops, lookup: _Needs) -> tuple[list[tuple[Need, tuple[str, ...]]], list[int]]:
    """The distinct (Need, qubits) of a program and which one each op is: a program repeats a few
    hundred of them thousands of times, so everything per kind is worked out once, and the per-op
    part is two passes in C (`map`), Python running only for each new (name, qubits, angle)."""
    shapes = _Shapes(lookup)
    return shapes.kinds, list(map(shapes.__getitem__, map(_SHAPE, ops)))


_SHAPE = attrgetter("name", "qubits", "angle")


class _Shapes(dict):
    """(name, qubits, angle) -> kind number, a kind made on the first miss."""

    def __init__(self, lookup: _Needs) -> None:
        super().__init__()
        self.lookup = lookup
        self.kinds: list[tuple[Need, tuple[str, ...]]] = []
        self.index: dict[tuple, int] = {}

    def __missing__(self, shape: tuple) -> int:
        name, qubits, angle = shape
        # A pulse's kind depends on whether it needs the x180 pulse; any other op's on its name and qubits.
        big = (name == "RY" or name == "RX") and not -HALF_PI - 1e-9 <= angle <= HALF_PI + 1e-9
        k = self.index.get((name, qubits, big))
        if k is None:
            k = self.index[name, qubits, big] = len(self.kinds)
            self.kinds.append((self.lookup.need(name, qubits, angle), qubits))
        self[shape] = k
        return k
