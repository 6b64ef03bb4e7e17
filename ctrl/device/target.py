"""`Target`: what the compiler, the QICK plan and the noise model need to know of a device, looked up once.

Like Qiskit's `Target`: per qubit its pulse durations and errors, readout timing and errors, reset, T1/T2
and static-ZZ neighbours; per coupled pair the gate the compiler uses there; what the QICK programs play
(`QubitPulses`, `GatePulses`: frequencies, envelopes, phases, readout windows and thresholds); the
controller's channels (from the wiring, or an ideal controller's own lines when the device file has none),
clock and decision latency; and the hashes a compiled program must carry to run on this device
(`check_program`).

Durations are in seconds, as in the device file: turning them into integer cycles is the scheduler's and
the QICK plan's business (names say which: `duration_s`, `t_cycles`).

Build it with `device.target` (cached on the immutable Device), never from the pydantic models again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

from ctrl.errors import CtrlError

if TYPE_CHECKING:
    from ctrl.device.device import Device

# A device file without wiring is compiled for an ideal controller: one clock of 1 GHz (timing in
# nanoseconds), every qubit its own lines, every result in real time after the latency QICK's tProc v2
# needs to branch on a readout (wait_auto and delay_auto, 0.4 us; docs/qick.md). The same numbers as
# ctrl.compile.pipeline's IDEAL_* (tests/test_target.py holds them equal).
IDEAL_CLOCK_HZ = 1e9
IDEAL_DECISION_LATENCY_S = 4e-7


@dataclass(frozen=True)
class PulseShape:
    """A calibrated envelope as the device file gives it; the QICK plan turns it into samples. Fields a
    shape does not have are 0."""

    shape: str  # const | gaussian | drag | flat_top | net_zero
    amplitude: float  # peak, fraction of DAC full scale (QICK gain)
    sigma_s: float = 0.0  # gaussian, drag
    drag_coefficient: float = 0.0  # drag (qick.helpers.DRAG alpha)
    rise_s: float = 0.0  # flat_top, net_zero: one edge

    @classmethod
    def of(cls, pulse) -> PulseShape | None:
        if pulse is None:
            return None
        f = vars(pulse)  # a model's fields: getattr with a default costs pydantic a raised AttributeError
        return cls(f["shape"], f["amplitude"], f.get("sigma_s", 0.0), f.get("drag_coefficient", 0.0),
                   f.get("rise_s", 0.0))  # fmt: skip


@dataclass(frozen=True)
class QubitPulses:
    """What the QICK programs play on a qubit, besides the durations its QubitTarget holds: the drive
    frequency and envelopes, and the readout's tone, window and decision. A wired qubit has every one
    (ctrl.device.checks)."""

    frequency_hz: float
    anharmonicity_hz: float
    x90: PulseShape
    x180: PulseShape
    readout_frequency_hz: float
    readout: PulseShape
    readout_window_s: float
    time_of_flight_s: float  # from the readout pulse's start to the window's
    iq_rotation_rad: float  # puts the state information into I
    threshold: float  # on the rotated I, accumulated over the window
    reset_method: str  # active | passive | unconditional

    @classmethod
    def of(cls, q) -> QubitPulses | None:
        """A qubit's calibration's, or None when the file leaves any of them out."""
        ro = q.readout
        values = (q.frequency_hz, q.anharmonicity_hz, PulseShape.of(q.x90.pulse), PulseShape.of(q.x180.pulse),
                  ro.frequency_hz, PulseShape.of(ro.pulse), ro.window_s, ro.time_of_flight_s, ro.iq_rotation_rad,
                  ro.threshold, ro.reset.method if ro.reset is not None else None)  # fmt: skip
        return None if None in values else cls(*values)


@dataclass(frozen=True)
class GatePulses:
    """What the QICK programs play for a two-qubit gate: a flux-tuned gate's flux pulse (on the line of
    its GateTarget's `flux_element`), or a cross-resonance gate's segments on the control's drive and its
    cancellation tone on the target's. None: not calibrated (a usable wired gate has its own)."""

    flux: PulseShape | None = None
    cr: PulseShape | None = None
    cr_segment_s: float | None = None
    cr_phase_rad: float | None = None
    cancellation: PulseShape | None = None
    cancellation_phase_rad: float = 0.0

    @classmethod
    def of(cls, c) -> GatePulses:
        f = vars(c)  # as in PulseShape.of
        flux = f.get("flux_pulse")
        return cls(PulseShape.of(flux.pulse) if flux is not None else None, PulseShape.of(f.get("cr_pulse")),
                   f.get("cr_segment_s"), f.get("cr_phase_rad"), PulseShape.of(f.get("cancellation_pulse")),
                   f.get("cancellation_phase_rad", 0.0))  # fmt: skip


