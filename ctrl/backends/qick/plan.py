"""Lowering a timed program to per-board QICK plans: exact cycles, folded frames, reset, decisions, aborts.

A plan is everything a board plays, with times in integer cycles of the tProc timing clock, before any
qick object exists; `emit.py` turns it into a tProc v2 program and `resources.py` checks it against the
firmware. Conventions (docs/qick.md says why):

- one loop iteration = one attempt slot: the reset block, then the attempt (the TimedProgram, times
  unchanged), ended either by completion or by an abort at a real-time decision;
- a drive pulse R_axis(angle) plays with phase `axis - frame` (degrees), where the frame of a qubit is
  the sum of every virtual Z so far (VZ ops and the calibrated phase corrections of CZ and ECR gates);
  QICK phase phi rotates about cos(phi) X + sin(phi) Y;
- a result bit is 1 when the accumulated I of the readout (rotated by the calibrated angle in the
  readout's down-conversion phase) is above the calibrated threshold: I >= floor(threshold) + 1;
- a result reaches the tProc input `INPUT_DELAY_S` after its window ends; a decision at `t` (the
  decision point's time, window end + the device's latency) reads after the data arrived and branches with
  the reference time already advanced to `t`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from ctrl.compile.dd import is_dd
from ctrl.compile.timed import TimedProgram
from ctrl.errors import CtrlError

if TYPE_CHECKING:
    from ctrl.device import Device

INPUT_DELAY_S = 0.1e-6  # window end -> value at the tProc input port (QICK labs: wait_auto(0.1))
MIN_ISSUE_S = 0.1e-6  # at least this much of the decision latency is left to read, test and issue
INITIAL_DELAY_S = 1.0e-6  # slack before the first reset (AveragerProgramV2's initial_delay)
TRIGGER_WIDTH = 10  # timing cycles a readout trigger stays high (qick's default)
WAIT_OFFSET = 10  # qick's WAIT releases this many cycles before its target (Assembler.WAIT_TIME_OFFSET)


# ------------------------------------------------------------------------------------------ the plan


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
        # the instance dict directly (as NativeOp does): the frozen __init__ sets 14 fields one by one
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


# ------------------------------------------------------------------------------------------ lowering


def plan_program(device, program: TimedProgram, attempts: int, firmware: dict | None = None) -> dict[str, BoardPlan]:
    """One plan per board the program uses (a board holding any of its channels or qubits). `firmware`
    maps a board to the description to compile against instead of the device file's."""
    return lower(device, program, attempts, firmware)[0]


def lower(device, program: TimedProgram, attempts: int, firmware: dict | None = None):
    """(plans, the lowering): the lowering is a `Units` whose `pulse` memo, frame `tape`, `corrections`
    and `readout_users` say what each pulse was computed from (the emitter keeps them for a patch)."""
    lo = _Lowering(device, program, firmware or {})
    return lo.run(attempts), lo


def board_firmware(device, board: str, firmware: dict) -> dict:
    """The firmware description a board is compiled against, checked to be a tProc v2 that qick supports."""
    fw = firmware[board] if board in firmware else device.firmware_config(board)
    tp = fw.get("tprocs", [{}])[0]
    if tp.get("type") != "qick_processor":
        raise CtrlError(
            f"board {board}: firmware has a tProc of type {tp.get('type')!r} (tProc v1); the QICK emitter targets "
            "tProc v2 (qick_processor)"
        )
    if not 21 <= int(tp.get("revision", 0)) <= 27:
        raise CtrlError(f"board {board}: tProc v2 revision {tp.get('revision')}: qick 0.2.436 assembles 21..27")
    return fw


@dataclass
class _Measure:
    key: str
    qubit: str
    board: str
    ro: int
    port: int
    trig: int  # attempt time
    end: float  # window end, exact timing cycles
    threshold: int


class Pulse(NamedTuple):
    """The part of a Play that its calibration fixes, before the frame: what a pulse-only recompile
    recomputes (`Units.pulse`). `phase` says how the frame of `frame` enters the phase, in radians:
    ("rot", axis, extra): axis - F + extra; ("sub", c): c - F; ("neg",): -F; ("zero",): 0."""

    board: str
    gen: int
    style: str
    envelope: Envelope | None
    cycles: int
    freq_hz: float
    gain: float  # before the [0, 1] check
    outsel: str
    ro: int
    phase: tuple
    frame: str | None


class _Role:
    """A role key written into a message only if there is one (repr is not free)."""

    __slots__ = ("key",)

    def __init__(self, key: tuple) -> None:
        self.key = key

    def __format__(self, spec: str) -> str:
        return format(repr(self.key), spec)

    __str__ = __repr__ = lambda self: repr(self.key)  # noqa: E731


def play_phase(spec: tuple, frame: float) -> float:
    """A pulse's phase in radians in the frame `frame` (the lowering and the patch both use this)."""
    kind = spec[0]
    if kind == "rot":
        return spec[1] - frame + spec[2]
    if kind == "sub":
        return spec[1] - frame
    if kind == "neg":
        return -frame
    return 0.0


