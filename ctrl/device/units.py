"""Physical quantities of the device file: SI unit, plausible range, and the unit slips people make.

Every number in a device file is SI (seconds, hertz, radians) or a dimensionless probability or amplitude.
A range is not a spec sheet: it only has to be wide enough for any real superconducting device and narrow
enough that a value written in ns, us, MHz, GHz, degrees or percent falls outside it, so the message can say
which unit the number probably was in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

_UNIT_WORDS = {"s": "seconds", "Hz": "hertz", "rad": "radians", "": "dimensionless"}


def yaml_float(x: float, digits: int = 6) -> str:
    """`x` as a YAML 1.1 float literal (PyYAML needs a '.' in the mantissa and a signed exponent).

    `4e-08` and `1.0e9` are strings to `yaml.safe_load`; `4.0e-08` and `1.0e+09` are floats. Small and
    large magnitudes get an exponent (1.2e-04 rather than 0.00012), as SI files usually write them.
    """
    if x == 0:
        return "0.0"
    if 1e-3 <= abs(x) < 1e5:
        s = f"{x:.{digits}g}"
        return s if ("." in s or "e" in s) else s + ".0"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    mantissa = mantissa.rstrip("0")
    return f"{mantissa}0e{exponent}" if mantissa.endswith(".") else f"{mantissa}e{exponent}"


def fmt(x: float) -> str:
    """Short human form of a number for messages."""
    return f"{x:.6g}"


def mhz(x: float) -> str:
    """A frequency in hertz, for messages, in MHz."""
    return f"{x / 1e6:.4g} MHz"


def ghz(x: float) -> str:
    """A frequency in hertz, for messages, in GHz."""
    return f"{x / 1e9:.6g} GHz"


@dataclass(frozen=True)
class Quantity:
    """What a numeric field means: unit, plausible range, and the likely unit slips (name, factor to SI)."""

    what: str
    unit: str
    lo: float
    hi: float
    slips: tuple[tuple[str, float], ...] = ()
    min_abs: float = 0.0  # for signed quantities whose magnitude has a floor (anharmonicity)

    def expected(self) -> str:
        word = _UNIT_WORDS[self.unit]
        unit = f" {self.unit}" if self.unit else ""
        rng = f"{fmt(self.lo)}..{fmt(self.hi)}{unit}"
        if self.min_abs:
            rng += f", |value| >= {fmt(self.min_abs)}{unit}"
        return f"{self.what} in {word} ({rng})" if self.unit else f"{self.what}, {word} ({rng})"

    def _ok(self, v: float) -> bool:
        return self.lo <= v <= self.hi and abs(v) >= self.min_abs

    def problem(self, v: float) -> str | None:
        """None if `v` is plausible, else the message (with the unit it was probably written in)."""
        if self._ok(v):
            return None
        msg = f"{fmt(v)} is not a plausible value: expected {self.expected()}"
        fits = [(name, v * factor) for name, factor in self.slips if v and self._ok(v * factor)]
        if fits:
            # several units may fit (120 could be ns or us for a T1): take the one nearest the typical value
            name, si = min(fits, key=lambda f: abs(math.log10(abs(f[1]) / self._typical())))
            msg += f"; if that is {fmt(v)} {name}, write {yaml_float(si)}"
        return msg

    def _typical(self) -> float:
        """Geometric middle of the magnitudes the range allows."""
        top = max(abs(self.lo), abs(self.hi))
        bottom = max(self.min_abs, self.lo if self.lo > 0 else top * 1e-6)
        return math.sqrt(bottom * top)

    def check(self, v: float) -> float:
        p = self.problem(v)
        if p is not None:
            raise PydanticCustomError("quantity", "{msg}", {"msg": p})
        return v + 0.0  # -0.0 -> 0.0, so the canonical form (and the hash) does not see the sign of zero


def Q(q: Quantity, description: str):
    """Annotated float field type carrying `q` (for messages) and its unit/range (for the JSON Schema)."""
    extra: dict = {"x-unit": q.unit or "1", "minimum": q.lo, "maximum": q.hi}
    return Annotated[
        float,
        AfterValidator(q.check),
        q,
        Field(description=f"{description} [{q.unit or 'dimensionless'}]", json_schema_extra=extra),
    ]


_TIME = (("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3))
_FREQ = (("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3))
_ANGLE = (("degrees", math.pi / 180),)
_PROB = (("percent", 1e-2),)

QUBIT_FREQUENCY = Quantity("a qubit frequency", "Hz", 1e8, 2e10, _FREQ)
READOUT_FREQUENCY = Quantity("a readout resonator frequency", "Hz", 1e9, 2e10, _FREQ)
LO_FREQUENCY = Quantity("an external LO frequency", "Hz", 1e8, 2e10, _FREQ)
ANHARMONICITY = Quantity("an anharmonicity", "Hz", -2e9, 2e9, _FREQ, min_abs=1e6)
COHERENCE = Quantity("a coherence time", "s", 1e-7, 1e-1, _TIME)
GATE_1Q = Quantity("a single-qubit gate duration", "s", 1e-9, 2e-6, _TIME)
GATE_2Q = Quantity("a two-qubit gate duration", "s", 5e-9, 5e-6, _TIME)
PULSE_EDGE = Quantity("a pulse width or edge length", "s", 1e-10, 2e-6, _TIME)
READOUT_TIME = Quantity("a readout pulse or window length", "s", 1e-8, 1e-4, _TIME)
TIME_OF_FLIGHT = Quantity("a time of flight", "s", 0.0, 1e-5, _TIME)
RINGDOWN = Quantity("a resonator ring-down time", "s", 0.0, 1e-5, _TIME)
RESET_TIME = Quantity("a reset duration", "s", 1e-8, 1e-2, _TIME)
LATENCY = Quantity("a controller latency", "s", 1e-8, 1e-5, _TIME)
SKEW = Quantity("a timing skew", "s", 0.0, 1e-6, _TIME)
CHANNEL_DELAY = Quantity("a channel delay", "s", -1e-6, 1e-6, _TIME)
PROBABILITY = Quantity("a probability", "", 0.0, 1.0, _PROB)
AMPLITUDE = Quantity("an amplitude as a fraction of DAC full scale", "", -1.0, 1.0)
PHASE = Quantity("a phase", "rad", -2 * math.pi, 2 * math.pi, _ANGLE)
DRAG = Quantity("a DRAG coefficient", "", -20.0, 20.0)
THRESHOLD = Quantity("a readout threshold in accumulated-I units", "", -1e12, 1e12)
COORDINATE = Quantity("a layout coordinate", "", -1e4, 1e4)
STATIC_ZZ = Quantity("a static ZZ rate", "Hz", -2e7, 2e7, _FREQ)
