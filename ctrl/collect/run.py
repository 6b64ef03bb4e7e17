"""`collect`: sample tasks in seeded chunks on an executor, commit them in order, append them to a CSV.

Chunk i of a task has the seed `chunk_seed(strong_id, seed, i)` and a size fixed before it runs, so its
numbers are the same on any worker. Chunks finish in any order but are committed in index order: a task's
committed record is always chunks 0..n-1, and the stop rules (`max_shots`, `max_errors`) are tested on it
after each commit. The statistics are therefore the same whatever the number of workers and whatever the
order of completion; chunks already running when a task stops are dropped, never counted. A chunk lost
with its worker is run again by the executor (same seed, same numbers) and committed once.

With a CSV, each committed chunk is one sinter CSV row, appended, flushed and fsynced under an exclusive
lock of the file; a rerun reads the rows back and continues each task at the next chunk index (the sum
of its rows' `chunks` counts).
"""

from __future__ import annotations

import collections
import fcntl
import io
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ctrl.collect.cluster import Executor, local
from ctrl.collect.stats import Stats
from ctrl.collect.task import Task, chunk_seed, sample
from ctrl.errors import CtrlError

CHUNK_SHOTS = 50_000  # ~0.1-0.5 s of sampling at d=3-5: a Dask round trip (tens of ms) stays small beside it
MAX_CSV_BYTES = 1 << 30  # a resume file larger than this is not what a sweep writes


def sinter_stats(task: Task, stats: Stats):
    """`stats` of `task` as sinter's record: a CSV row, or what sinter's plots take."""
    import sinter

    return sinter.TaskStats(strong_id=task.strong_id, decoder="ctrl", json_metadata=dict(task.metadata),
                            shots=stats.shots, errors=stats.errors, discards=stats.discards, seconds=stats.seconds,
                            custom_counts=collections.Counter(stats.counts))  # fmt: skip


def run_chunk(task: Task, shots: int, seed: int) -> tuple:
    """What a worker runs: one chunk, answered as plain data (`Stats.to_wire`)."""
    return sample(task, shots, seed).to_wire()


@dataclass
class _Progress:
    """One task's state inside `collect`."""

    task: Task
    done: Stats  # committed
    planned: int = 0  # shots of chunks submitted (committed or in flight) in this run
    next_index: int = 0
    next_commit: int = 0
    waiting: dict[int, Stats] = field(default_factory=dict)  # finished, not yet committable
    stopped: bool = False


def collect(
    tasks: Sequence[Task],
    *,
    max_shots: int,
    max_errors: int | None = None,
    seed: int = 0,
    chunk_shots: int = CHUNK_SHOTS,
    executor: Executor | None = None,
    csv: Path | None = None,
    on_commit: Callable[[int, Stats], None] | None = None,
) -> list[Stats]:
    """Each task's record after sampling it (with what `csv` already held) until `max_shots` shots or
    `max_errors` logical errors. `on_commit(task index, committed chunk)` hears every commit."""
    if max_shots < 1:
        raise CtrlError(f"max shots must be positive, got {max_shots}")
    if chunk_shots < 1:
        raise CtrlError(f"chunk size must be positive, got {chunk_shots}")
    ids = [t.strong_id for t in tasks]
    if len(set(ids)) != len(ids):
        raise CtrlError("the same task was asked twice")
    with _store(csv) as store:
        state = []
        for t in tasks:
            done = store.resumed.get(t.strong_id, Stats())
            n = done.count("chunks")  # a resumed task continues at its next chunk
            state.append(_Progress(t, done, next_index=n, next_commit=n,
                                   stopped=_finished(done, max_shots, max_errors)))  # fmt: skip
        own = executor is None
        executor = executor or local(1)
        try:
            _drive(state, executor, max_shots, max_errors, seed, chunk_shots, store, on_commit)
        finally:
            if own:
                executor.close()
    return [s.done for s in state]


def _finished(done: Stats, max_shots: int, max_errors: int | None) -> bool:
    return done.shots >= max_shots or (max_errors is not None and done.errors >= max_errors)


