"""The post-selection rule as a decision program, and the evaluators that run it.

A decision point is a moment during the attempt at which the controller reads the results that have
arrived and aborts the attempt if any check among them fired. The same `DecisionProgram` is evaluated
three ways, which must agree on every input:

- `Stream`: results fed as they arrive (what the FPGA program does);
- `evaluate_batch`: many shots at once from bit-packed records (the emulator on Stim's detectors, the
  lab client on the board's readouts; no Python loop per shot);
- `reference_accepts`: the plain definition, every check's parity on unpacked bits.

The record holds one result per check (the parity of its measurements, `check_bits`), in the order the
checks are decided: the Stim detector order of a compiled program. Times are in whatever unit the
builder was given: protocol time steps (`protocol_decisions`) or the compiler's clock cycles.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from ctrl.errors import CtrlError
from ctrl.protocol.ir import ProtocolCircuit


@dataclass(frozen=True)
class Rule:
    """One check: abort unless the XOR of these record bits is 0."""

    name: str
    kind: str
    bits: tuple[int, ...]  # positions in DecisionProgram.record
    ready: int  # time at which its last result is available
    keys: tuple[str, ...] = ()  # the measurements whose parity the check is (what feeds its record bits)

    def __repr__(self) -> str:
        return f"Rule({self.name} [{self.kind}] bits={list(self.bits)} keys={list(self.keys)} ready at {self.ready})"


@dataclass(frozen=True)
class DecisionPoint:
    index: int
    time: int  # when the controller branches
    rules: tuple[int, ...]  # indices into DecisionProgram.rules, in the order they are tested
    needs: int  # number of record bits that must have arrived (a prefix of the record)
    realtime: bool = True  # False: some result cannot reach the deciding processor in time; checked after the run

    def __repr__(self) -> str:
        when = "" if self.realtime else ", after the run"
        return f"DecisionPoint({self.index} at t={self.time}: {len(self.rules)} checks, needs {self.needs} bits{when})"


@dataclass(frozen=True)
class DecisionProgram:
    """The post-selection rule: every consumer (Stim detectors, QICK plan, emulator, lab cross-check)
    reads this one object. `rules` are in the protocol's order of its checks; `record` is the order the
    check results are decided in (one result per check, the parity of its measurements)."""

    record: tuple[str, ...]
    rules: tuple[Rule, ...]
    points: tuple[DecisionPoint, ...]
    duration: int  # length of a full attempt
    latency: int  # from a result's arrival to the branch that uses it

    def __repr__(self) -> str:
        after = sum(not p.realtime for p in self.points)
        return (
            f"DecisionProgram({len(self.record)} results, {len(self.rules)} checks, "
            f"{len(self.points)} decision points ({after} after the run), duration={self.duration}, "
            f"latency={self.latency})"
        )

    @property
    def n_bytes(self) -> int:
        return (len(self.record) + 7) // 8

    def rules_of(self, point: DecisionPoint) -> tuple[Rule, ...]:
        return tuple(self.rules[r] for r in point.rules)

    def names(self, point: DecisionPoint) -> tuple[str, ...]:
        return tuple(self.rules[r].name for r in point.rules)

    def realtime_only(self) -> DecisionProgram:
        """The points the controller takes in real time, renumbered: where an attempt really stops."""
        keep = [p for p in self.points if p.realtime]
        if len(keep) == len(self.points):
            return self
        points = tuple(DecisionPoint(i, p.time, p.rules, p.needs) for i, p in enumerate(keep))
        return DecisionProgram(self.record, self.rules, points, self.duration, self.latency)

    def masks(self) -> np.ndarray:
        """Per decision point, a bit-packed mask (little-endian, as Stim packs) of its single-bit checks."""
        out = np.zeros((len(self.points), self.n_bytes), dtype=np.uint8)
        for p in self.points:
            for r in p.rules:
                bits = self.rules[r].bits
                if len(bits) == 1:
                    out[p.index, bits[0] // 8] |= np.uint8(1 << (bits[0] % 8))
        return out


class CheckLike(Protocol):
    name: str
    kind: str
    measurements: tuple[str, ...]


def decision_program(
    checks: Sequence[CheckLike],
    ready: Mapping[str, int],
    latency: int,
    *,
    spacing: int = 0,
    realtime: Callable[[tuple[str, ...]], bool] | None = None,
    duration: int = 0,
) -> DecisionProgram:
    """The decision program of `checks`, whose results exist at `ready[key]`: the only derivation of the
    post-selection rule (the compiler calls it with scheduled cycles, `protocol_decisions` with steps).

    A check can be tested `latency` after its last result. Decision points are placed greedily in time,
    at least `spacing` apart; each tests every check that is ready by then and was not tested before.
    Checks decided at one moment share a point, unless `realtime(keys)` splits them: the ones whose
    results cannot reach the deciding processor go to a point of their own, decided after the run.
    """
    if latency < 0:
        raise CtrlError(f"latency must be >= 0, got {latency}")
    at = [max(ready[k] for k in c.measurements) for c in checks]
    rt = [True if realtime is None else bool(realtime(c.measurements)) for c in checks]
    pending = sorted(range(len(checks)), key=lambda i: (at[i], checks[i].name))
    groups: list[tuple[int, bool, list[int]]] = []
    last = None
    while pending:
        first = at[pending[0]] + latency
        t = first if last is None else max(first, last + spacing)
        due = [i for i in pending if at[i] + latency <= t]
        for flag in (False, True):  # post-run first at one time: the order program.json has always had
            group = sorted((i for i in due if rt[i] == flag), key=lambda i: checks[i].name)
            if group:
                groups.append((t, flag, group))
        done = set(due)
        pending = [i for i in pending if i not in done]
        last = t
    return assemble(
        [(c.name, c.kind, tuple(c.measurements), a) for c, a in zip(checks, at)], groups, max(duration, last or 0), latency
    )


def assemble(checks, groups, duration: int, latency: int) -> DecisionProgram:
    """The program of `checks` ((name, kind, keys, ready), the rules' order) decided in `groups` ((time,
    realtime, check indices in test order), the points' order): one record bit per check, in the order
    the checks are decided, so every point needs a prefix of the record."""
    position = {i: n for n, i in enumerate(i for _, _, group in groups for i in group)}
    if sorted(position) != list(range(len(checks))):
        raise CtrlError("a decision program must decide every check exactly once")
    rules = tuple(Rule(name, kind, (position[i],), ready, keys) for i, (name, kind, keys, ready) in enumerate(checks))
    points, seen = [], 0
    for index, (time, flag, group) in enumerate(groups):
        seen += len(group)
        points.append(DecisionPoint(index, time, tuple(group), seen, flag))
    record = tuple(checks[i][0] for _, _, group in groups for i in group)
    return DecisionProgram(record, rules, tuple(points), duration, latency)


def protocol_decisions(circuit: ProtocolCircuit, latency: int = 1, spacing: int | None = None) -> DecisionProgram:
    """`decision_program` on the protocol's own clock: a result exists one step after its measurement,
    points are `spacing` apart (default: `latency`, one test-and-jump in flight at a time)."""
    ready = {op.key: op.step + 1 for op in circuit.measurements}
    spacing = latency if spacing is None else spacing
    return decision_program(circuit.checks, ready, latency, spacing=spacing, duration=circuit.n_steps)


def check_bits(program: DecisionProgram, results: Mapping[str, np.ndarray], source: str = "the results") -> np.ndarray:
    """(shots, len(record)) check results, each the parity of its measurements' bits in `results` (by key)."""
    shots = len(next(iter(results.values()))) if results else 0
    out = np.zeros((shots, len(program.record)), dtype=np.uint8)
    for rule in program.rules:
        for k in rule.keys:
            if k not in results:
                raise CtrlError(f"check {rule.name}: measurement {k} is not among {source}")
            out[:, rule.bits[0]] ^= np.asarray(results[k], dtype=np.uint8) & 1
    return out