@dataclass(frozen=True)
class QubitTarget:
    """One qubit's numbers, in SI units. `t1_s` (and so the T2s) may be None on an unusable qubit."""

    name: str
    usable: bool
    x90_s: float
    x90_error: float
    x180_s: float
    x180_error: float
    readout_pulse_s: float
    readout_window_end_s: float  # from the readout pulse's start to the result
    readout_ringdown_s: float  # the resonator's ring-down after the readout (0: not calibrated)
    readout_error_0to1: float
    readout_error_1to0: float
    reset_s: float
    t1_s: float | None
    t2_ramsey_s: float | None  # T2* (or its stand-in: see QubitCalibration.t2_s)
    t2_echo_s: float | None
    zz_neighbours: tuple[tuple[str, float], ...] = ()  # (neighbour, zz_hz) with a nonzero static ZZ
    pulses: QubitPulses | None = field(default=None, repr=False)  # None: not calibrated for QICK

    def pulse_s(self, angle: float) -> float:
        """The duration of a turn by `angle`: the x90 pulse up to pi/2, else the x180."""
        return self.x90_s if abs(angle) <= math.pi / 2 + 1e-9 else self.x180_s

    def pulse_error(self, angle: float) -> float:
        return self.x90_error if abs(angle) <= math.pi / 2 + 1e-9 else self.x180_error

    def t2_s(self, echo: bool) -> float | None:
        return self.t2_echo_s if echo else self.t2_ramsey_s

    @property
    def readout_busy_s(self) -> float:
        """How long a readout holds its qubit: the pulse, or the window if that ends later."""
        return max(self.readout_pulse_s, self.readout_window_end_s)


@dataclass(frozen=True)
class GateTarget:
    """The two-qubit gate the compiler uses on a pair (`chosen_gates`)."""

    qubits: tuple[str, str]
    kind: str  # "cz", "ecr", ... as the device file names it
    usable: bool
    duration_s: float
    error: float
    control: str | None  # a cross-resonance gate's control qubit; None for the others
    virtual_z_rad: tuple[tuple[str, float], ...]  # the virtual Z's played after it, by qubit
    flux_element: str | None  # what its flux pulse tunes: "coupler", one of its qubits, or None
    cancellation: bool  # a cross-resonance gate with a cancellation pulse on the target's drive
    pulses: GatePulses = field(default=GatePulses(), repr=False)


