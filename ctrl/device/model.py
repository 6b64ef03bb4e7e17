"""The device file, schema version 3, as frozen pydantic models.

Three sections with three owners:

- `wiring`: which board and which QICK channel reach which qubit, flux line and resonator, and the
  controller's timing. Changes when someone touches cables or firmware.
- `calibration`: every number a recalibration produces (frequencies, coherence, pulses, errors, readout),
  plus the chip's qubits and couplers themselves (their names and layout positions). Changes daily.
- header: `schema_version`, `name`, `description`.

Field names carry their unit (`_s`, `_hz`, `_rad`); bare names are dimensionless. What only the QICK
programs need (pulse shapes, frequencies, readout windows and thresholds) may be left out (null) when a
device file has no wiring, as an imported snapshot of a device run by another controller has not; the
numbers the noise model needs have documented defaults where labs often lack them (`t2_s`,
`Readout.window_end_s`, `QubitCalibration.reset_s`), and `ctrl validate` warns when one is used. Models are strict (no
string-to-number coercion), frozen, and refuse unknown keys. Cross-references (names, channels, firmware)
are checked in `checks.py`, not here, so every problem of a file is reported at once.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ctrl.device import units as u
from ctrl.device.units import Q

SCHEMA_VERSION = 3

Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$"),
    Field(description="a name: a letter, then up to 31 letters, digits or '_'"),
]
Pair = Annotated[tuple[Name, Name], Field(description="two qubit names")]
Index = Annotated[int, Field(ge=0, le=255, description="a QICK channel index (position in the firmware list)")]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


# ---------------------------------------------------------------------------------------------- pulses


class ConstPulse(Strict):
    """Rectangular envelope; costs no envelope memory."""

    shape: Literal["const"]
    amplitude: Q(u.AMPLITUDE, "peak amplitude, fraction of DAC full scale (QICK gain)")


class GaussianPulse(Strict):
    """Gaussian envelope over the whole pulse length."""

    shape: Literal["gaussian"]
    amplitude: Q(u.AMPLITUDE, "peak amplitude, fraction of DAC full scale (QICK gain)")
    sigma_s: Q(u.PULSE_EDGE, "Gaussian standard deviation")


class DragPulse(Strict):
    """Gaussian I with derivative Q; coefficient as in qick.helpers.DRAG (alpha, with delta = anharmonicity)."""

    shape: Literal["drag"]
    amplitude: Q(u.AMPLITUDE, "peak amplitude, fraction of DAC full scale (QICK gain)")
    sigma_s: Q(u.PULSE_EDGE, "Gaussian standard deviation")
    drag_coefficient: Q(u.DRAG, "DRAG coefficient (qick.helpers.DRAG alpha)")


class FlatTopPulse(Strict):
    """Gaussian rise, flat middle, Gaussian fall (QICK flat_top: only the two edges are stored)."""

    shape: Literal["flat_top"]
    amplitude: Q(u.AMPLITUDE, "flat-top amplitude, fraction of DAC full scale (QICK gain)")
    rise_s: Q(u.PULSE_EDGE, "length of one edge")


class NetZeroPulse(Strict):
    """Bipolar flux pulse (two halves of opposite sign, zero net flux); the whole waveform is stored."""

    shape: Literal["net_zero"]
    amplitude: Q(u.AMPLITUDE, "amplitude of each half, fraction of DAC full scale")
    rise_s: Q(u.PULSE_EDGE, "length of each edge")


Pulse = Annotated[
    Union[ConstPulse, GaussianPulse, DragPulse, FlatTopPulse, NetZeroPulse],
    Field(discriminator="shape"),
]
PULSE_SHAPES = ("const", "gaussian", "drag", "flat_top", "net_zero")


def pulse_width_problem(pulse: BaseModel, duration: float) -> str | None:
    """The edges of a pulse must fit inside its duration."""
    fields = vars(pulse)  # pydantic keeps field values here; a shape without edges has no such field
    sigma = fields.get("sigma_s")
    if sigma is not None and sigma > duration / 2:
        return f"sigma_s {u.fmt(sigma)} s is more than half the pulse duration {u.fmt(duration)} s"
    rise = fields.get("rise_s")
    if rise is not None and 2 * rise > duration:
        return f"two edges of rise_s {u.fmt(rise)} s do not fit in the pulse duration {u.fmt(duration)} s"
    return None


# ---------------------------------------------------------------------------------------------- qubits


class SingleQubitGate(Strict):
    duration_s: Q(u.GATE_1Q, "gate duration (the pulse length)")
    error: Q(u.PROBABILITY, "error per gate (e.g. from randomized benchmarking)")
    leakage: Q(u.PROBABILITY, "leakage out of the qubit subspace per gate, if measured") | None = None
    pulse: Pulse | None = Field(None, description="the envelope (needed to make QICK programs)")

    @model_validator(mode="after")
    def _edges_fit(self):
        p = self.pulse and pulse_width_problem(self.pulse, self.duration_s)
        if p:
            raise ValueError(p)
        return self


class Reset(Strict):
    method: Literal["active", "passive", "unconditional"] = Field(
        description="active: measure and conditionally flip; passive: wait for T1; unconditional: driven reset"
    )
    duration_s: Q(u.RESET_TIME, "time the reset takes, measurement included for active reset")


class Readout(Strict):
    """A qubit's measurement. Null fields are unknown; the QICK programs need every one of them."""

    frequency_hz: Q(u.READOUT_FREQUENCY, "readout tone frequency (resonator, qubit in |0>)") | None = None
    pulse: Pulse | None = Field(None, description="the readout tone's envelope (needed to make QICK programs)")
    pulse_duration_s: Q(u.READOUT_TIME, "readout pulse length (a snapshot's readout length)")
    window_s: Q(u.READOUT_TIME, "integration window length (default: the pulse length)") | None = None
    time_of_flight_s: Q(u.TIME_OF_FLIGHT, "delay from pulse start to window start (QICK trig_offset; default 0)") | None = None
    iq_rotation_rad: Q(u.PHASE, "rotation that puts the state information into I") | None = None
    threshold: Q(u.THRESHOLD, "decision threshold on rotated I, accumulated (not averaged) over the window") | None = None
    error_0to1: Q(u.PROBABILITY, "P(read 1 | prepared 0)")
    error_1to0: Q(u.PROBABILITY, "P(read 0 | prepared 1)")
    reset: Reset | None = Field(None, description="how the qubit is reset (default: active, see QubitCalibration.reset_s)")
    ringdown_s: Q(u.RINGDOWN, "the resonator's ring-down after the readout pulse: the qubit's next operation "
                              "waits for it (default 0)") | None = None  # fmt: skip

    @model_validator(mode="after")
    def _edges_fit(self):
        p = self.pulse and pulse_width_problem(self.pulse, self.pulse_duration_s)
        if p:
            raise ValueError(p)
        return self

    def window_end_s(self) -> float:
        """When the result is in, from the start of the readout pulse (unknown window: the pulse's end)."""
        return (self.time_of_flight_s or 0.0) + (self.window_s if self.window_s is not None else self.pulse_duration_s)


