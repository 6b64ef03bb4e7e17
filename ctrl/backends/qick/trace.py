"""What the interpreter (`verify.interpret`) reports: the `Event`s a board would produce, in a `Trace`;
the fields per kind are in `verify.py`'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    kind: str  # pulse | trigger | config | read | branch | dmem | end
    t: int
    channel: int
    length: int = 0
    freq_hz: float = 0.0
    phase_deg: float = 0.0
    gain: float = 0.0
    envelope: str = ""
    outsel: str = ""
    tones: tuple[int, ...] = ()
    value: int = 0
    source: int = -1
    scheduled: int = 0
    issued: int = 0
    late: int = 0

    def __repr__(self) -> str:
        if self.kind == "pulse":
            shape = self.envelope or self.outsel
            what = f"{self.freq_hz / 1e6:.3f} MHz {self.phase_deg:.2f} deg gain {self.gain:.4f} {shape}"
            if self.tones:
                what = f"tones {list(self.tones)}"
            return f"Event(pulse gen{self.channel} @{self.t}+{self.length} {what})"
        if self.kind == "trigger":
            return f"Event(trigger ro{self.channel} @{self.t}+{self.length})"
        return f"Event({self.kind} ch{self.channel} @{self.t} value={self.value})"


@dataclass(frozen=True)
class Trace:
    events: tuple[Event, ...]  # by time, then program order
    steps: int  # instructions executed
    counter: int  # s_core_w1 (s12) at the end: acquire()'s shot counter
    dmem: tuple[tuple[int, int], ...]  # (address, value) of every data-memory word written, final values

    def __repr__(self) -> str:
        kinds: dict[str, int] = {}
        for e in self.events:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        return f"Trace({self.steps} steps, counter {self.counter}, {kinds})"

    def of(self, kind: str, channel: int | None = None) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.kind == kind and (channel is None or e.channel == channel))

    @property
    def pulses(self) -> tuple[Event, ...]:
        return self.of("pulse")

    @property
    def triggers(self) -> tuple[Event, ...]:
        return self.of("trigger")

    @property
    def branches(self) -> tuple[Event, ...]:
        return self.of("branch")

    @property
    def late(self) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.late > 0)