def _drive(state, executor: Executor, max_shots, max_errors, seed, chunk_shots, store, on_commit) -> None:
    window = max(2, 2 * executor.workers)  # chunks in flight: every worker busy, one more queued each
    shared = {i: executor.share(s.task) for i, s in enumerate(state)}
    flight: dict = {}  # future -> (task index, chunk index)

    def submit_more() -> None:
        while len(flight) < window:
            open_ = [i for i, s in enumerate(state) if not s.stopped and s.done.shots + s.planned < max_shots]
            if not open_:
                return
            # the task with the least planned work first: tasks advance together, as in sinter
            i = min(open_, key=lambda j: (state[j].done.shots + state[j].planned, j))
            s = state[i]
            shots = min(chunk_shots, max_shots - s.done.shots - s.planned)
            future = executor.submit(run_chunk, shared[i], shots, chunk_seed(s.task.strong_id, seed, s.next_index))
            flight[future] = (i, s.next_index)
            s.planned += shots
            s.next_index += 1

    submit_more()
    while flight:
        for future in executor.done_first(list(flight)):
            if future not in flight:  # dropped above: its task stopped
                continue
            i, index = flight.pop(future)
            s = state[i]
            if s.stopped:
                continue
            s.waiting[index] = Stats.from_wire(future.result())
            while s.next_commit in s.waiting and not s.stopped:
                chunk = s.waiting.pop(s.next_commit)
                s.next_commit += 1
                s.planned -= chunk.shots
                s.done = s.done + chunk
                store.append(s.task, chunk)
                if on_commit is not None:
                    on_commit(i, chunk)
                s.stopped = _finished(s.done, max_shots, max_errors)
            if s.stopped:  # what is still running for this task would go past its stop: dropped
                for f, (j, _) in list(flight.items()):
                    if j == i:
                        executor.cancel(f)
                        del flight[f]
        submit_more()


class _Store:
    """The CSV (or nothing): rows read back for resuming, rows appended as chunks commit."""

    def __init__(self, path: Path | None, handle: io.TextIOWrapper | None, resumed: dict[str, Stats]) -> None:
        self.path, self.handle, self.resumed = path, handle, resumed

    def append(self, task: Task, chunk: Stats) -> None:
        if self.handle is None:
            return
        self.handle.write(sinter_stats(task, chunk).to_csv_line() + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())


@contextmanager
def _store(path: Path | None) -> Iterator[_Store]:
    if path is None:
        yield _Store(None, None, {})
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = open(path, "a+", encoding="utf-8")
    except OSError as e:
        raise CtrlError(f"{path}: cannot open the results CSV: {e.strerror}") from None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CtrlError(f"{path}: another sweep is writing this CSV (it is locked)") from None
        resumed = _read(path, handle)
        yield _Store(path, handle, resumed)


def _read(path: Path, handle) -> dict[str, Stats]:
    """The rows already in the CSV, summed per task; a torn last row (a crash mid-write) is cut off."""
    import sinter

    size = os.fstat(handle.fileno()).st_size
    if size > MAX_CSV_BYTES:
        raise CtrlError(f"{path}: {size} bytes, more than the {MAX_CSV_BYTES} a results CSV may have")
    handle.seek(0)
    text = handle.read()
    if text and not text.endswith("\n"):
        keep = text.rfind("\n") + 1
        print(f"warning: {path}: its last row was cut short (an interrupted write); dropped it", file=sys.stderr)
        handle.truncate(keep)
        text = text[:keep]
    if not text.strip():
        handle.write(sinter.CSV_HEADER + "\n")
        handle.flush()
        return {}
    try:
        rows = sinter.read_stats_from_csv_files(io.StringIO(text))
    except (ValueError, KeyError) as e:
        raise CtrlError(f"{path}: not a sinter statistics CSV: {e}") from None
    return {r.strong_id: Stats(r.shots, r.errors, r.discards, r.seconds, dict(r.custom_counts)) for r in rows}


__all__ = ["collect", "run_chunk", "sinter_stats", "CHUNK_SHOTS"]
