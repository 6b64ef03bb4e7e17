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
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from dataclasses import dataclass

from ctrl.compile.natives import HALF_PI, NativeCircuit, NativeOp
from ctrl.compile.timed import TimedDecision, TimedOp
from ctrl.errors import CtrlError

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
    """`needs` for one device and clock, with the device's wiring indexed once and each distinct
    (op kind, qubits) looked up once: a program repeats the same few hundred of them."""

    def __init__(self, device, clock_hz: float) -> None:
        self.device = device
        self.clock_hz = clock_hz
        self.wiring = {w.name: w for w in device.wiring.qubits}
        self.coupler_flux = {frozenset(w.qubits): w.flux for w in device.wiring.couplers}
        self.exclusions: dict[frozenset, list[str]] = {}
        for i, group in enumerate(device.calibration.crosstalk_exclusions):
            for pair in {frozenset(p) for p in group.couplers}:
                self.exclusions.setdefault(pair, []).append(f"exclusion{i}")
        self.cache: dict[tuple, Need] = {}

    def __call__(self, op: NativeOp) -> Need:
        name = op.name
        if name == "PREP" or name == "VZ":
            return _NOTHING
        if name == "RX" or name == "RY":
            key: tuple = (op.qubits, abs(op.angle) <= HALF_PI + 1e-9)
        else:
            key = (name, op.qubits)
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = self._compute(op)
        return found

    def _cyc(self, seconds: float) -> int:
        return max(0, math.ceil(seconds * self.clock_hz - 1e-6))

    def _qubit_wiring(self, name: str):
        w = self.wiring.get(name)
        if w is None:
            raise CtrlError(f"device {self.device.name} has no wiring for qubit '{name}'")
        return w

    def _compute(self, op: NativeOp) -> Need:
        device = self.device
        if op.name in ("RX", "RY"):
            q = device.qubit(op.qubits[0])
            gate = q.x90 if abs(op.angle) <= HALF_PI + 1e-9 else q.x180
            return Need(self._cyc(gate.duration_s), (_chan(self._qubit_wiring(q.name).drive),))
        if op.name in ("CZ", "ECR"):
            a, b = op.qubits
            cal = device.coupler(a, b)
            chans = []
            if op.name == "CZ":
                element = cal.flux_pulse.element
                if element == "coupler":
                    line = self.coupler_flux.get(frozenset((a, b)))
                else:
                    line = self._qubit_wiring(element).flux
                if line is None:
                    raise CtrlError(
                        f"coupler {a}-{b}: its flux pulse needs the flux line of {element}, which is not wired"
                    )
                chans.append(_chan(line))
            else:
                chans.append(_chan(self._qubit_wiring(cal.control).drive))
                if cal.cancellation_pulse is not None:
                    target = b if cal.control == a else a
                    chans.append(_chan(self._qubit_wiring(target).drive))
            chans += self.exclusions.get(frozenset((a, b)), [])
            return Need(self._cyc(cal.duration_s), tuple(sorted(set(chans))))
        if op.name == "MEASURE":
            q = device.qubit(op.qubits[0])
            ro = q.readout
            w = self._qubit_wiring(q.name).readout
            gen = _chan(w)
            fw = device.firmware[w.board]
            window_end = ro.time_of_flight_s + ro.window_s
            busy = max(ro.pulse_duration_s, window_end)
            mux = fw.gens[w.gen].mux
            exclusive = (f"{w.board}/ro{w.ro}",) + (() if mux else (gen,))
            return Need(
                self._cyc(busy), exclusive, mux=gen if mux else "", ready=self._cyc(window_end),
                tail=self._cyc(getattr(ro, "ringdown_s", 0.0)),
            )  # fmt: skip
        raise CtrlError(f"cannot schedule native op {op.name}")


def needs(op: NativeOp, device, clock_hz: float) -> Need:
    return _Needs(device, clock_hz)(op)


def _chan(channel) -> str:
    return f"{channel.board}/gen{channel.gen}"