class QubitCalibration(Strict):
    name: Name
    position: tuple[Q(u.COORDINATE, "x"), Q(u.COORDINATE, "y")] = Field(
        description="layout position (arbitrary units, for plots and embedding)"
    )
    usable: bool = Field(True, description="false marks a bad qubit the compiler must not use")
    note: str | None = None
    frequency_hz: Q(u.QUBIT_FREQUENCY, "0-1 transition frequency at the idle point (the drive frequency)") | None = None
    anharmonicity_hz: Q(u.ANHARMONICITY, "f12 - f01 (negative for transmons)") | None = None
    t1_s: Q(u.COHERENCE, "energy relaxation time T1 (required on a usable qubit)") | None = None
    t2_ramsey_s: Q(u.COHERENCE, "Ramsey dephasing time T2*") | None = None
    t2_echo_s: Q(u.COHERENCE, "Hahn-echo dephasing time T2E") | None = None
    x90: SingleQubitGate
    x180: SingleQubitGate
    readout: Readout

    def t2_s(self, echo: bool) -> float:
        """The dephasing time the noise model uses: the Hahn-echo time inside an echo sequence, else the
        Ramsey time; an unknown one is replaced by the other (echo for a missing Ramsey time is optimistic,
        which `ctrl validate` warns about), and by T1 if neither was measured."""
        first, second = (self.t2_echo_s, self.t2_ramsey_s) if echo else (self.t2_ramsey_s, self.t2_echo_s)
        return first if first is not None else second if second is not None else self.t1_s

    def reset_s(self) -> float:
        """The reset's duration; unknown: an active reset, one readout then one conditional x180."""
        reset = self.readout.reset
        return reset.duration_s if reset is not None else self.readout.pulse_duration_s + self.x180.duration_s


