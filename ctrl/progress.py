"""Progress bars for the commands that take more than a few seconds (tqdm, on stderr).

A bar is drawn only when its stream is a terminal (tqdm's `disable=None`): a command whose stderr goes to
a file, a pipe or a test's capture prints nothing more than before, and no bar ever reaches stdout or an
output file. `bar` counts work of a known size (shots, runs); `stage` marks one step whose inside is not
reachable (compiling, drawing a plot) so that the terminal says what is running.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, TextIO


def _tqdm(total: int, desc: str, unit: str, file: TextIO | None):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=file if file is not None else sys.stderr, disable=None,
                leave=False, dynamic_ncols=True, unit_scale=unit == "shot")  # fmt: skip


class Bar:
    """A tqdm bar whose description can name the stage it is in; `update(n)` adds n done."""

    def __init__(self, total: int, desc: str, unit: str = "it", file: TextIO | None = None) -> None:
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

    @property
    def enabled(self) -> bool:
        return not self._bar.disable

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def bar(total: int, desc: str, unit: str = "it", file: TextIO | None = None) -> Bar:
    return Bar(total, desc, unit, file)


@contextmanager
def stage(desc: str, file: TextIO | None = None) -> Iterator[None]:
    """One step of unknown inside: shown (with its elapsed time) while it runs, counted 1/1 when done."""
    with Bar(1, desc, "step", file) as b:
        yield
        b.update(1)


class Stages:
    """`progress(stage, done, total)` callbacks (ctrl.sim.statevector's) as one bar per stage, each
    closed when the next begins; `close()` ends the last."""

    def __init__(self, unit: str = "it", file: TextIO | None = None) -> None:
        self._unit, self._file = unit, file
        self._bar: Bar | None = None
        self._name = ""

    def __call__(self, name: str, done: int, total: int) -> None:
        if self._bar is None or name != self._name:
            self.close()
            self._bar, self._name = Bar(total, name, self._unit, self._file), name
        self._bar.update(done - self._bar.done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Stages:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