def schedule(
    native: NativeCircuit, device, clock_hz: float, policy: str = "asap", channels: bool = True
) -> list[TimedOp]:
    """Start times for every op. `channels=False` drops every channel constraint (generators, readout
    inputs, mux, crosstalk exclusions) and keeps only per-qubit order and durations: what a
    hardware-agnostic scheduler (Qiskit's) models, for comparison; such a program is not playable."""
    if policy not in ("asap", "alap"):
        raise CtrlError(f"unknown scheduling policy {policy!r}: expected asap or alap")
    lookup = _Needs(device, clock_hz)
    demands = [lookup(op) for op in native.ops]
    occupied = [d.channels for d in demands]
    if not channels:
        demands = [Need(d.duration, (), "", d.ready, d.tail) if d.exclusive or d.mux else d for d in demands]
    if policy == "asap":
        starts, durations = _list_schedule(native.ops, demands)
    else:
        rev = list(reversed(native.ops))
        rstarts, rdur = _list_schedule(rev, list(reversed(demands)))
        rtail = [d.tail for d in reversed(demands)]
        end = max((s + d + t for s, d, t in zip(rstarts, rdur, rtail)), default=0)
        durations = rdur[::-1]
        starts = [end - s - d - t for s, d, t in zip(rstarts[::-1], durations, [d.tail for d in demands])]
        # Mirroring keeps every constraint (intervals stay disjoint or identical) and per-qubit order.
        shift = -min(starts, default=0)
        starts = [s + shift for s in starts]
    out = [
        TimedOp(op, s, dur, ch, s + d.ready if d.ready >= 0 else -1)
        for op, s, dur, d, ch in zip(native.ops, starts, durations, demands, occupied)
    ]
    order = sorted(range(len(out)), key=starts.__getitem__)  # stable: program order among equal starts
    return [out[i] for i in order]


