"""`Units`: a device's calibrated pulses and readouts against its boards' firmware, in the plan's units.

Lengths in generator fabric cycles and timing cycles, envelopes in samples, frequencies and phases as the
generators and readouts take them, and the generators' and readouts' declarations. It reads the device's
`Target` (ctrl.device.target), never the device file's models; the lowering (plan.py) and a pulse-only
patch (patch.py) read the calibration through it, so both compute every pulse the same way.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ctrl.backends.qick.boardplan import ConfigDecl, Envelope, GenDecl, RoDecl
from ctrl.device.target import PulseShape, QubitPulses, QubitTarget, Target
from ctrl.errors import CtrlError


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
    """Unit conversions, calibrated pulses and readout declarations of a device (its Target) against its
    boards' firmware: what the lowering reads from the calibration, and all a pulse-only patch needs to
    read it again (`ctrl.backends.qick.patch`)."""

    def __init__(self, target: Target, clock_hz: float, fw: dict[str, dict]) -> None:
        self.target = target
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

    def qubit(self, q: str) -> tuple[QubitTarget, QubitPulses]:
        """q's numbers and what QICK plays on it."""
        qt = self.target.qubit(q)
        if qt.pulses is None:
            raise CtrlError(f"qubit {q}: its QICK pulses and readout are not calibrated in the device file")
        return qt, qt.pulses

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

    def shape(self, board: str, gen: int, pulse: PulseShape, seconds: float, what: str, anharmonicity_hz: float = 0.0):
        """(style, envelope, fabric cycles) of a calibrated pulse of `seconds`."""
        key = (board, gen, id(pulse), seconds, anharmonicity_hz)  # pulse: a part of self.target, alive as long
        got = self._shapes.get(key)
        if got is None:
            got = self._shapes[key] = self._shape(board, gen, pulse, seconds, what, anharmonicity_hz)
        return got

    def _shape(self, board: str, gen: int, pulse: PulseShape, seconds: float, what: str, anharmonicity_hz: float):
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

    def pulses(self) -> dict[tuple, Pulse]:
        """Every role asked of `pulse` so far, in the order first asked (a copy: the sheet keeps it)."""
        return dict(self._pulses)

    def _pulse(self, key: tuple, what: str) -> Pulse:
        kind = key[0]
        if kind == "rot":
            _, q, angle, axis = key
            qt, qp = self.qubit(q)
            small = abs(angle) <= math.pi / 2 + 1e-9
            pulse, seconds, turn = (qp.x90, qt.x90_s, math.pi / 2) if small else (qp.x180, qt.x180_s, math.pi)
            ch = self.wiring(q).drive
            shape = self.shape(ch.board, ch.gen, pulse, seconds, what, qp.anharmonicity_hz)
            return self._made(ch.board, ch.gen, shape, qp.frequency_hz, pulse.amplitude * abs(angle) / turn,
                              None, -1, ("rot", axis, math.pi if angle < 0 else 0.0), q)  # fmt: skip
        if kind == "cz":
            _, a, b = key
            gate = self.target.gate(a, b)
            line = self.target.flux_line(a, b)
            if line is None:
                raise CtrlError(f"{what}: the flux line of {gate.flux_element} is not wired")
            flux = gate.pulses.flux
            shape = self.shape(line.board, line.gen, flux, gate.duration_s, what)
            return self._made(line.board, line.gen, shape, 0.0, flux.amplitude,
                              "input" if shape[0] == "arb" else "dds", -1, ("zero",), None)  # fmt: skip
        if kind in ("cr", "canc"):
            c, t = key[1], key[2]
            gate = self.target.gate(c, t)
            if gate.control != c:
                raise CtrlError(f"{what}: the calibrated control of {c}-{t} is {gate.control}")
            gp, freq = gate.pulses, self.qubit(t)[1].frequency_hz
            if kind == "cr":
                cw = self.wiring(c).drive
                shape = self.shape(cw.board, cw.gen, gp.cr, gp.cr_segment_s, what)
                phase = gp.cr_phase_rad + math.pi if key[3] else gp.cr_phase_rad
                return self._made(cw.board, cw.gen, shape, freq, gp.cr.amplitude, None, -1, ("sub", phase), t)
            tw = self.wiring(t).drive
            shape = self.shape(tw.board, tw.gen, gp.cancellation, gp.cr_segment_s, what)
            return self._made(tw.board, tw.gen, shape, freq, gp.cancellation.amplitude, None, -1,
                              ("sub", gp.cancellation_phase_rad + key[3]), t)  # fmt: skip
        if kind in ("dd", "echo", "flip"):
            q = key[1]
            qt, qp = self.qubit(q)
            ch = self.wiring(q).drive
            shape = self.shape(ch.board, ch.gen, qp.x180, qt.x180_s, what, qp.anharmonicity_hz)
            # dd: about its axis in the fixed frame; echo: ECR's X180 of the control; flip: the reset's
            phase, frame = {"dd": (("rot", key[-1], 0.0), None), "echo": (("neg",), q), "flip": (("zero",), None)}[kind]
            return self._made(ch.board, ch.gen, shape, qp.frequency_hz, qp.x180.amplitude, None, -1, phase, frame)
        if kind == "ro":
            q = key[1]
            qt, w, freq, _ = self.readout_params(q)
            pulse = qt.pulses.readout
            shape = self.shape(w.board, w.gen, pulse, qt.readout_pulse_s, what)
            return self._made(w.board, w.gen, shape, freq, pulse.amplitude, None, w.ro, ("zero",), None)
        raise CtrlError(f"internal: no pulse role {key!r}")

    @staticmethod
    def _made(board, gen, shape, freq, gain, outsel, ro, phase, frame) -> Pulse:
        style, env, cycles = shape
        if outsel is None:
            outsel = "dds" if style == "const" else "product"
        return Pulse(board, gen, style, env, cycles, freq, gain, outsel, ro, phase, frame)

    # --- readouts
    def readout_params(self, q: str):
        """(q's numbers, its readout wiring, the readout's frequency at the generator, its phase in degrees)."""
        qt, qp = self.qubit(q)
        w = self.wiring(q).readout
        f = qp.readout_frequency_hz
        freq = abs(f - w.lo_frequency_hz) if w.lo_frequency_hz else f
        return qt, w, freq, -math.degrees(qp.iq_rotation_rad) % 360.0

    def threshold(self, q: str) -> int:
        thr = math.floor(self.qubit(q)[1].threshold) + 1
        if not -(2**23) <= thr < 2**23:
            raise CtrlError(f"qubit {q}: readout threshold {thr} does not fit the tProc's 24-bit immediate operand")
        return thr

    def use_readout(self, q: str, what: str):
        """Declare q's readout path; returns (q's numbers, wiring, frequency, window cycles, window timing
        cycles)."""
        qt, w, freq, phase = self.readout_params(q)
        pulse = qt.pulses.readout
        if q not in self._users:
            self._users.add(q)
            self.readout_users.append(q)
        board, gen, ro = w.board, w.gen, w.ro
        r, g = self.rocfg(board, ro), self.gencfg(board, gen)
        f_out = r["f_output"] * 1e6
        cycles = int(math.floor(qt.pulses.readout_window_s * f_out + 1e-6))
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
            if pulse.shape != "const":
                raise CtrlError(f"board {board} gen {gen}: {what}: a multiplexed readout pulse must be const")
            tones = self.mux_tones.setdefault((board, gen), {})
            prev = tones.setdefault(w.tone, (freq, pulse.amplitude))
            if prev != (freq, pulse.amplitude):
                raise CtrlError(
                    f"board {board} gen {gen}: tone {w.tone} plays {prev[0] / 1e6:.6f} MHz at gain {prev[1]} and "
                    f"{freq / 1e6:.6f} MHz at gain {pulse.amplitude} ({what}): one tone, one setting"
                )
        return qt, w, freq, cycles, window

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

