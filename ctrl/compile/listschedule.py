"""List scheduling in program order, over integer rows: the algorithm `ctrl.compile.schedule` runs (twice
for alap, once on the reversed program).

Each op is a row (qubits, duration, tail, shared channels, mux generator or -1), all in integer cycles;
an op starts at the first time its qubits and channels allow, gaps left by earlier placements included.
Readouts of one readout group on one multiplexed generator fire as one block (see `list_schedule`).
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctrl.compile.schedule import Need


def list_schedule(
    kinds: list[tuple[Need, tuple[str, ...]]], kind_of: list[int], ops, early: bool = False
) -> tuple[list[int], list[int]]:
    """List scheduling in program order: op i (`kinds[kind_of[i]]`, `ops[i]`) starts at the first time its qubits
    and channels allow, gaps left by earlier placements included.

    Readouts of one readout group (`_readout_group` of the tag) on one multiplexed generator are held
    until all of them can go, then fire as one block: a mux generator plays its tones together, so
    readouts that trickle in one by one would queue behind each other. While a readout is held, later
    ops on its qubit wait (deferred, then taken in program order once it is placed); ops elsewhere go on.

    Each channel's busy intervals are kept as sorted, disjoint start and end lists, so finding the
    first gap that fits is a bisection instead of a scan."""
    n = len(kind_of)
    qubit_id: dict[str, int] = {}
    channel_id: dict[str, int] = {}
    mux_id: dict[str, int] = {}
    rows = [
        (
            tuple(qubit_id.setdefault(q, len(qubit_id)) for q in qubits), need.duration, need.tail,
            tuple(channel_id.setdefault(c, len(channel_id)) for c in need.exclusive),
            mux_id.setdefault(need.mux, len(mux_id)) if need.mux else -1,
        )
        for need, qubits in kinds
    ]  # fmt: skip
    # A channel that only ever serves ops on one qubit (its own drive or flux line, its own readout
    # input) is kept free by that qubit's order already: track only the channels that are shared.
    owners: dict[int, set[int]] = {}
    for qs, _, _, cs, _ in rows:
        for c in cs:
            owners[c] = set(qs) if c not in owners else owners[c] & set(qs)
    shared = {c for c, common in owners.items() if not common}
    rows = [(qs, d, tl, tuple(c for c in cs if c in shared), m) for qs, d, tl, cs, m in rows]

    # Readout batches: (group, mux) -> number of members.
    mux_kinds = {k for k, row in enumerate(rows) if row[4] >= 0}
    batch_of: dict[int, tuple] = {}
    members: dict[tuple, list[int]] = {}
    for i in [i for i, k in enumerate(kind_of) if k in mux_kinds] if mux_kinds else ():
        key = batch_of[i] = (_readout_group(ops[i].tag), rows[kind_of[i]][4])
        members.setdefault(key, []).append(i)

    op_row = [rows[k] for k in kind_of]
    busy_s: list[list[int]] = [[] for _ in channel_id]
    busy_e: list[list[int]] = [[] for _ in channel_id]
    block_s: list[list[int]] = [[] for _ in mux_id]
    block_e: list[list[int]] = [[] for _ in mux_id]
    block_d: list[list[int]] = [[] for _ in mux_id]
    qubit_free = [0] * len(qubit_id)
    starts = [0] * n
    durations = [0] * n
    waiting: list[deque[int]] = [deque() for _ in qubit_id]  # per qubit: its held and deferred ops, in order
    deferred = [False] * n
    ready: list[int] = []  # heap: deferred ops whose earlier ops are all placed now
    draining = False
    parked: dict[tuple, list[int]] = {}

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
        qs, _, tl, cs, m = rows[kind_of[i]]
        starts[i] = t
        durations[i] = d
        end = t + d + tl
        for q in qs:
            qubit_free[q] = end
        if d:
            for c in cs:
                S = busy_s[c]
                k = bisect_right(S, t)
                S.insert(k, t)
                busy_e[c].insert(k, t + d)
            if m >= 0:
                S = block_s[m]
                k = bisect_right(S, t)
                if not (k and S[k - 1] == t):
                    S.insert(k, t)
                    block_e[m].insert(k, t + d)
                    block_d[m].insert(k, d)

    def run(i: int) -> None:
        """Place op i, whose earlier ops on every qubit are placed, or hold it for its readout batch."""
        qs, d, tl, cs, m = rows[kind_of[i]]
        t = _latest(qubit_free, qs)
        if not cs and m < 0:  # nothing shared to look at: its qubits decide
            starts[i] = t
            durations[i] = d
            for q in qs:
                qubit_free[q] = t + d + tl
            return
        if m >= 0:
            key = batch_of[i]
            if len(members[key]) > 1:
                held = parked.setdefault(key, [])
                held.append(i)
                waiting[qs[0]].appendleft(i)
                if len(held) == len(members[key]):
                    release(parked.pop(key))
                return
        if m >= 0 or len(cs) > 1:
            t = earliest(t, d, cs, m)
        elif cs:
            # One channel (a shared drive or flux line): the first gap from t that fits, inline.
            S, E = busy_s[cs[0]], busy_e[cs[0]]
            k = bisect_right(E, t)
            while k < len(S) and S[k] < t + d:
                t = E[k]
                k += 1
        place(i, t, d)

    def release(idx: list[int]) -> None:
        """Start held readouts together at the first time every one of them can (padded to the
        longest); then the ops that waited for them."""
        for i in idx:
            waiting[rows[kind_of[i]][0][0]].popleft()
        qs_of = [rows[kind_of[i]] for i in idx]
        t = max(qubit_free[r[0][0]] for r in qs_of)
        duration = max(r[1] for r in qs_of)
        cs = tuple(sorted({c for r in qs_of for c in r[3]}))
        if len(cs) < sum(len(r[3]) for r in qs_of):
            # Two readouts of the batch on one readout input cannot share it: one at a time.
            for i, r in sorted(zip(idx, qs_of)):
                place(i, earliest(qubit_free[r[0][0]], r[1], r[3], r[4]), r[1])
        else:
            s = earliest(t, duration, cs, qs_of[0][4])
            for i in sorted(idx):
                place(i, s, duration)
        for r in qs_of:
            wake(r[0][0])
        drain()

    def release_partial(key: tuple) -> None:
        """Fire a batch's held readouts; its late members become a batch of their own."""
        held = parked.pop(key)
        rest = key + ("late",)
        for j in members[key]:
            if deferred[j]:
                batch_of[j] = rest
                members.setdefault(rest, []).append(j)
                arrived[rest] = arrived.get(rest, 0) + 1
                late[rest] = late.get(rest, 0) + 1
        release(held)

    def held_ready(key: tuple) -> int:
        """When a held batch could fire: its readouts' qubits are all free."""
        return max(qubit_free[rows[kind_of[j]][0][0]] for j in parked[key])

    def wake(q: int) -> None:
        """If the first op waiting on q waits for nothing else any more, it is ready."""
        if waiting[q]:
            j = waiting[q][0]
            if deferred[j]:
                qs = rows[kind_of[j]][0]
                if len(qs) == 1 or (waiting[qs[0]][0] == j and all([waiting[p][0] == j for p in qs[1:]])):
                    heapq.heappush(ready, j)

    def drain() -> None:
        """Run the ready deferred ops, lowest index first (what program order gives), until none is."""
        nonlocal draining
        if draining:
            return  # the outer drain takes what was just made ready, in index order
        draining = True
        pop, push = heapq.heappop, heapq.heappush
        while ready:
            i = pop(ready)
            if not deferred[i]:
                continue  # made ready twice
            deferred[i] = False
            b = batch_of.get(i)
            if b is not None:
                late[b] -= 1
            row = op_row[i]
            qs = row[0]
            for q in qs:
                waiting[q].popleft()
            if not row[3] and row[4] < 0:  # run(i), inline for what its qubits alone decide
                t = _latest(qubit_free, qs)
                starts[i] = t
                durations[i] = row[1]
                end = t + row[1] + row[2]
                for q in qs:
                    qubit_free[q] = end
            else:
                run(i)
            for q in qs:  # wake(q), inline
                w = waiting[q]
                if w:
                    j = w[0]
                    if deferred[j]:
                        qj = op_row[j][0]
                        if len(qj) == 1 or all([waiting[p][0] == j for p in qj]):
                            push(ready, j)
        draining = False

    arrived: dict[tuple, int] = {}  # batch -> members the program-order walk has reached
    late: dict[tuple, int] = {}  # batch -> members reached but deferred behind another held batch
    for i, row in enumerate(op_row):
        qs = row[0]
        if len(qs) == 1:
            q = qs[0]
            blocked = waiting[q]
            if not blocked and not row[3] and row[4] < 0:  # the common case, as in run()
                t = qubit_free[q]
                starts[i] = t
                durations[i] = row[1]
                qubit_free[q] = t + row[1] + row[2]
                continue
        elif len(qs) == 2:
            a, b = qs
            blocked = waiting[a] or waiting[b]
            if not blocked and not row[3] and row[4] < 0:
                t = qubit_free[a]
                if qubit_free[b] > t:
                    t = qubit_free[b]
                starts[i] = t
                durations[i] = row[1]
                qubit_free[a] = qubit_free[b] = t + row[1] + row[2]
                continue
        else:
            blocked = any([waiting[q] for q in qs])
        key = batch_of.get(i)
        if key is not None:
            arrived[key] = arrived.get(key, 0) + 1
        if blocked:
            deferred[i] = True
            for q in qs:
                waiting[q].append(i)
            if key is not None:
                late[key] = late.get(key, 0) + 1
        else:
            run(i)
        if key is not None and early:
            # Held batches that all wait on one another's readouts: none can complete until one
            # fires without its late members. Fire the oldest now, not after the rest of the program.
            while parked and all(arrived.get(b) == len(members[b]) and late.get(b, 0) for b in parked):
                release_partial(min(parked, key=lambda b: (held_ready(b), min(parked[b]))))
    while parked:
        # Every remaining op waits on a held readout whose batch cannot complete: release one batch.
        release(parked.pop(min(parked, key=lambda key: min(parked[key]))))
    return starts, durations


def _latest(free: list[int], qs: tuple[int, ...]) -> int:
    """When every qubit in `qs` is free (no generator: ops have one or two qubits, and this runs per op)."""
    t = free[qs[0]]
    if len(qs) > 1:
        for q in qs[1:]:
            if free[q] > t:
                t = free[q]
    return t


def _readout_group(tag: str) -> str:
    """Readouts that may wait for each other: one gadget, or one block of stabilizer gadgets of the same
    round and basis (their faces run side by side), so "r0.X.F3" -> "r0.X"."""
    head, _, last = tag.rpartition(".")
    return head if last.startswith("F") and last[1:].isdigit() else tag
