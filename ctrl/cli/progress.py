"""Progress bars for the commands that take more than a few seconds (tqdm, on stderr), and the sampling
pool whose chunks the collecting bar counts.

A bar is drawn only when its stream is a terminal (tqdm's `disable=None`): a command whose stderr goes to
a file, a pipe or a test's capture prints nothing more than before, and no bar ever reaches stdout or an
output file. `_Bar` counts work of a known size (shots, chunks); `_stage` marks one step whose inside is
not reachable (compiling, drawing a plot) so that the terminal says what is running.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import typing


def _tqdm(total: int, desc: str, unit: str, file: typing.TextIO | None):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=file if file is not None else sys.stderr, disable=None,
                leave=False, dynamic_ncols=True, unit_scale=unit == "shot")  # fmt: skip


class _Bar:
    """A tqdm bar whose description can name the stage it is in; `update(n)` adds n done."""

    def __init__(self, total: int, desc: str, unit: str = "it", file: typing.TextIO | None = None) -> None:
        self._bar = _tqdm(total, desc, unit, file)
        self._desc = desc
        self.done = 0

    def stage(self, desc: str) -> None:
        if self._desc != desc:
            self._desc = desc
            self._bar.set_description_str(desc)

    def update(self, n: int = 1) -> None:
        self.done += n
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _bar(total: int, desc: str, unit: str = "it", file: typing.TextIO | None = None) -> _Bar:
    return _Bar(total, desc, unit, file)


@contextlib.contextmanager
def _stage(desc: str, file: typing.TextIO | None = None) -> typing.Iterator[None]:
    """One step of unknown inside: shown (with its elapsed time) while it runs, counted 1/1 when done."""
    with _Bar(1, desc, "step", file) as b:
        yield
        b.update(1)


class _Stages:
    """`progress(stage, done, total)` callbacks (ctrl.sim.statevector's) as one bar per stage, each
    closed when the next begins; `close()` ends the last."""

    def __init__(self, unit: str = "it", file: typing.TextIO | None = None) -> None:
        self._unit, self._file = unit, file
        self._bar: _Bar | None = None
        self._name = ""

    def __call__(self, name: str, done: int, total: int) -> None:
        if self._bar is None or name != self._name:
            self.close()
            self._bar, self._name = _Bar(total, name, self._unit, self._file), name
        self._bar.update(done - self._bar.done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> _Stages:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Collecting:
    """`on_commit(task index, chunk Stats)` (ctrl.collect's) as one bar over every task's shots, naming the
    task last heard from with its running errors and discards."""

    def __init__(self, labels: list[str], shots_per_task: int) -> None:
        self._labels = labels
        self._bar = _Bar(len(labels) * shots_per_task, labels[0] if labels else "", "shot")
        self._errors = [0] * len(labels)
        self._discards = [0] * len(labels)

    def __call__(self, task: int, chunk) -> None:
        self._errors[task] += chunk.errors
        self._discards[task] += chunk.discards
        self._bar.stage(f"{self._labels[task]}: {self._errors[task]} errors, {self._discards[task]} discards")
        self._bar.update(chunk.shots)

    def __enter__(self) -> _Collecting:
        return self

    def __exit__(self, *exc) -> None:
        self._bar.close()


@contextlib.contextmanager
def _sampling(args: argparse.Namespace, labels: list[str], shots_per_task: int):
    """(the executor `--cluster` names, sized to the chunks the run needs at most; a `_Collecting` bar over
    the tasks `labels` name), the executor closed at the end."""
    from ctrl.collect.cluster import executor
    from ctrl.collect.run import CHUNK_SHOTS

    pool = executor(args.cluster, chunks_hint=len(labels) * -(-shots_per_task // CHUNK_SHOTS))
    try:
        with _Collecting(labels, shots_per_task) as heard:
            yield pool, heard
    finally:
        pool.close()