class Units:
    """Unit conversions, calibrated pulses and readout declarations of a device against its boards'
    firmware: what the lowering reads from the calibration, and all a pulse-only patch needs to read it
    again (`ctrl.backends.qick.patch`)."""

    def __init__(self, device: Device, clock_hz: float, fw: dict[str, dict]) -> None:
        self.device = device
        self.target = device.target
        self.clk = clock_hz
        self.fw = fw
        self._pulses: dict[tuple, Pulse] = {}
        self._shapes: dict[tuple, tuple] = {}
        # readout declarations, filled by use_readout
        self.mux_tones: dict[tuple[str, int], dict[int, tuple[float, float]]] = {}
        self.ro_gen: dict[tuple[str, int], int] = {}
        self.readouts: dict[str, dict[int, RoDecl]] = {b: {} for b in fw}
        self.ro_owner: dict[tuple[str, int], str] = {}  # static readout -> its qubit
        self.configs: dict[str, dict[str, ConfigDecl]] = {b: {} for b in fw}
        self.readout_users: list[str] = []  # qubits in the order their readouts were first declared
        self._users: set[str] = set()

    # --- device lookups, indexed once in the device's Target
    def wiring(self, q: str):
        return self.target.qubit_wiring(q)

    def coupler_wiring(self, a: str, b: str):
        return self.target.coupler_wiring(a, b)

    # --- unit helpers
    def gencfg(self, board: str, gen: int) -> dict:
        return self.fw[board]["gens"][gen]

    def rocfg(self, board: str, ro: int) -> dict:
        return self.fw[board]["readouts"][ro]

    def fabric_cycles(self, board: str, gen: int, seconds: float) -> int:
        """A calibrated length in generator fabric cycles, never longer than calibrated."""
        return int(math.floor(seconds * self.gencfg(board, gen)["f_fabric"] * 1e6 + 1e-6))

    def span(self, board: str, gen: int, cycles: int) -> int:
        """Timing cycles a waveform of `cycles` fabric cycles occupies (rounded up)."""
        return math.ceil(cycles * self.clk / (self.gencfg(board, gen)["f_fabric"] * 1e6) - 1e-9)

    def delay(self, channel) -> int:
        return int(round(channel.delay_s * self.clk))

    def shape(self, board: str, gen: int, pulse, seconds: float, what: str, anharmonicity_hz: float = 0.0):
        """(style, envelope, fabric cycles) of a calibrated pulse of `seconds`."""
        key = (board, gen, id(pulse), seconds, anharmonicity_hz)  # pulse: a part of self.device, alive as long
        got = self._shapes.get(key)
        if got is None:
            got = self._shapes[key] = self._shape(board, gen, pulse, seconds, what, anharmonicity_hz)
        return got

    def _shape(self, board: str, gen: int, pulse, seconds: float, what: str, anharmonicity_hz: float):
        g = self.gencfg(board, gen)
        cycles = self.fabric_cycles(board, gen, seconds)
        if pulse.shape == "const":
            return "const", None, cycles
        if "n_tones" in g:
            raise CtrlError(
                f"board {board} gen {gen}: {what}: a multiplexed generator plays constant tones only, not {pulse.shape}"
            )
        spc = g["samps_per_clk"]
        per_s = g["f_fabric"] * 1e6 * spc
        n = cycles * spc
        if pulse.shape == "gaussian":
            env = Envelope(gen, "gaussian", n, sigma=pulse.sigma_s * per_s)
        elif pulse.shape == "drag":
            if not g.get("complex_env", True):
                raise CtrlError(f"board {board} gen {gen}: {what}: DRAG needs a complex envelope; this one is real")
            env = Envelope(gen, "drag", n, sigma=pulse.sigma_s * per_s, delta=anharmonicity_hz / per_s,
                           alpha=pulse.drag_coefficient)  # fmt: skip
        elif pulse.shape in ("flat_top", "net_zero"):
            rise = int(round(pulse.rise_s * per_s))
            edges = 4 if pulse.shape == "net_zero" else 2
            if edges * rise > n:
                raise CtrlError(f"board {board} gen {gen}: {what}: {edges} edges of {rise} samples exceed {n} samples")
            env = Envelope(gen, pulse.shape, n, rise=rise)
        else:
            raise CtrlError(f"board {board} gen {gen}: {what}: pulse shape {pulse.shape!r} has no QICK envelope")
        return "arb", env, cycles

    # --- calibrated pulses, by role
    def pulse(self, key: tuple, what: str = "") -> Pulse:
        """The calibrated pulse of a role:
        ("rot", q, angle, axis)   a rotation of q by `angle` about `axis` (x90 or x180, scaled);
        ("cz", a, b)              the coupler's flux pulse;
        ("cr", c, t, first)       a cross-resonance segment of ECR(c, t) (the first one at phase + pi);
        ("echo", c)               the echo X180 of ECR's control;
        ("canc", c, t, extra)     a cancellation segment on t's drive;
        ("ro", q)                 q's readout pulse (not on a multiplexed generator);
        ("flip", q)               q's X180 of the active reset;
        ("dd", q, axis)           an echo pulse of dynamical decoupling: q's X180 about `axis`, frame-free."""
        p = self._pulses.get(key)
        if p is None:
            p = self._pulses[key] = self._pulse(key, what or _Role(key))
        return p

    def _pulse(self, key: tuple, what: str) -> Pulse:
        dev = self.device
        kind = key[0]
        if kind == "rot":
            _, q, angle, axis = key
            cal = dev.qubit(q)
            gate, turn = (cal.x90, math.pi / 2) if abs(angle) <= math.pi / 2 + 1e-9 else (cal.x180, math.pi)
            ch = self.wiring(q).drive
            shape = self.shape(ch.board, ch.gen, gate.pulse, gate.duration_s, what, cal.anharmonicity_hz)
            return self._made(ch.board, ch.gen, shape, cal.frequency_hz, gate.pulse.amplitude * abs(angle) / turn,
                              None, -1, ("rot", axis, math.pi if angle < 0 else 0.0), q)  # fmt: skip
        if kind == "cz":
            _, a, b = key
            cal = dev.coupler(a, b)
            element = cal.flux_pulse.element
            wiring = self.coupler_wiring(a, b) if element == "coupler" else self.wiring(element)
            line = wiring.flux if wiring is not None else None
            if line is None:
                raise CtrlError(f"{what}: the flux line of {element} is not wired")
            shape = self.shape(line.board, line.gen, cal.flux_pulse.pulse, cal.duration_s, what)
            return self._made(line.board, line.gen, shape, 0.0, cal.flux_pulse.pulse.amplitude,
                              "input" if shape[0] == "arb" else "dds", -1, ("zero",), None)  # fmt: skip
        if kind in ("cr", "canc"):
            c, t = key[1], key[2]
            cal = dev.coupler(c, t)
            if cal.control != c:
                raise CtrlError(f"{what}: the calibrated control of {c}-{t} is {cal.control}")
            tcal = dev.qubit(t)
            if kind == "cr":
                cw = self.wiring(c).drive
                shape = self.shape(cw.board, cw.gen, cal.cr_pulse, cal.cr_segment_s, what)
                phase = cal.cr_phase_rad + math.pi if key[3] else cal.cr_phase_rad
                return self._made(cw.board, cw.gen, shape, tcal.frequency_hz, cal.cr_pulse.amplitude, None, -1,
                                  ("sub", phase), t)  # fmt: skip
            tw = self.wiring(t).drive
            shape = self.shape(tw.board, tw.gen, cal.cancellation_pulse, cal.cr_segment_s, what)
            return self._made(tw.board, tw.gen, shape, tcal.frequency_hz, cal.cancellation_pulse.amplitude, None, -1,
                              ("sub", cal.cancellation_phase_rad + key[3]), t)  # fmt: skip
        if kind == "dd":
            _, q, axis = key
            cal = dev.qubit(q)
            ch = self.wiring(q).drive
            shape = self.shape(ch.board, ch.gen, cal.x180.pulse, cal.x180.duration_s, what, cal.anharmonicity_hz)
            return self._made(ch.board, ch.gen, shape, cal.frequency_hz, cal.x180.pulse.amplitude, None, -1,
                              ("rot", axis, 0.0), None)  # fmt: skip
        if kind in ("echo", "flip"):
            q = key[1]
            cal = dev.qubit(q)
            ch = self.wiring(q).drive
            shape = self.shape(ch.board, ch.gen, cal.x180.pulse, cal.x180.duration_s, what, cal.anharmonicity_hz)
            if kind == "echo":
                return self._made(ch.board, ch.gen, shape, cal.frequency_hz, cal.x180.pulse.amplitude, None, -1,
                                  ("neg",), q)  # fmt: skip
            return self._made(ch.board, ch.gen, shape, cal.frequency_hz, cal.x180.pulse.amplitude, None, -1,
                              ("zero",), None)  # fmt: skip
        if kind == "ro":
            q = key[1]
            cal, w, freq, _ = self.readout_params(q)
            shape = self.shape(w.board, w.gen, cal.pulse, cal.pulse_duration_s, what)
            return self._made(w.board, w.gen, shape, freq, cal.pulse.amplitude, None, w.ro, ("zero",), None)
        raise CtrlError(f"internal: no pulse role {key!r}")

    @staticmethod
    def _made(board, gen, shape, freq, gain, outsel, ro, phase, frame) -> Pulse:
        style, env, cycles = shape
        if outsel is None:
            outsel = "dds" if style == "const" else "product"
        return Pulse(board, gen, style, env, cycles, freq, gain, outsel, ro, phase, frame)

    # --- readouts
    def readout_params(self, q: str):
        cal = self.device.qubit(q).readout
        w = self.wiring(q).readout
        freq = abs(cal.frequency_hz - w.lo_frequency_hz) if w.lo_frequency_hz else cal.frequency_hz
        return cal, w, freq, -math.degrees(cal.iq_rotation_rad) % 360.0

    def threshold(self, q: str) -> int:
        thr = math.floor(self.device.qubit(q).readout.threshold) + 1
        if not -(2**23) <= thr < 2**23:
            raise CtrlError(f"qubit {q}: readout threshold {thr} does not fit the tProc's 24-bit immediate operand")
        return thr

    def use_readout(self, q: str, what: str):
        """Declare q's readout path; returns (cal, wiring, window cycles, window timing cycles)."""
        cal, w, freq, phase = self.readout_params(q)
        if q not in self._users:
            self._users.add(q)
            self.readout_users.append(q)
        board, gen, ro = w.board, w.gen, w.ro
        r, g = self.rocfg(board, ro), self.gencfg(board, gen)
        f_out = r["f_output"] * 1e6
        cycles = int(math.floor(cal.window_s * f_out + 1e-6))
        window = cycles * self.clk / f_out
        if self.ro_gen.setdefault((board, ro), gen) != gen:
            raise CtrlError(
                f"board {board} ro {ro}: fed by generators {self.ro_gen[(board, ro)]} and {gen} ({what}); "
                "one readout, one generator"
            )
        old = self.readouts[board].get(ro)
        dynamic = r.get("tproc_ctrl") is not None
        if old is not None and old.cycles != cycles:
            raise CtrlError(
                f"board {board} ro {ro}: windows of {old.cycles} and {cycles} readout cycles ({what}) on one readout "
                "channel, whose window length is fixed for a program"
            )
        if dynamic:
            self.readouts[board][ro] = RoDecl(ro, cycles, True)
            name = f"ro{ro}_{q}"
            self.configs[board][name] = ConfigDecl(name, ro, freq, phase, gen)
        else:
            owner = self.ro_owner.setdefault((board, ro), q)
            if owner != q:
                raise CtrlError(
                    f"board {board} ro {ro}: {r.get('ro_type')} has one frequency per program; it cannot read both "
                    f"{owner} and {q} ({what})"
                )
            self.readouts[board][ro] = RoDecl(ro, cycles, False, freq, phase, gen)
        if "n_tones" in g:
            if w.tone is None or not 0 <= w.tone < g["n_tones"]:
                raise CtrlError(
                    f"board {board} gen {gen}: {what}: tone {w.tone} is not one of the {g['n_tones']} tones of this "
                    "multiplexed generator"
                )
            if cal.pulse.shape != "const":
                raise CtrlError(f"board {board} gen {gen}: {what}: a multiplexed readout pulse must be const")
            tones = self.mux_tones.setdefault((board, gen), {})
            prev = tones.setdefault(w.tone, (freq, cal.pulse.amplitude))
            if prev != (freq, cal.pulse.amplitude):
                raise CtrlError(
                    f"board {board} gen {gen}: tone {w.tone} plays {prev[0] / 1e6:.6f} MHz at gain {prev[1]} and "
                    f"{freq / 1e6:.6f} MHz at gain {cal.pulse.amplitude} ({what}): one tone, one setting"
                )
        return cal, w, freq, cycles, window


    def gen_decl(self, board: str, gen: int, freqs: set) -> GenDecl:
        """A generator's declaration: Nyquist zone, mixer between its tones, mux tones."""
        g = self.gencfg(board, gen)
        ro = min((r for (b, r), gg in self.ro_gen.items() if b == board and gg == gen), default=None)
        tones = self.mux_tones.get((board, gen))
        mux_freqs: tuple = ()
        mux_gains: tuple = ()
        if tones is not None:
            n = max(tones) + 1
            fill = tones[min(tones)][0]
            mux_freqs = tuple(tones[i][0] if i in tones else fill for i in range(n))
            mux_gains = tuple(tones[i][1] if i in tones else 0.0 for i in range(n))
            freqs = {f for f, _ in tones.values()}
        top = max(freqs, default=0.0)
        nqz = 2 if top > g["fs"] * 1e6 / 2 else 1
        mixer = None
        if g.get("has_mixer"):
            low, high = min(freqs, default=0.0), max(freqs, default=0.0)
            reach = g["f_dds"] * 1e6 * 0.98
            if high - low > reach:
                raise CtrlError(
                    f"board {board} gen {gen}: tones from {low / 1e6:.3f} to {high / 1e6:.3f} MHz do not fit the "
                    f"generator's {g['f_dds']:.2f} MHz range around one mixer frequency"
                )
            mixer = (low + high) / 2
        return GenDecl(gen, nqz, mixer, mux_freqs, mux_gains, ro)


