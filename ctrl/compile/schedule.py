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


def needs(op: NativeOp, device, clock_hz: float) -> Need:
    def cyc(seconds: float) -> int:
        return max(0, math.ceil(seconds * clock_hz - 1e-6))

    if op.name in ("PREP", "VZ"):
        return Need(0, ())
    if op.name in ("RX", "RY"):
        q = device.qubit(op.qubits[0])
        gate = q.x90 if abs(op.angle) <= HALF_PI + 1e-9 else q.x180
        return Need(cyc(gate.duration_s), (_chan(device.qubit_wiring(q.name).drive),))
    if op.name in ("CZ", "ECR"):
        a, b = op.qubits
        cal = device.coupler(a, b)
        chans = []
        if op.name == "CZ":
            element = cal.flux_pulse.element
            if element == "coupler":
                wiring = device.coupler_wiring(a, b)
                line = wiring.flux if wiring is not None else None
            else:
                line = device.qubit_wiring(element).flux
            if line is None:
                raise CtrlError(f"coupler {a}-{b}: its flux pulse needs the flux line of {element}, which is not wired")
            chans.append(_chan(line))
        else:
            chans.append(_chan(device.qubit_wiring(cal.control).drive))
            if cal.cancellation_pulse is not None:
                target = b if cal.control == a else a
                chans.append(_chan(device.qubit_wiring(target).drive))
        for i, group in enumerate(device.calibration.crosstalk_exclusions):
            if frozenset((a, b)) in {frozenset(p) for p in group.couplers}:
                chans.append(f"exclusion{i}")
        return Need(cyc(cal.duration_s), tuple(sorted(set(chans))))
    if op.name == "MEASURE":
        q = device.qubit(op.qubits[0])
        ro = q.readout
        w = device.qubit_wiring(q.name).readout
        gen = _chan(w)
        fw = device.firmware[w.board]
        window_end = ro.time_of_flight_s + ro.window_s
        busy = max(ro.pulse_duration_s, window_end)
        mux = fw.gens[w.gen].mux
        exclusive = (f"{w.board}/ro{w.ro}",) + (() if mux else (gen,))
        return Need(
            cyc(busy), exclusive, mux=gen if mux else "", ready=cyc(window_end), tail=cyc(getattr(ro, "ringdown_s", 0.0))
        )
    raise CtrlError(f"cannot schedule native op {op.name}")


def _chan(channel) -> str:
    return f"{channel.board}/gen{channel.gen}"


def schedule(native: NativeCircuit, device, clock_hz: float, policy: str = "asap") -> list[TimedOp]:
    if policy not in ("asap", "alap"):
        raise CtrlError(f"unknown scheduling policy {policy!r}: expected asap or alap")
    demands = [needs(op, device, clock_hz) for op in native.ops]
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
        TimedOp(op, s, dur, d.exclusive + ((d.mux,) if d.mux else ()), s + d.ready if d.ready >= 0 else -1)
        for op, s, dur, d in zip(native.ops, starts, durations, demands)
    ]
    order = sorted(range(len(out)), key=lambda i: (out[i].start, i))
    return [out[i] for i in order]