# -------------------------------------------------------------------------------------------- couplers


class FluxPulse(Strict):
    element: Name = Field(
        description="what the pulse tunes: 'coupler' (the coupler's own flux line) or one of the two qubits"
    )
    pulse: Pulse


class _TwoQubitGate(Strict):
    qubits: Pair
    usable: bool = Field(True, description="false marks a bad coupler the compiler must not use")
    note: str | None = None
    duration_s: Q(u.GATE_2Q, "gate duration")
    error: Q(u.PROBABILITY, "error per gate (e.g. from interleaved RB)")
    leakage: Q(u.PROBABILITY, "leakage per gate, if measured") | None = None
    phase_corrections_rad: dict[Name, Q(u.PHASE, "virtual Z")] = Field(
        default_factory=dict,
        description="virtual-Z corrections applied after the gate, by qubit name (single-qubit phases)",
    )

    def virtual_z_rad(self) -> tuple[tuple[str, float], ...]:
        """The virtual Z's played after the gate, by qubit name (sorted): its calibrated corrections."""
        return tuple(sorted((k, float(v)) for k, v in self.phase_corrections_rad.items()))


class CZGate(_TwoQubitGate):
    gate: Literal["cz"]
    control: ClassVar[None] = None  # a symmetric gate: no control qubit (cross resonance has one)
    conditional_phase_rad: Q(u.PHASE, "measured conditional phase (pi for a perfect CZ)") | None = None
    flux_pulse: FluxPulse | None = Field(None, description="the flux pulse (needed to make QICK programs)")


class RZZGate(_TwoQubitGate):
    """RZZ(pi/2) = exp(-i pi/4 Z Z): a CZ up to a virtual Z of -pi/2 on each qubit, which the compiler adds
    to `phase_corrections_rad`. Fractional-angle families calibrate their error at this angle."""

    gate: Literal["rzz"]
    control: ClassVar[None] = None  # a symmetric gate: no control qubit (cross resonance has one)
    flux_pulse: FluxPulse | None = Field(None, description="the flux pulse (needed to make QICK programs)")

    def virtual_z_rad(self) -> tuple[tuple[str, float], ...]:
        """The calibrated corrections plus the -pi/2 on each qubit that make RZZ(pi/2) a CZ."""
        extra = {q: -math.pi / 2 for q in self.qubits}
        return tuple(sorted((k, float(self.phase_corrections_rad.get(k, 0.0)) + extra.get(k, 0.0))
                            for k in set(self.phase_corrections_rad) | set(extra)))


class ISwapGate(_TwoQubitGate):
    """The iSWAP family: fSim(theta, phi); iswap = fSim(pi/2, 0), sqrt_iswap = fSim(pi/4, 0)."""

    gate: Literal["iswap", "sqrt_iswap", "fsim"]
    control: ClassVar[None] = None  # a symmetric gate: no control qubit (cross resonance has one)
    swap_angle_rad: Q(u.PHASE, "fSim theta")
    conditional_phase_rad: Q(u.PHASE, "fSim phi")
    flux_pulse: FluxPulse | None = Field(None, description="the flux pulse (needed to make QICK programs)")


class CrossResonanceGate(_TwoQubitGate):
    """Cross resonance: the control's drive line plays a tone at the target's frequency.

    `ecr`: two CR segments of opposite sign with an X180 on the control between them.
    """

    gate: Literal["cr", "ecr"]
    control: Name
    cr_pulse: Pulse | None = Field(None, description="one CR segment, played on the control's drive line")
    cr_segment_s: Q(u.GATE_2Q, "length of one CR segment") | None = None
    cr_phase_rad: Q(u.PHASE, "phase of the CR tone") | None = None
    cancellation_pulse: Pulse | None = Field(None, description="simultaneous tone on the target's drive line")
    cancellation_phase_rad: Q(u.PHASE, "phase of the cancellation tone") = 0.0

    @model_validator(mode="after")
    def _segments_fit(self):
        n = 2 if self.gate == "ecr" else 1
        if self.cr_segment_s is None:
            return self
        if n * self.cr_segment_s > self.duration_s * (1 + 1e-9):
            raise ValueError(
                f"{n} CR segment(s) of {u.fmt(self.cr_segment_s)} s do not fit in duration_s {u.fmt(self.duration_s)} s"
            )
        for p in (self.cr_pulse, self.cancellation_pulse):
            if p is not None and (msg := pulse_width_problem(p, self.cr_segment_s)):
                raise ValueError(msg)
        return self