class _Lowering(Units):
    def __init__(self, device, program: TimedProgram, firmware: dict) -> None:
        self.program = program
        boards = set()
        for t in program.ops:
            for ch in t.channels:
                if "/" in ch:
                    boards.add(ch.split("/")[0])
        for q in program.qubits:
            w = device.target.qubit_wiring(q)
            boards.update({w.drive.board, w.readout.board})
        self.boards = sorted(boards)
        clk = program.clock_hz
        fws: dict[str, dict] = {}
        for b in self.boards:
            fw = board_firmware(device, b, firmware)
            f_time = fw["tprocs"][0]["f_time"] * 1e6
            if abs(f_time - clk) > 1e-3:
                raise CtrlError(
                    f"board {b}: clock-grid: the timed program counts cycles of {clk / 1e6:.6g} MHz but the "
                    f"tProc timing clock is {f_time / 1e6:.6g} MHz"
                )
            fws[b] = fw
        super().__init__(device, clk, fws)
        latency = device.wiring.controller.readout_to_decision_latency_s
        self.delta = math.ceil(INPUT_DELAY_S * self.clk - 1e-9)
        self.latency = int(round(latency * self.clk))
        if latency < INPUT_DELAY_S + MIN_ISSUE_S - 1e-12:
            raise CtrlError(
                f"controller.readout_to_decision_latency_s {latency:g} s: the tProc needs {INPUT_DELAY_S:g} s for the "
                f"result to arrive and {MIN_ISSUE_S:g} s to read, test and issue; at least "
                f"{INPUT_DELAY_S + MIN_ISSUE_S:g} s"
            )
        # shared bookkeeping, filled by the attempt and the reset
        self.items: dict[str, list] = {b: [] for b in self.boards}
        self.reset_items: dict[str, list] = {b: [] for b in self.boards}
        self.gen_freqs: dict[tuple[str, int], set] = {}
        self.measures: dict[str, _Measure] = {}
        self.frames: dict[str, float] = {}
        # every frame increment in order, per qubit: a VZ angle (float), or ("cz", a, b) / ("ecr", c, t) for a
        # gate's calibrated correction; a pulse records how many of its frame's increments precede it
        self.tape: dict[str, list] = {}
        self.corrections: dict[tuple[str, str], tuple] = {}  # gate -> ((qubit, radians), ...) it applied

    def turn(self, q: str, angle: float, entry) -> None:
        self.frames[q] = self.frames.get(q, 0.0) + angle
        self.tape.setdefault(q, []).append(entry)

    def play(self, out: list, key: tuple, t: int, end: int, what: str) -> Play:
        """Append the pulse of role `key` at `t`, in the current frame."""
        p = self.pulse(key, what)
        if not 0 <= p.gain <= 1.0 + 1e-9:
            raise CtrlError(f"board {p.board} gen {p.gen}: {what}: gain {p.gain:.4g} is outside [0, 1] of full scale")
        self.gen_freqs.setdefault((p.board, p.gen), set()).add(p.freq_hz)
        if p.frame is None:
            frame, n = 0.0, -1
        else:
            frame, n = self.frames.get(p.frame, 0.0), len(self.tape.get(p.frame, ()))
        play = Play(t=t, gen=p.gen, style=p.style, cycles=p.cycles, end_limit=end, what=what, freq_hz=p.freq_hz,
                    phase_deg=math.degrees(play_phase(p.phase, frame)) % 360.0, gain=min(p.gain, 1.0),
                    envelope=p.envelope, outsel=p.outsel, ro=p.ro, role=(key, n))  # fmt: skip
        out.append(play)
        return play

    def run(self, attempts: int) -> dict[str, BoardPlan]:
        prog = self.program
        mux_groups: dict[tuple[str, int, int], list] = {}
        for t in prog.ops:
            op = t.op
            name = op.name
            if name == "VZ":
                self.turn(op.qubits[0], op.angle, op.angle)
            elif name == "PREP":
                pass
            elif name in ("RX", "RY"):
                q, axis = op.qubits[0], 0.0 if name == "RX" else math.pi / 2
                # An echo sequence is the identity about any axis: played in the fixed frame, each qubit's
                # echo pulses are two waveforms, not one per frame it happens to be in.
                self.drive(q, ("dd", q, axis) if is_dd(op) else ("rot", q, op.angle, axis), t, repr(t))
            elif name == "CZ":
                self.cz(t, repr(t))
            elif name == "ECR":
                self.ecr(t, repr(t))
            elif name == "MEASURE":
                self.measure(t, repr(t), mux_groups)
            else:
                raise CtrlError(f"{t!r}: no QICK lowering for native op {name}")
        for (board, gen, start), members in sorted(mux_groups.items()):
            self.items[board].append(Play(
                t=start, gen=gen, style="mux", cycles=max(m[1] for m in members), end_limit=max(m[2] for m in members),
                what=" + ".join(m[3] for m in members), tones=tuple(sorted(m[0] for m in members)),
            ))  # fmt: skip
        realtime, post = self.decisions()
        reset_len, heralded = self.reset()
        gens = {b: {} for b in self.boards}
        for (board, gen), freqs in sorted(self.gen_freqs.items()):
            gens[board][gen] = self.gen_decl(board, gen, freqs)
        for (board, gen) in sorted(self.mux_tones):
            gens[board][gen] = self.gen_decl(board, gen, set())
        plans = {}
        for b in self.boards:
            self.items[b] = self.free_ports(b, self.items[b])
            self.reset_items[b] = self.free_ports(b, self.reset_items[b])
            attempt, aborts, registers = self.attempt(b, realtime)
            reset = Block(tuple(_order(self.reset_items[b], [])), reset_len)
            labels: dict[int, list[str]] = {}
            for blk in (reset, attempt):
                trs = sorted((i for i in blk.items if isinstance(i, Trigger)), key=lambda i: (i.t, i.ro))
                for it in trs:
                    labels.setdefault(it.ro, []).append(it.label)
            plans[b] = BoardPlan(
                board=b, clock_hz=self.clk, initial=int(round(INITIAL_DELAY_S * self.clk)), attempts=attempts,
                gens=dict(sorted(gens[b].items())), readouts=dict(sorted(self.readouts[b].items())),
                configs=dict(sorted(self.configs[b].items())), reset=reset, attempt=attempt, aborts=aborts,
                registers=registers, readout_labels={k: tuple(v) for k, v in sorted(labels.items())},
                heralded=tuple(heralded[b]), post_selected=post,
            )  # fmt: skip
        return plans

    def free_ports(self, board: str, items: list) -> list:
        """A tProc output port takes one write per cycle; a dynamic readout's configuration shares its port
        with generators (the tmux), so it moves to the first free cycle before its window (it only has to
        land between the previous window and the next trigger)."""
        taken: set[tuple[int, int]] = set()
        for it in items:
            p = it.play if isinstance(it, Flip) else it
            if isinstance(p, Play):
                taken.add((self.gencfg(board, p.gen)["tproc_ch"], p.t))
        out = []
        trig_of = {}
        for it in items:
            if isinstance(it, Trigger):
                trig_of.setdefault((it.ro, it.what), it.t)
        for it in items:
            if isinstance(it, Configure):
                port = self.rocfg(board, it.ro)["tproc_ctrl"]
                t = it.t
                while (port, t) in taken:
                    t += 1
                limit = trig_of.get((it.ro, it.what))
                if limit is not None and t >= limit:
                    raise CtrlError(
                        f"board {board} ro {it.ro}: {it.what}: no free cycle on port {port} for the readout "
                        "configuration before the window"
                    )
                taken.add((port, t))
                it = Configure(t, it.ro, it.name, it.what)
            out.append(it)
        return out


    def drive(self, q: str, key: tuple, t, what: str) -> None:
        """Play the pulse of role `key` on q's drive line, over t's interval."""
        ch = self.wiring(q).drive
        d = self.delay(ch)
        self.play(self.items[ch.board], key, t.start + d, t.end + d, what)

    def cz(self, t, what: str) -> None:
        a, b = t.op.qubits
        p = self.pulse(("cz", a, b), what)
        cal = self.device.coupler(a, b)
        element = cal.flux_pulse.element
        wiring = self.coupler_wiring(a, b) if element == "coupler" else self.wiring(element)
        d = self.delay(wiring.flux)
        self.play(self.items[p.board], ("cz", a, b), t.start + d, t.end + d, what)
        self.corrections[(a, b)] = t.op.phases
        for q, v in t.op.phases:
            self.turn(q, v, ("cz", a, b))

    def ecr(self, t, what: str) -> None:
        c, tq = t.op.qubits
        cal = self.device.coupler(c, tq)
        seg = self.pulse(("cr", c, tq, True), what)
        echo = self.pulse(("echo", c), what)
        cw, tw = self.wiring(c).drive, self.wiring(tq).drive
        dc = self.delay(cw)
        t0 = t.start + dc
        t_echo = t0 + self.span(cw.board, cw.gen, seg.cycles)
        t_seg2 = t_echo + self.span(cw.board, cw.gen, echo.cycles)
        out, end = self.items[cw.board], t.end + dc
        # natives' ECR = RZX(pi/4) X_c RZX(-pi/4): in time order the CR tone at phase + pi, the echo, the CR tone
        self.play(out, ("cr", c, tq, True), t0, end, what)
        self.play(out, ("echo", c), t_echo, end, what)
        self.play(out, ("cr", c, tq, False), t_seg2, end, what)
        if cal.cancellation_pulse is not None:
            dt = self.delay(tw)
            for when, extra in ((t.start, math.pi), (t_seg2 - dc, 0.0)):
                self.play(self.items[tw.board], ("canc", c, tq, extra), when + dt, t.end + dt, what)
        corrections = cal.virtual_z_rad()
        self.corrections[(c, tq)] = tuple(corrections)
        for q, v in corrections:
            self.turn(q, v, ("ecr", c, tq))

    def measure(self, t, what: str, mux_groups: dict) -> None:
        q = t.op.qubits[0]
        cal, w, freq, cycles, window = self.use_readout(q, what)
        board, gen, ro = w.board, w.gen, w.ro
        r, g = self.rocfg(board, ro), self.gencfg(board, gen)
        d = self.delay(w)
        start, end = t.start + d, t.end + d
        trig = start + int(round(cal.time_of_flight_s * self.clk))
        out = self.items[board]
        if r.get("tproc_ctrl") is not None:
            out.append(Configure(start, ro, f"ro{ro}_{q}", what))
        if "n_tones" in g:
            pc = self.fabric_cycles(board, gen, cal.pulse_duration_s)
            mux_groups.setdefault((board, gen, start), []).append((w.tone, pc, end, what))
        else:
            self.play(out, ("ro", q), start, end, what)
        out.append(Trigger(trig, ro, window, t.op.key, what))
        self.measures[t.op.key] = _Measure(t.op.key, q, board, ro, int(r.get("tproc_ch", -1)), trig, trig + window,
                                           self.threshold(q))  # fmt: skip

    # --- decisions
    def decisions(self):
        """Which decisions the tProc takes in real time; the rest are post-selected, with the reason."""
        rule = self.program.decisions
        linked = self.device.wiring.controller.inter_board_latency_s is not None
        realtime, post = [], []
        for d in rule.points:
            reason = ""
            if len(self.boards) > 1:
                reason = (f"the program spans boards {', '.join(self.boards)}: an abort on one board cannot stop the "
                          + ("others (no real-time link)" if not linked else "others (no qnet/qcom in the firmware)"))
            elif not d.realtime:
                reason = "a result of these checks cannot reach the deciding tProc in time (readout without feedback)"
            else:
                for r in rule.rules_of(d):
                    for k in r.keys:
                        m = self.measures[k]
                        if m.port < 0:
                            reason = f"readout ro {m.ro} of {m.qubit} does not feed the tProc (tproc_ch -1)"
            if reason:
                post.append(PostSelected(d.index, rule.names(d), reason))
            else:
                realtime.append(d)
        return realtime, tuple(post)

    def attempt(self, board: str, realtime):
        prog = self.program
        rule = prog.decisions
        items = self.items[board]
        keys_of = {r.name: r.keys for r in rule.rules}
        by_ro: dict[int, list[Trigger]] = {}
        for tr in sorted((i for i in items if isinstance(i, Trigger)), key=lambda i: (i.t, i.ro)):
            by_ro.setdefault(tr.ro, []).append(tr)

        def arrives(m: _Measure) -> int:
            return math.ceil(m.end - 1e-9) + self.delta

        def overwritten(m: _Measure) -> float:
            """When a later window on the same readout replaces m's value at the port."""
            later = [tr.end for tr in by_ro.get(m.ro, []) if tr.t > m.trig]
            return math.ceil(min(later) - 1e-9) + self.delta if later else math.inf

        def read_of(m: _Measure) -> Read:
            return Read(m.ro, m.port, arrives(m), m.threshold, m.key, m.qubit)

        decisions = [d for d in realtime if all(self.measures[k].board == board for r in rule.rules_of(d) for k in r.keys)]
        direct: dict[int, list[Read]] = {}
        reg_checks: dict[int, list[str]] = {}
        captures: dict[str, list[tuple[int, str]]] = {}
        for d in decisions:
            for c in rule.names(d):
                keys = keys_of[c]
                m0 = self.measures[keys[0]]
                if len(keys) == 1 and overwritten(m0) > d.time:
                    direct.setdefault(d.index, []).append(read_of(m0))
                    continue
                reg_checks.setdefault(d.index, []).append(c)
                for k in keys:
                    m = self.measures[k]
                    cap = int(min(d.time, overwritten(m) - 1))
                    if arrives(m) + WAIT_OFFSET > cap:
                        raise CtrlError(
                            f"board {board}: check {c}: result {k} arrives at cycle {arrives(m)} and another window on "
                            f"ro {m.ro} replaces it before it can be read"
                        )
                    captures.setdefault(k, []).append((cap, c))
        # parity registers over live intervals (first capture .. decision); r0 counts attempts
        start_of: dict[str, int] = {}
        for caps in captures.values():
            for cap, c in caps:
                start_of[c] = min(start_of.get(c, cap), cap)
        end_of = {c: d.time for d in decisions for c in reg_checks.get(d.index, [])}
        dreg = int(self.fw[board]["tprocs"][0].get("dreg_qty", 16))
        reg_of: dict[str, int] = {}
        busy: list[tuple[int, int]] = []  # (free from, register)
        used = 0
        for c in sorted(start_of, key=lambda c: (start_of[c], c)):
            ready = sorted(r for f, r in busy if f <= start_of[c])
            if ready:
                reg = ready[0]
                busy = [(f, r) for f, r in busy if r != reg]
            else:
                used += 1
                reg = used
                if reg >= dreg:
                    raise CtrlError(
                        f"board {board}: data registers: check {c} needs a parity register r{reg}, but the tProc has "
                        f"{dreg} (dreg_qty; r0 counts attempts)"
                    )
            reg_of[c] = reg
            busy.append((end_of[c] + 1, reg))
        sync: list = []
        seen: set[str] = set()
        for k in sorted(captures, key=lambda k: (min(c for c, _ in captures[k]), k)):
            at: dict[int, list[str]] = {}
            for cap, c in captures[k]:
                at.setdefault(cap, []).append(c)
            for cap, cs in sorted(at.items()):
                regs = []
                for c in sorted(cs):
                    regs.append((reg_of[c], c not in seen))
                    seen.add(c)
                sync.append(Capture(cap, read_of(self.measures[k]), tuple(regs)))
        for d in decisions:
            sync.append(Decision(d.index, d.time, tuple(direct.get(d.index, ())),
                                 tuple(reg_of[c] for c in reg_checks.get(d.index, [])), rule.names(d)))  # fmt: skip
        # latest end of anything started before a time: a running maximum over the items by start
        ends = sorted((it.key, it.t + self.span(board, it.gen, it.cycles) if isinstance(it, Play)
                       else math.ceil(it.end - 1e-9)) for it in items if isinstance(it, (Play, Trigger)))  # fmt: skip
        starts, latest, top = [], [], -math.inf
        for key, end in ends:
            top = max(top, end)
            starts.append(key)
            latest.append(top)
        aborts = {d.index: self.abort_block(board, d.time, starts, latest, by_ro) for d in decisions}
        return Block(tuple(_order(items, sync)), prog.duration), aborts, used

    def abort_block(self, board: str, t_dec: int, starts: list, latest: list, by_ro) -> Block:
        """What an abort at t_dec plays: nothing new until everything in flight has ended; meanwhile the
        readouts' remaining windows of the attempt, as dummy triggers (a fixed trigger count per slot).
        `latest[i]`: the latest end of the pulses and windows starting at or before `starts[i]`."""
        before = bisect.bisect_left(starts, t_dec)
        spill = max(0, latest[before - 1] - t_dec) if before else 0
        dummies = []
        length = spill
        for ro, trs in sorted(by_ro.items()):
            left = [tr for tr in trs if tr.t >= t_dec]
            if not left:
                continue
            free = max([math.ceil(tr.end - 1e-9) for tr in trs if tr.t < t_dec] + [t_dec]) - t_dec
            step = math.ceil(left[0].window - 1e-9) + TRIGGER_WIDTH
            for i, tr in enumerate(left):
                at = free + i * step
                dummies.append(Trigger(at, ro, tr.window, "dummy", f"dummy readout for {tr.label}"))
                length = max(length, at + step)
        return Block(tuple(sorted(dummies, key=lambda i: (i.t, i.ro))), length)

    # --- reset
    def reset(self):
        """Fill reset_items per board; return (length, heralded qubits per board). Active reset measures every
        qubit and flips those that read 1, if the result reaches the tProc of the board driving it (else the
        result is only recorded: a heralded reset); passive reset waits. One length for all boards."""
        dev, prog = self.device, self.program
        heralded: dict[str, list[str]] = {b: [] for b in self.boards}
        ends: list[int] = [prog.abort_duration]
        ro_free: dict[tuple[str, int], int] = {}
        gen_free: dict[tuple[str, int], int] = {}
        mux: dict[tuple[str, int], list] = {}
        flips: list[tuple[str, str, int, Read, object]] = []
        for q in sorted(prog.qubits, key=_natural):
            cal = dev.qubit(q)
            method = cal.readout.reset.method
            if method == "passive":
                ends.append(int(math.ceil(cal.readout.reset.duration_s * self.clk - 1e-6)))
                continue
            if method != "active":
                raise CtrlError(
                    f"qubit {q}: reset method {method!r} needs a calibrated reset drive, which the device file "
                    "does not describe; the QICK emitter supports active and passive reset"
                )
            what = f"reset of {q}"
            rcal, w, freq, cycles, window = self.use_readout(q, what)
            board, gen, ro = w.board, w.gen, w.ro
            g, r = self.gencfg(board, gen), self.rocfg(board, ro)
            d = self.delay(w)
            tof = int(round(rcal.time_of_flight_s * self.clk))
            busy = max(int(math.ceil(rcal.pulse_duration_s * self.clk - 1e-6)), tof + math.ceil(window - 1e-9))
            out = self.reset_items[board]
            if "n_tones" in g:
                start = 0  # every reset readout of a mux generator goes together, first
                mux.setdefault((board, gen), []).append((w.tone, self.fabric_cycles(board, gen, rcal.pulse_duration_s),
                                                         busy, what))  # fmt: skip
            else:
                start = max(ro_free.get((board, ro), 0), gen_free.get((board, gen), 0))
                if r.get("tproc_ctrl") is not None:
                    out.append(Configure(start + d, ro, f"ro{ro}_{q}", what))
                self.play(out, ("ro", q), start + d, start + d + busy, what)
                gen_free[(board, gen)] = start + busy
            ro_free[(board, ro)] = start + busy
            out.append(Trigger(start + d + tof, ro, window, f"reset:{q}", what))
            ends.append(start + d + busy)
            drive = self.wiring(q).drive
            port = int(r.get("tproc_ch", -1))
            if port < 0 or not w.feedback or drive.board != board:
                heralded[board].append(q)
                continue
            arrive = math.ceil(start + d + tof + window - 1e-9) + self.delta
            flips.append((board, q, arrive, Read(ro, port, arrive, self.threshold(q), f"reset:{q}", q), drive))
        for (board, gen), members in sorted(mux.items()):
            self.reset_items[board].append(Play(
                t=0, gen=gen, style="mux", cycles=max(m[1] for m in members), end_limit=max(m[2] for m in members),
                what=" + ".join(m[3] for m in members), tones=tuple(sorted(m[0] for m in members)),
            ))  # fmt: skip
        for board, q, arrive, read, drive in sorted(flips, key=lambda f: (f[2], _natural(f[1]))):
            what = f"reset flip of {q}"
            flip = self.pulse(("flip", q), what)
            t_flip = max(arrive - self.delta + self.latency, gen_free.get((board, drive.gen), 0)) + self.delay(drive)
            span = self.span(board, drive.gen, flip.cycles)
            gen_free[(board, drive.gen)] = t_flip + span
            p = self.play([], ("flip", q), t_flip, t_flip + span, what)
            self.reset_items[board].append(Flip(read, p))
            ends.append(t_flip + span)
        return max(ends), heralded


def _order(items, sync) -> list:
    """Text order: by time; at one time, sync points (reads, branches) before the timed items they gate."""
    tagged = [(it.key, 0, i, it) for i, it in enumerate(sync)] + [(it.key, 1, i, it) for i, it in enumerate(items)]
    tagged.sort(key=lambda x: (x[0], x[1], x[2]))
    return [x[3] for x in tagged]


def _natural(name: str):
    head = name.rstrip("0123456789")
    tail = name[len(head):]
    return (head, int(tail) if tail else -1)