@dataclass(frozen=True)
class Verdict:
    status: str  # "continue", "abort" or "accept"
    check: str = ""
    point: int = -1


class Stream:
    """Feed results in record order; get continue / abort (with the failing check) / accept."""

    def __init__(self, program: DecisionProgram) -> None:
        self.program = program
        self.bits: list[int] = []
        self.next_point = 0
        self.done: Verdict | None = None

    def feed(self, results: Sequence[int]) -> Verdict:
        if self.done is not None:
            return self.done
        self.bits.extend(int(b) & 1 for b in results)
        if len(self.bits) > len(self.program.record):
            raise CtrlError(f"fed {len(self.bits)} results; the record has {len(self.program.record)}")
        pts = self.program.points
        while self.next_point < len(pts) and len(self.bits) >= pts[self.next_point].needs:
            point = pts[self.next_point]
            for r in point.rules:
                rule = self.program.rules[r]
                if sum(self.bits[b] for b in rule.bits) % 2:
                    self.done = Verdict("abort", rule.name, point.index)
                    return self.done
            self.next_point += 1
        if self.next_point == len(pts):
            self.done = Verdict("accept")
            return self.done
        return Verdict("continue")


def evaluate_batch(program: DecisionProgram, packed: np.ndarray) -> np.ndarray:
    """Index of the decision point that aborts each shot, or -1 if the shot is accepted.

    `packed` is (shots, ceil(n/8)) uint8 check results, bit-packed little-endian (Stim's `bit_packed=True`).
    Single-bit checks are tested a machine word of results at a time; when decision points follow
    record order (they do for the protocol's own timing), the aborting point is the point of the lowest
    fired bit, found without a loop over points.
    """
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim != 2 or packed.shape[1] != program.n_bytes:
        raise CtrlError(f"expected records of shape (shots, {program.n_bytes}), got {packed.shape}")
    point_of_bit, in_order, union, multi = _tables(program)
    if not in_order:
        return _evaluate_by_points(program, packed)
    if 8 < program.n_bytes <= 16:
        out = _lowest_fired_two_words(packed, point_of_bit, union)
    else:
        out = _lowest_fired_padded(packed, point_of_bit, union)
    for point, rule in multi:
        fired = _parity(packed, program.rules[rule].bits)
        later = fired & ((out < 0) | (out > point))
        out[later] = point
    return out