CouplerCalibration = Annotated[Union[CZGate, RZZGate, ISwapGate, CrossResonanceGate], Field(discriminator="gate")]
GATE_KINDS = ("cz", "rzz", "iswap", "sqrt_iswap", "fsim", "cr", "ecr")
COMPILED_KINDS = ("cz", "rzz", "ecr")  # the kinds the compiler translates to (`ctrl.compile.natives`)


class StaticZZ(Strict):
    """The always-on ZZ interaction of a pair: f(11) - f(10) - f(01) + f(00)."""

    qubits: Pair
    zz_hz: Q(u.STATIC_ZZ, "static ZZ rate")


class CrosstalkExclusion(Strict):
    couplers: tuple[Pair, ...] = Field(min_length=2, description="couplers no two of which may run at once")
    note: str | None = None


class Calibration(Strict):
    calibrated_at: str | None = Field(None, description="when these numbers were measured (ISO 8601)")
    qubits: tuple[QubitCalibration, ...] = Field(min_length=1)
    couplers: tuple[CouplerCalibration, ...] = Field(
        (), description="two-qubit gates; a pair may have several (one per kind and, for cross resonance, per control)"
    )
    crosstalk_exclusions: tuple[CrosstalkExclusion, ...] = ()
    static_zz: tuple[StaticZZ, ...] = Field((), description="measured static ZZ of coupled pairs")


# ---------------------------------------------------------------------------------------------- wiring


class Board(Strict):
    name: Name
    firmware: str = Field(description="QickConfig JSON (soc.dump_cfg()), path relative to the device file")


class Alignment(Strict):
    reference: Literal["shared", "independent"] = Field(
        description="shared: boards run from one reference clock and start trigger; independent: single board only"
    )
    board_skew_s: Q(u.SKEW, "residual start-time mismatch between boards") = 0.0


class Controller(Strict):
    readout_to_decision_latency_s: Q(
        u.LATENCY, "from the end of a readout window until the tProc can branch on its result"
    )
    inter_board_latency_s: Q(u.LATENCY, "board-to-board result sharing latency") | None = Field(
        None, description="null: boards cannot share measurement results in real time"
    )
    alignment: Alignment


class Channel(Strict):
    board: Name
    gen: Index = Field(description="index into the firmware's `gens` list")
    lo_frequency_hz: Q(u.LO_FREQUENCY, "external mixer LO; the generator plays |f - LO|") | None = None
    delay_s: Q(u.CHANNEL_DELAY, "output delay added to align this line with the others") = 0.0


class ReadoutChannel(Channel):
    tone: Index | None = Field(None, description="tone of a multiplexed generator (required for mux gens)")
    ro: Index = Field(description="index into the firmware's `readouts` list")
    feedback: bool = Field(
        True, description="the result must reach the tProc for real-time decisions (false: end-of-shot only)"
    )


class QubitWiring(Strict):
    name: Name
    drive: Channel
    flux: Channel | None = Field(None, description="flux line of a tunable qubit")
    readout: ReadoutChannel


class CouplerWiring(Strict):
    qubits: Pair
    flux: Channel


class Wiring(Strict):
    boards: tuple[Board, ...] = Field(min_length=1)
    controller: Controller
    qubits: tuple[QubitWiring, ...] = Field(min_length=1)
    couplers: tuple[CouplerWiring, ...] = Field((), description="flux lines of tunable couplers")


class DeviceFile(Strict):
    """A superconducting-qubit device and its QICK wiring (ctrl device file, schema version 3)."""

    schema_version: Literal[3]
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")] = Field(
        description="device name: a letter or digit, then up to 63 letters, digits, '_', '.' or '-'"
    )
    description: str | None = None
    wiring: Wiring | None = Field(None, description="QICK wiring; without it ctrl compiles and emulates, but makes no QICK programs")
    calibration: Calibration