@dataclass(frozen=True, repr=False, eq=False)
class Target:
    """A device's capabilities as the compiler and the noise model read them (see the module docstring)."""

    device: Device
    qubits: Mapping[str, QubitTarget]
    gates: Mapping[frozenset, GateTarget]  # pair -> the chosen gate
    exclusions: Mapping[frozenset, tuple[str, ...]]  # pair -> the crosstalk-exclusion groups it is in
    static_zz: tuple[tuple[tuple[str, str], float], ...]  # ((a, b) sorted, zz_hz) per measured pair, file order
    two_qubit_durations_s: tuple[float, ...]  # every usable calibrated two-qubit gate, chosen or not, sorted
    _qubit_wiring: Mapping[str, object] = field(default_factory=dict)
    _coupler_wiring: Mapping[frozenset, object] = field(default_factory=dict)

    def __repr__(self) -> str:
        controller = "ideal controller" if self.ideal else f"{len(self.device.wiring.boards)} board(s)"
        return (f"Target({self.name!r}, {len(self.qubits)} qubits, {len(self.gates)} gates, {controller}, "
                f"calibration {self.calibration_hash[:19]})")  # fmt: skip

    @classmethod
    def of(cls, device: Device) -> Target:
        zz = device.zz_neighbours
        qubits = {}
        for q in device.qubits:
            ro = q.readout
            qubits[q.name] = QubitTarget(
                q.name, q.usable, q.x90.duration_s, q.x90.error, q.x180.duration_s, q.x180.error,
                ro.pulse_duration_s, ro.window_end_s(), ro.ringdown_s or 0.0,
                ro.error_0to1, ro.error_1to0, q.reset_s(), q.t1_s,
                q.t2_s(False) if q.t1_s is not None else None, q.t2_s(True) if q.t1_s is not None else None,
                zz.get(q.name, ()), QubitPulses.of(q),
            )  # fmt: skip
        gates = {}
        for pair, c in device.chosen_gates.items():
            f = vars(c)  # as in PulseShape.of
            flux, pulses = f.get("flux_pulse"), GatePulses.of(c)
            gates[pair] = GateTarget(
                tuple(c.qubits), c.gate, c.usable, c.duration_s, c.error, f.get("control"), c.virtual_z_rad(),
                flux.element if flux is not None else None, pulses.cancellation is not None, pulses,
            )  # fmt: skip
        exclusions: dict[frozenset, list[str]] = {}
        for i, group in enumerate(device.calibration.crosstalk_exclusions):
            for pair in {frozenset(p) for p in group.couplers}:
                exclusions.setdefault(pair, []).append(f"exclusion{i}")
        wiring = device.wiring
        return cls(
            device, MappingProxyType(qubits), MappingProxyType(gates),
            MappingProxyType({k: tuple(v) for k, v in exclusions.items()}),
            tuple((tuple(sorted(z.qubits)), z.zz_hz) for z in device.calibration.static_zz),
            tuple(sorted(c.duration_s for c in device.couplers if c.usable)),
            MappingProxyType({w.name: w for w in wiring.qubits} if wiring is not None else {}),
            MappingProxyType({frozenset(w.qubits): w for w in wiring.couplers} if wiring is not None else {}),
        )  # fmt: skip

    # --- identity
    @property
    def name(self) -> str:
        return self.device.name

    @property
    def calibration_hash(self) -> str:
        return self.device.calibration_hash

    @property
    def wiring_hash(self) -> str:
        return self.device.wiring_hash

    def check_program(self, program, what: str | None = None) -> None:
        """Refuse a program compiled for another calibration or wiring than this device's: its durations,
        pulses and noise would be the other file's. `program`: anything with `calibration_hash` and
        `wiring_hash` (a TimedProgram); `what` names it in the message (e.g. its program.json)."""
        where = self.device.path
        what = what or f"the d={program.distance} program for {program.device}"
        if program.calibration_hash != self.calibration_hash:
            raise CtrlError(
                f"{what} was compiled for calibration {program.calibration_hash}, this device file ({where}) has "
                f"{self.calibration_hash}: recompile (ctrl recompile --from <its folder> --device {where} --out ...)"
            )
        if program.wiring_hash != self.wiring_hash:
            raise CtrlError(
                f"{what} was compiled for wiring {program.wiring_hash}, this device file ({where}) has "
                f"{self.wiring_hash}: compile it for this device's wiring (ctrl compile --device {where})"
            )

    # --- per qubit, per pair
    def qubit(self, name: str) -> QubitTarget:
        try:
            return self.qubits[name]
        except KeyError:
            raise CtrlError(f"device {self.name} has no qubit '{name}'") from None

    def gate(self, a: str, b: str) -> GateTarget:
        try:
            return self.gates[frozenset((a, b))]
        except KeyError:
            raise CtrlError(f"device {self.name} has no coupler {a}-{b}") from None

    # --- the controller
    @property
    def ideal(self) -> bool:
        """No wiring: an ideal controller, with a drive and a readout line of its own for every qubit."""
        return self.device.wiring is None

    def qubit_wiring(self, name: str):
        """A qubit's QICK lines (drive, flux, readout)."""
        if self.ideal:
            raise CtrlError(f"device {self.name} has no QICK wiring")
        w = self._qubit_wiring.get(name)
        if w is None:
            raise CtrlError(f"device {self.name} has no wiring for qubit '{name}'")
        return w

    def coupler_wiring(self, a: str, b: str):
        """A tunable coupler's own flux line, or None (fixed coupling, cross resonance, or no wiring)."""
        return self._coupler_wiring.get(frozenset((a, b)))

    def clock_hz(self, used) -> float:
        """The timing clock of the boards driving the `used` qubits (one shared clock is required)."""
        if self.ideal:
            return IDEAL_CLOCK_HZ
        boards = {w.drive.board for w in self.device.wiring.qubits if w.name in used}
        clocks = {self.device.firmware[b].f_time_hz for b in boards}
        if len(clocks) != 1:
            raise CtrlError(f"boards {sorted(boards)} run timing clocks {sorted(clocks)}: one shared clock is required")
        return clocks.pop()

    @property
    def decision_latency_s(self) -> float:
        """From the end of a readout window until the controller can branch on its result."""
        return IDEAL_DECISION_LATENCY_S if self.ideal else self.device.wiring.controller.readout_to_decision_latency_s

    @property
    def inter_board_latency_s(self) -> float | None:
        """How long boards take to share a result; None: they cannot in real time (or there is one controller)."""
        return None if self.ideal else self.device.wiring.controller.inter_board_latency_s

    def boards(self, used) -> frozenset[str]:
        """The boards holding a line (drive, readout, flux) of the `used` qubits or of a coupler between two
        of them; none for an ideal controller."""
        if self.ideal:
            return frozenset()
        used = set(used)
        wiring = [self.qubit_wiring(q) for q in used]
        lines = [line for w in wiring for line in (w.drive, w.readout, w.flux)]
        lines += [w.flux for pair, w in self._coupler_wiring.items() if pair <= used]
        return frozenset(line.board for line in lines if line is not None)

    # channel names: "board/genN" for a generator, "board/roN" for a readout input, or an ideal controller's
    # "drive:Q", "readout:Q", "coupler:A-B"; what the scheduler holds exclusively
    def drive_channel(self, name: str) -> str:
        """A qubit's drive generator: its pulses of both sizes and its cross-resonance gates play there."""
        if self.ideal:
            return f"drive:{name}"
        return _chan(self.qubit_wiring(name).drive)

    def flux_channel(self, a: str, b: str) -> str:
        """The line a flux-tuned gate of the pair plays on: the coupler's own, or one of its qubits'."""
        if self.ideal:
            return f"coupler:{'-'.join(sorted((a, b)))}"
        line = self.flux_line(a, b)
        if line is None:
            raise CtrlError(f"coupler {a}-{b}: its flux pulse needs the flux line of {self.gate(a, b).flux_element}, "
                            "which is not wired")  # fmt: skip
        return _chan(line)

    def flux_line(self, a: str, b: str):
        """The QICK line a flux-tuned gate of the pair plays on: its coupler's own, or one of its qubits';
        None when that is not wired."""
        element = self.gate(a, b).flux_element
        if element == "coupler":
            w = self.coupler_wiring(a, b)
            return w.flux if w is not None else None
        return self.qubit_wiring(element).flux

    def readout_channels(self, name: str) -> tuple[tuple[str, ...], str]:
        """(channels a readout of the qubit holds exclusively, its multiplexed generator or ""): readouts on
        one multiplexed generator share it instead of holding it."""
        if self.ideal:
            return (f"readout:{name}",), ""
        w = self.qubit_wiring(name).readout
        gen = _chan(w)
        if self.device.firmware[w.board].gens[w.gen].mux:
            return (f"{w.board}/ro{w.ro}",), gen
        return (f"{w.board}/ro{w.ro}", gen), ""


def _chan(channel) -> str:
    return f"{channel.board}/gen{channel.gen}"