@functools.lru_cache(maxsize=16)
def _tables(program: DecisionProgram):
    """What evaluating a batch needs of the program alone, built once per program: each record bit's
    decision point, whether points follow record order, the union of the single-bit checks' masks (one
    byte per record byte) and the multi-bit rules."""
    point_of_bit = _point_of_bit(program)
    used = point_of_bit[point_of_bit >= 0]
    in_order = bool((np.diff(used) >= 0).all())
    union = np.bitwise_or.reduce(program.masks(), axis=0)
    return point_of_bit, in_order, union, tuple(_multi_bit_rules(program))


def _lowest_fired_two_words(packed: np.ndarray, point_of_bit: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Records of 9 to 16 bytes (d=5) read as two overlapping unaligned 64-bit words, bytes [0, 8) and
    [nb-8, nb), the overlap masked out of the second: no padded copy of the records, no argmax."""
    nb = len(union)
    high = union[nb - 8:].copy()
    high[: 16 - nb] = 0  # bytes the first word holds already
    m0, m1 = union[:8].copy().view("<u8")[0], high.view("<u8")[0]
    records = np.ascontiguousarray(packed)
    w0 = records[:, :8].view("<u8")[:, 0] & m0
    w1 = records[:, nb - 8:].view("<u8")[:, 0] & m1
    index = np.where(w0 != 0, _low_bit(w0), 8 * (nb - 8) + _low_bit(w1))
    return point_of_bit[np.maximum(index, -1)]


def _low_bit(w: np.ndarray) -> np.ndarray:
    """Index of each word's lowest set bit (uint32 or uint64 words): the isolated bit is an exact power of
    two, whose index is its float exponent (much faster than log2). A zero word gives a very negative
    index, which the callers clip to -1, which point_of_bit maps to -1 = accepted."""
    low = w & (~w + w.dtype.type(1))
    if w.dtype == np.uint32:
        return (low.astype(np.float32).view(np.int32) >> 23) - 127
    return (low.astype(np.float64).view(np.int64) >> 52) - 1023


def _lowest_fired_padded(packed: np.ndarray, point_of_bit: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Any record length: padded to whole 32- or 64-bit words, the first word with a fired bit found by
    argmax."""
    nb = len(union)
    word_bytes = 8 if nb > 4 else 4
    n_words = -(-nb // word_bytes)
    dtype = np.uint64 if word_bytes == 8 else np.uint32
    if nb == n_words * word_bytes:
        words = np.ascontiguousarray(packed).view(dtype)
    else:
        padded = np.zeros((packed.shape[0], n_words * word_bytes), dtype=np.uint8)
        padded[:, :nb] = packed
        words = padded.view(dtype)
    mask = np.zeros(n_words * word_bytes, dtype=np.uint8)
    mask[:nb] = union
    hit = words & mask.view(dtype)
    if n_words == 1:
        first_word = 0
        low = hit[:, 0]
    else:
        first_word = np.argmax(hit != 0, axis=1)
        low = hit[np.arange(hit.shape[0]), first_word]
    return point_of_bit[np.maximum(first_word * 8 * word_bytes + _low_bit(low), -1)]


def _evaluate_by_points(program: DecisionProgram, packed: np.ndarray) -> np.ndarray:
    """The general case (points not in record order): each point's masked test on every shot, a word
    at a time, then the first point that fired."""
    n = packed.shape[0]
    if not program.points:
        return np.full(n, -1, dtype=np.int32)
    n_words = -(-program.n_bytes // 8)
    padded = np.zeros((n, n_words * 8), dtype=np.uint8)
    padded[:, : program.n_bytes] = packed
    words = padded.view(np.uint64)
    masks = np.zeros((len(program.points), n_words * 8), dtype=np.uint8)
    masks[:, : program.n_bytes] = program.masks()
    masks = masks.view(np.uint64)
    fired = np.zeros((n, len(program.points)), dtype=bool)
    for p in program.points:
        hit = (words & masks[p.index]).any(axis=1)
        for r in p.rules:
            if len(program.rules[r].bits) > 1:
                hit |= _parity(packed, program.rules[r].bits)
        fired[:, p.index] = hit
    return np.where(fired.any(axis=1), np.argmax(fired, axis=1), -1).astype(np.int32)


def _point_of_bit(program: DecisionProgram) -> np.ndarray:
    point_of_bit = np.full(program.n_bytes * 8 + 64, -1, dtype=np.int32)
    for p in program.points:
        for r in p.rules:
            bits = program.rules[r].bits
            if len(bits) == 1:
                point_of_bit[bits[0]] = p.index
    return point_of_bit


def _multi_bit_rules(program: DecisionProgram) -> list[tuple[int, int]]:
    return [(p.index, r) for p in program.points for r in p.rules if len(program.rules[r].bits) > 1]


def first_failures(program: DecisionProgram, packed: np.ndarray, aborts: np.ndarray) -> np.ndarray:
    """For aborted shots, the index (into program.rules) of the first fired check at the aborting point."""
    out = np.full(len(aborts), -1, dtype=np.int32)
    for p in program.points:
        rows = np.flatnonzero(aborts == p.index)
        if not rows.size:
            continue
        unset = np.ones(rows.size, bool)
        for r in p.rules:
            fired = _parity(packed[rows], program.rules[r].bits) & unset
            out[rows[fired]] = r
            unset &= ~fired
    return out


def _parity(packed: np.ndarray, bits: tuple[int, ...]) -> np.ndarray:
    acc = np.zeros(packed.shape[0], dtype=np.uint8)
    for b in bits:
        acc ^= (packed[:, b // 8] >> (b % 8)) & 1
    return acc.astype(bool)


def reference_accepts(program: DecisionProgram, bits: np.ndarray) -> np.ndarray:
    """The plain rule on unpacked bits (shots, n): accepted iff every check's parity is 0."""
    fired = np.zeros(bits.shape[0], dtype=bool)
    for rule in program.rules:
        fired |= np.bitwise_xor.reduce(bits[:, list(rule.bits)].astype(np.uint8), axis=1).astype(bool)
    return ~fired