def _list_schedule(ops: list[NativeOp], demands: list[Need]) -> tuple[list[int], list[int]]:
    """List scheduling over per-qubit order. Readouts of one readout group (`_readout_group`) on one
    multiplexed generator are held until all of them can go, then fire as one block: a mux generator
    plays its tones together, so readouts that trickle in one by one would queue behind each other.

    Each channel's busy intervals are kept as sorted, disjoint start and end lists, so finding the
    first gap that fits is a bisection instead of a scan."""
    n = len(ops)
    qubit_id: dict[str, int] = {}
    by_qubits: dict[tuple[str, ...], tuple[int, ...]] = {}
    op_qubits = []
    for op in ops:
        ids = by_qubits.get(op.qubits)
        if ids is None:
            ids = by_qubits[op.qubits] = tuple(qubit_id.setdefault(q, len(qubit_id)) for q in op.qubits)
        op_qubits.append(ids)
    channel_id: dict[str, int] = {}
    mux_id: dict[str, int] = {}
    # The same Need object recurs for every op of one kind on one qubit or coupler: translate each once.
    translated: dict[int, tuple] = {}
    for need in demands:
        if id(need) not in translated:
            translated[id(need)] = (
                need.duration, need.tail, tuple(channel_id.setdefault(c, len(channel_id)) for c in need.exclusive),
                mux_id.setdefault(need.mux, len(mux_id)) if need.mux else -1,
            )  # fmt: skip
    rows = [translated[id(need)] for need in demands]
    dur = [r[0] for r in rows]
    tail = [r[1] for r in rows]
    chans = [r[2] for r in rows]
    mux = [r[3] for r in rows]
    free_op = [not r[2] and r[3] < 0 and r[0] == 0 for r in rows]

    last = [-1] * len(qubit_id)
    succ: list[list[int]] = [[] for _ in range(n)]
    waiting = [0] * n
    for i in range(n):
        for q in op_qubits[i]:
            p = last[q]
            if p >= 0:
                succ[p].append(i)
                waiting[i] += 1
            last[q] = i
    group_of: dict[int, tuple[str, int]] = {}
    members: dict[tuple[str, int], list[int]] = {}
    for i in range(n):
        if mux[i] >= 0:
            key = (_readout_group(ops[i].tag), mux[i])
            group_of[i] = key
            members.setdefault(key, []).append(i)

    busy_s: list[list[int]] = [[] for _ in channel_id]
    busy_e: list[list[int]] = [[] for _ in channel_id]
    block_s: list[list[int]] = [[] for _ in mux_id]
    block_e: list[list[int]] = [[] for _ in mux_id]
    block_d: list[list[int]] = [[] for _ in mux_id]
    qubit_free = [0] * len(qubit_id)
    starts = [0] * n
    durations = list(dur)
    parked: dict[tuple[str, int], list[int]] = {}
    ready = [i for i in range(n) if waiting[i] == 0]
    heapq.heapify(ready)
    done = 0

    def earliest(t: int, d: int, cs: tuple[int, ...], m: int) -> int:
        """The first start >= t at which every channel in `cs` is free for `d` cycles and mux `m`
        (if any) is idle or plays a block of exactly this start and length."""
        while True:
            t0 = t
            for c in cs:
                S, E = busy_s[c], busy_e[c]
                k = bisect_right(E, t)
                while k < len(S) and S[k] < t + d:
                    t = E[k]
                    k += 1
            if m >= 0:
                S, E, D = block_s[m], block_e[m], block_d[m]
                k = bisect_right(E, t)
                while k < len(S) and S[k] < t + d:
                    if S[k] >= t and D[k] == d:
                        t = S[k]  # join the block; blocks are disjoint, so nothing else is in the way
                        break
                    t = E[k]
                    k += 1
            if t == t0:
                return t

    def place(i: int, t: int, d: int) -> None:
        """Op i at t for d cycles; then its successors that take no time and no channel, at once."""
        nonlocal done
        stack = [(i, t, d)]
        while stack:
            i, t, d = stack.pop()
            starts[i] = t
            durations[i] = d
            end = t + d + tail[i]
            for q in op_qubits[i]:
                qubit_free[q] = end
            if d > 0:
                for c in chans[i]:
                    k = bisect_right(busy_s[c], t)
                    busy_s[c].insert(k, t)
                    busy_e[c].insert(k, t + d)
                m = mux[i]
                if m >= 0:
                    S = block_s[m]
                    k = bisect_right(S, t)
                    if not (k and S[k - 1] == t):
                        S.insert(k, t)
                        block_e[m].insert(k, t + d)
                        block_d[m].insert(k, d)
            done += 1
            for j in succ[i]:
                waiting[j] -= 1
                if waiting[j] == 0:
                    if free_op[j]:
                        stack.append((j, max(qubit_free[q] for q in op_qubits[j]), 0))
                    else:
                        heapq.heappush(ready, j)

    def place_block(idx: list[int]) -> None:
        """Start readouts together at the first time every one of them can (padded to the longest)."""
        t = max(qubit_free[q] for i in idx for q in op_qubits[i])
        duration = max(dur[i] for i in idx)
        cs = tuple(sorted({c for i in idx for c in chans[i]}))
        # Two readouts of the block on one readout input cannot share it: fall back to one at a time.
        if len(cs) < sum(len(chans[i]) for i in idx):
            for i in sorted(idx):
                place(i, earliest(max(qubit_free[q] for q in op_qubits[i]), dur[i], chans[i], mux[i]), dur[i])
            return
        s = earliest(t, duration, cs, mux[idx[0]])
        for i in sorted(idx):
            place(i, s, duration)

    while done < n:
        if not ready:
            # Every remaining op waits on a held readout whose group cannot complete: release one group.
            key = min(parked, key=lambda k: min(parked[k]))
            place_block(parked.pop(key))
            continue
        i = heapq.heappop(ready)
        if free_op[i]:
            place(i, max((qubit_free[q] for q in op_qubits[i]), default=0), 0)
            continue
        key = group_of.get(i)
        if key is not None and len(members[key]) > 1:
            parked.setdefault(key, []).append(i)
            if len(parked[key]) == len(members[key]):
                place_block(parked.pop(key))
            continue
        t = max((qubit_free[q] for q in op_qubits[i]), default=0)
        place(i, earliest(t, dur[i], chans[i], mux[i]), dur[i])
    return starts, durations


def _readout_group(tag: str) -> str:
    """Readouts that may wait for each other: one gadget, or one block of stabilizer gadgets of the same
    round and basis (their faces run side by side), so "r0.X.F3" -> "r0.X"."""
    head, _, last = tag.rpartition(".")
    return head if last.startswith("F") and last[1:].isdigit() else tag


def decisions(
    timed: list[TimedOp], checks, latency: int, realtime_ok
) -> tuple[TimedDecision, ...]:
    """One decision point per group of checks whose results become available together.

    A check is decided `latency` cycles after its last result; checks that become decidable at the same
    moment share a point (the controller folds them into one test). `realtime_ok(keys)` says whether all
    those results reach the deciding processor.
    """
    ready = {t.op.key: t.ready for t in timed if t.op.key}
    groups: dict[tuple[int, bool], list[str]] = {}
    for name, _, keys in checks:
        t = max(ready[k] for k in keys) + latency
        groups.setdefault((t, bool(realtime_ok(keys))), []).append(name)
    return tuple(
        TimedDecision(i, t, tuple(sorted(names)), rt) for i, ((t, rt), names) in enumerate(sorted(groups.items()))
    )
