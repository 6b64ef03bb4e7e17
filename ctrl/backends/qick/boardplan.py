"""What a QICK board plays, as frozen forms in integer cycles of its tProc timing clock: pulses, readout
triggers, result reads, decisions and the blocks and declarations around them (`BoardPlan`).

`ctrl.backends.qick.plan` makes them from a timed program, `resources.py` checks them against the
firmware and `emit.py` writes them as a tProc v2 program; the conventions are plan.py's (docs/qick.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Envelope:
    """An envelope in a generator's envelope memory (samples at the generator's sample rate)."""

    gen: int
    shape: str  # gaussian | drag | flat_top | net_zero
    samples: int
    sigma: float = 0.0  # samples
    rise: int = 0  # samples of one edge
    delta: float = 0.0  # DRAG: anharmonicity in cycles per sample
    alpha: float = 0.0  # DRAG coefficient

    def __reduce__(self):  # by its fields: pickles (the recompile cache keeps many) several times faster
        return (Envelope, (self.gen, self.shape, self.samples, self.sigma, self.rise, self.delta, self.alpha))


@dataclass(frozen=True, init=False)
class Play:
    """One waveform on one generator, starting at `t`."""

    t: int
    gen: int
    style: str  # arb | const | mux
    cycles: int  # length in generator fabric cycles
    end_limit: int  # must have ended by this timing cycle (its operation's end)
    what: str  # the operation, for messages
    freq_hz: float = 0.0
    phase_deg: float = 0.0
    gain: float = 0.0
    envelope: Envelope | None = None
    outsel: str = "product"
    tones: tuple[int, ...] = ()
    ro: int = -1  # readout to frequency-match (readout pulses)
    # which pulse of which op this is: (static key, frame index); what a pulse-only patch recomputes it from
    role: tuple | None = field(default=None, compare=False, repr=False)

    def __init__(self, t: int, gen: int, style: str, cycles: int, end_limit: int, what: str, freq_hz: float = 0.0,
                 phase_deg: float = 0.0, gain: float = 0.0, envelope: Envelope | None = None, outsel: str = "product",
                 tones: tuple[int, ...] = (), ro: int = -1, role: tuple | None = None) -> None:  # fmt: skip
        # the instance dict directly: the frozen __init__ would set the 14 fields one by one, per pulse
        d = self.__dict__
        d["t"], d["gen"], d["style"], d["cycles"], d["end_limit"], d["what"] = t, gen, style, cycles, end_limit, what
        d["freq_hz"], d["phase_deg"], d["gain"], d["envelope"] = freq_hz, phase_deg, gain, envelope
        d["outsel"], d["tones"], d["ro"], d["role"] = outsel, tones, ro, role

    @property
    def key(self) -> int:
        return self.t


@dataclass(frozen=True)
class Trigger:
    t: int
    ro: int
    window: float  # timing cycles (exact)
    label: str  # measurement key, "reset:Q", or "dummy"
    what: str

    @property
    def key(self) -> int:
        return self.t

    @property
    def end(self) -> float:
        return self.t + self.window


@dataclass(frozen=True)
class Configure:
    """Send a dynamic readout its frequency and phase for the next window."""

    t: int
    ro: int
    name: str
    what: str

    @property
    def key(self) -> int:
        return self.t


@dataclass(frozen=True)
class Read:
    """A result the tProc reads from its input port: bit = I >= threshold."""

    ro: int
    port: int  # tProc input port (readouts[ro].tproc_ch)
    arrives: int  # timing cycle (block time) at which the value is at the port
    threshold: int
    label: str
    qubit: str = field(default="", compare=False)  # whose calibrated threshold it is


@dataclass(frozen=True)
class Flip:
    """Reset: play `play` (an X180) if `read` gives 1."""

    read: Read
    play: Play

    @property
    def key(self) -> int:
        return self.play.t


@dataclass(frozen=True)
class Capture:
    """Read a result into the parity registers of the checks that contain it."""

    t: int  # text position: before every timed item at or after t
    read: Read
    registers: tuple[tuple[int, bool], ...]  # (register, first bit of its check)

    @property
    def key(self) -> int:
        return self.t


@dataclass(frozen=True)
class Decision:
    """Branch to abort block `index` if any check fired: direct reads (single-bit checks whose value is
    still at the port) and parity registers."""

    index: int
    t: int
    direct: tuple[Read, ...]
    registers: tuple[int, ...]
    checks: tuple[str, ...]

    @property
    def key(self) -> int:
        return self.t


Item = Play | Trigger | Configure | Flip | Capture | Decision


@dataclass(frozen=True)
class Block:
    items: tuple  # Item, in text order (timed items and sync points by time)
    length: int  # timing cycles the reference time advances over the block

    def __repr__(self) -> str:
        kinds: dict[str, int] = {}
        for it in self.items:
            kinds[type(it).__name__] = kinds.get(type(it).__name__, 0) + 1
        return f"Block({self.length} cycles, {', '.join(f'{v} {k}' for k, v in kinds.items()) or 'empty'})"


@dataclass(frozen=True)
class GenDecl:
    gen: int
    nqz: int
    mixer_hz: float | None  # None: no digital mixer
    mux_freqs_hz: tuple[float, ...] = ()
    mux_gains: tuple[float, ...] = ()
    ro: int | None = None  # readout to frequency-match the mixer / tones

    def __reduce__(self):  # by its fields: pickles faster
        return (GenDecl, (self.gen, self.nqz, self.mixer_hz, self.mux_freqs_hz, self.mux_gains, self.ro))


@dataclass(frozen=True)
class RoDecl:
    ro: int
    cycles: int  # window, readout output cycles
    dynamic: bool
    freq_hz: float = 0.0  # static readouts
    phase_deg: float = 0.0
    gen: int | None = None

    def __reduce__(self):  # by its fields: pickles faster
        return (RoDecl, (self.ro, self.cycles, self.dynamic, self.freq_hz, self.phase_deg, self.gen))


@dataclass(frozen=True)
class ConfigDecl:
    name: str
    ro: int
    freq_hz: float
    phase_deg: float
    gen: int

    def __reduce__(self):  # by its fields: pickles faster
        return (ConfigDecl, (self.name, self.ro, self.freq_hz, self.phase_deg, self.gen))


@dataclass(frozen=True)
class PostSelected:
    decision: int
    checks: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class BoardPlan:
    board: str
    clock_hz: float
    initial: int  # timing cycles before the first reset
    attempts: int
    gens: dict
    readouts: dict
    configs: dict
    reset: Block
    attempt: Block
    aborts: dict  # decision index -> Block (entered with the reference at the decision time)
    registers: int  # parity registers used (r1..)
    readout_labels: dict  # ro -> labels of its triggers in one attempt slot, in time order
    heralded: tuple[str, ...]  # qubits reset by measurement only (no real-time path to flip them)
    post_selected: tuple[PostSelected, ...]

    def __repr__(self) -> str:
        return (f"BoardPlan({self.board}: {len(self.gens)} gens, {len(self.readouts)} readouts, reset {self.reset!r}, "
                f"attempt {self.attempt!r}, {len(self.aborts)} abort blocks, {self.attempts} slots)")

