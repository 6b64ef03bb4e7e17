"""Passes as declarations: what each compiler step reads, what it writes, and so what a change makes stale.

A `Pass` names the properties it requires and those it provides. Properties are the compile's inputs
(`distance`, `policy`, ...), the results of earlier passes (`circuit`, `timed`, ...) and *facets* of the
calibration: the views of it that passes read, each changing only when what it shows changes.

| facet                   | what of the calibration it is                                      |
|-------------------------|--------------------------------------------------------------------|
| `calibration.hash`      | the calibration's identity (every change)                          |
| `calibration.quality`   | errors, coherence, usable flags, positions (`quality` changes)      |
| `calibration.timing`    | durations, readout timing, latencies (`timing` changes)             |
| `calibration.pulse`     | envelopes, frequencies, phases, thresholds (`pulse` changes)        |
| `calibration.structure` | the qubits and couplers themselves, the wiring                      |
| `calibration.gates`     | the gate the compiler uses per pair: kind and control (computed)    |
| `calibration.phases`    | those gates' virtual-Z corrections (computed)                       |
| `calibration.step`      | what the placement cost takes from timing: the typical step and the |
|                         | ECR controls it charges echo pulses to (computed)                   |

`PassManager.run` runs every pass in order (a compile). `PassManager.stale(invalid)` says which passes a
set of invalid properties reaches, following requires and provides: what a recompile must redo
(`ctrl.recompile`), with no list of cases of its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Mapping

FACETS = ("calibration.hash", "calibration.quality", "calibration.timing", "calibration.pulse",
          "calibration.structure", "calibration.gates", "calibration.phases", "calibration.step")  # fmt: skip


@dataclass(frozen=True)
class PassRecord:
    name: str
    kind: str  # "analysis" or "transformation"
    seconds: float


@dataclass(frozen=True)
class Pass:
    """One compiler step: `run(properties)` returns the values of `provides`, in that order."""

    name: str
    kind: str  # "analysis" (reads, decides) or "transformation" (makes the next form)
    requires: tuple[str, ...]
    provides: tuple[str, ...]
    run: Callable[[Mapping], tuple]
    when: Callable[[Mapping], bool] | None = None  # None: always; else runs only where this holds

    def __repr__(self) -> str:
        return f"Pass({self.name}: {', '.join(self.requires)} -> {', '.join(self.provides)})"


@dataclass(frozen=True)
class PassManager:
    passes: tuple[Pass, ...]

    def __post_init__(self) -> None:
        known = set(FACETS) | {p for x in self.passes for p in x.provides}
        made: set[str] = set(FACETS)
        for x in self.passes:
            # a pass may read the compile's inputs (anything no pass provides) or what an earlier pass made
            late = [r for r in x.requires if r in known and r not in made]
            if late:
                raise ValueError(f"pass {x.name} requires {late}, which no earlier pass provides")
            made.update(x.provides)

    def __repr__(self) -> str:
        return f"PassManager({' -> '.join(x.name for x in self.passes)})"

    def run(self, properties: Mapping) -> tuple[dict, tuple[PassRecord, ...]]:
        """Every pass in order on a copy of `properties`: (the properties, the pass log)."""
        props = dict(properties)
        log = []
        for x in self.passes:
            if x.when is not None and not x.when(props):
                continue
            t0 = time.perf_counter()
            values = x.run(props)
            log.append(PassRecord(x.name, x.kind, time.perf_counter() - t0))
            props.update(zip(x.provides, values))
        return props, tuple(log)

    def stale(self, invalid: set[str] | frozenset[str], decided: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The passes that `invalid` properties reach, directly or through what a stale pass provides.
        `decided`: stale passes whose results the caller works out itself (as a recompile decides whether
        the placement moves); what they provide is invalid only if the caller says so in `invalid`."""
        dirty = set(invalid)
        out = []
        for x in self.passes:
            if dirty.intersection(x.requires):
                out.append(x.name)
                if x.name not in decided:
                    dirty.update(x.provides)
        return tuple(out)

    def reading(self, name: str, invalid: set[str] | frozenset[str]) -> frozenset[str]:
        """Which of `invalid` (or of what they make stale) pass `name` reads directly."""
        dirty = set(invalid)
        for x in self.passes:
            if x.name == name:
                return frozenset(dirty.intersection(x.requires))
            if dirty.intersection(x.requires):
                dirty.update(x.provides)
        raise KeyError(name)