def _list_schedule(ops: list[NativeOp], demands: list[Need]) -> tuple[list[int], list[int]]:
    """List scheduling over per-qubit order. Readouts of one readout group (`_readout_group`) on one
    multiplexed generator are held until all of them can go, then fire as one block: a mux generator
    plays its tones together, so readouts that trickle in one by one would queue behind each other."""
    n = len(ops)
    prev: dict[str, int] = {}
    succ: list[list[int]] = [[] for _ in range(n)]
    waiting = [0] * n
    for i, op in enumerate(ops):
        for q in op.qubits:
            if q in prev:
                succ[prev[q]].append(i)
                waiting[i] += 1
            prev[q] = i
    group_of: dict[int, tuple[str, str]] = {}
    members: dict[tuple[str, str], list[int]] = {}
    for i, (op, need) in enumerate(zip(ops, demands)):
        if need.mux:
            key = (_readout_group(op.tag), need.mux)
            group_of[i] = key
            members.setdefault(key, []).append(i)
    qubit_free: dict[str, int] = {}
    busy: dict[str, list[tuple[int, int]]] = {}
    mux_blocks: dict[str, dict[int, int]] = {}
    starts = [0] * n
    durations = [d.duration for d in demands]
    parked: dict[tuple[str, str], list[int]] = {}
    ready = [i for i in range(n) if waiting[i] == 0]
    heapq.heapify(ready)
    done = 0

    def place(idx: list[int], t: int, duration: int | None = None) -> None:
        nonlocal done
        for i in idx:
            need = demands[i]
            dur = need.duration if duration is None else duration
            starts[i] = t
            durations[i] = dur
            for q in ops[i].qubits:
                qubit_free[q] = t + dur + need.tail
            for ch in need.exclusive:
                busy.setdefault(ch, []).append((t, t + dur))
            if need.mux:
                mux_blocks.setdefault(need.mux, {})[t] = dur
            done += 1
            for j in succ[i]:
                waiting[j] -= 1
                if waiting[j] == 0:
                    heapq.heappush(ready, j)

    while done < n:
        if not ready:
            # Every remaining op waits on a held readout whose group cannot complete: release one group.
            key = min(parked, key=lambda k: min(parked[k]))
            _place_block(parked.pop(key), ops, demands, qubit_free, busy, mux_blocks, place)
            continue
        i = heapq.heappop(ready)
        key = group_of.get(i)
        if key is not None and len(members[key]) > 1:
            parked.setdefault(key, []).append(i)
            if len(parked[key]) == len(members[key]):
                _place_block(parked.pop(key), ops, demands, qubit_free, busy, mux_blocks, place)
            continue
        need = demands[i]
        t = max((qubit_free.get(q, 0) for q in ops[i].qubits), default=0)
        if need.duration > 0 or need.exclusive:
            t = _earliest(t, need, busy, mux_blocks)
        place([i], t)
    return starts, durations


def _readout_group(tag: str) -> str:
    """Readouts that may wait for each other: one gadget, or one block of stabilizer gadgets of the same
    round and basis (their faces run side by side), so "r0.X.F3" -> "r0.X"."""
    head, _, last = tag.rpartition(".")
    return head if last.startswith("F") and last[1:].isdigit() else tag


def _place_block(idx, ops, demands, qubit_free, busy, mux_blocks, place) -> None:
    """Start readouts together at the first time every one of them can (padded to the longest)."""
    t = max(qubit_free.get(q, 0) for i in idx for q in ops[i].qubits)
    duration = max(demands[i].duration for i in idx)
    exclusive = tuple(sorted({ch for i in idx for ch in demands[i].exclusive}))
    # Two readouts of the block on one readout input cannot share it: fall back to one at a time.
    if len(exclusive) < sum(len(demands[i].exclusive) for i in idx):
        for i in sorted(idx):
            need = demands[i]
            s = _earliest(max(qubit_free.get(q, 0) for q in ops[i].qubits), need, busy, mux_blocks)
            place([i], s)
        return
    block = Need(duration, exclusive, demands[idx[0]].mux)
    place(sorted(idx), _earliest(t, block, busy, mux_blocks), duration)


def _earliest(t: int, need: Need, busy: dict, mux_blocks: dict) -> int:
    """The first start >= t at which every exclusive channel is free and the mux group allows it."""
    candidates = {t}
    for ch in need.exclusive:
        candidates.update(e for _, e in busy.get(ch, ()) if e > t)
    if need.mux:
        blocks = mux_blocks.get(need.mux, {})
        candidates.update(e + s for s, e in ((s, d) for s, d in blocks.items()) if s + e > t)
        candidates.update(s for s in blocks if s >= t)
    for c in sorted(candidates):
        if all(_free(busy.get(ch, ()), c, c + need.duration) for ch in need.exclusive) and _mux_ok(
            mux_blocks.get(need.mux, {}) if need.mux else {}, c, need.duration
        ):
            return c
    raise AssertionError("unreachable: the latest candidate is always free")


def _free(intervals, a: int, b: int) -> bool:
    return all(e <= a or s >= b for s, e in intervals) if b > a else all(not (s < a < e) for s, e in intervals)


def _mux_ok(blocks: dict[int, int], start: int, duration: int) -> bool:
    for s, d in blocks.items():
        if s == start and d == duration:
            continue
        if s < start + duration and start < s + d:
            return False
    return True


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
