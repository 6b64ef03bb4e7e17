"""The difference between two calibrations, field by field, each change sorted into the class of work it
causes.

| class       | what                                                       | work it causes                       |
|-------------|------------------------------------------------------------|--------------------------------------|
| `metadata`  | free text: `calibrated_at`, notes                          | none (the calibration hash changes)  |
| `pulse`     | envelope shapes, amplitudes, DRAG, phases, frequencies,    | re-emit the pulses; the timed program|
|             | readout rotation and threshold                              | stays (virtual-Z corrections patched)|
| `quality`   | errors, T1/T2, usable flags, layout positions              | re-evaluate the placement            |
| `timing`    | durations, time of flight, reset time, gate kind, control  | re-lower and reschedule              |
|             | qubit, flux element, crosstalk exclusions                   |                                      |
| `structure` | qubits or couplers added, removed or reordered             | full compile                         |

The class of a field is derived from the device model, not listed by hand: every field inside a pulse
envelope model is `pulse`; a number's class follows its physical quantity (`ctrl.device.units`: coherence
and probabilities are `quality`, gate/readout/reset durations `timing`, frequencies, phases and amplitudes
`pulse`); free text is `metadata`; a discriminator (`gate`, `shape`) or a reference to a component
(`control`, `element`) changes what the compiler emits, so `timing`. A field none of these rules covers
is `unclassified` and costs a full compile; tests/test_recompile.py fails when the model has one.
"""

from __future__ import annotations

import functools
import math
import re
import types
import typing
from dataclasses import dataclass

from pydantic import BaseModel

from ctrl.device import model as m
from ctrl.device import units as u
from ctrl.device.device import chosen_gates
from ctrl.device.units import Quantity, fmt

METADATA, PULSE, QUALITY, TIMING, STRUCTURE = "metadata", "pulse", "quality", "timing", "structure"
WIRING = "wiring"
UNCLASSIFIED = "unclassified"
CLASSES = (METADATA, PULSE, QUALITY, TIMING, STRUCTURE)  # in order of the work they cause

_PULSE_MODELS = (m.ConstPulse, m.GaussianPulse, m.DragPulse, m.FlatTopPulse, m.NetZeroPulse)
_BY_QUANTITY = {
    u.COHERENCE: QUALITY, u.PROBABILITY: QUALITY, u.COORDINATE: QUALITY, u.STATIC_ZZ: QUALITY,
    u.GATE_1Q: TIMING, u.GATE_2Q: TIMING, u.READOUT_TIME: TIMING, u.TIME_OF_FLIGHT: TIMING, u.RINGDOWN: TIMING,
    u.RESET_TIME: TIMING,
    u.QUBIT_FREQUENCY: PULSE, u.READOUT_FREQUENCY: PULSE, u.ANHARMONICITY: PULSE, u.PHASE: PULSE,
    u.AMPLITUDE: PULSE, u.DRAG: PULSE, u.THRESHOLD: PULSE, u.PULSE_EDGE: PULSE,
}  # fmt: skip


# ------------------------------------------------------------------------------------ field classes


def _annotated(tp) -> list:
    """Metadata of every Annotated layer inside a type (through Optional, tuples, dicts)."""
    found = []
    if typing.get_origin(tp) is typing.Annotated:
        found.extend(tp.__metadata__)
        tp = typing.get_args(tp)[0]
    for arg in typing.get_args(tp):
        found.extend(_annotated(arg))
    return found


def quantity(owner: type[BaseModel], name: str) -> Quantity | None:
    """The physical quantity of a numeric field (or of the numbers inside a tuple or mapping field)."""
    f = owner.model_fields[name]
    for meta in list(f.metadata) + _annotated(f.annotation):
        if isinstance(meta, Quantity):
            return meta
    return None


def _bare(tp):
    """Strip Annotated and Optional."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _holds_models(tp) -> bool:
    tp = _bare(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return True
    return any(_holds_models(a) for a in typing.get_args(tp) if a is not type(None) and a is not Ellipsis)


def field_class(owner: type[BaseModel], name: str) -> str:
    """The change class of field `name` of model `owner` (see the module docstring)."""
    if issubclass(owner, _PULSE_MODELS):
        return PULSE
    f = owner.model_fields[name]
    if name in ("name", "qubits") and not _holds_models(f.annotation):
        return STRUCTURE  # the identity of a qubit or coupler
    q = quantity(owner, name)
    if q is not None:
        return _BY_QUANTITY.get(q, UNCLASSIFIED)
    tp = _bare(f.annotation)
    if tp is bool:
        return QUALITY if name == "usable" else UNCLASSIFIED
    if typing.get_origin(tp) is typing.Literal:
        return TIMING  # a discriminator: which gate or envelope the compiler emits
    if tp is str:
        # a constrained string names a component (a reference the compiler follows); free text is metadata
        return TIMING if any(getattr(meta, "pattern", None) for meta in f.metadata) else METADATA
    if _holds_models(f.annotation):
        return TIMING  # a sub-model or list of them appearing or going away: what is emitted changes
    if _only_names(tp):
        return TIMING  # component names (e.g. the couplers of a crosstalk exclusion)
    return UNCLASSIFIED


def _only_names(tp) -> bool:
    tp = _bare(tp)
    if tp is str:
        return True
    return typing.get_origin(tp) is tuple and all(_only_names(a) for a in typing.get_args(tp) if a is not Ellipsis)


def calibration_fields() -> list[tuple[str, str]]:
    """(dotted path, class) of every field a calibration can hold, walking the model types."""
    out: list[tuple[str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, f in model.model_fields.items():
            path = f"{prefix}{name}"
            subs = _models_in(f.annotation)
            if subs and model is not m.Calibration:
                out.append((path, field_class(model, name)))  # presence of the sub-model
            elif not subs:
                out.append((path, field_class(model, name)))
            for sub in subs:
                walk(sub, f"{path}.{sub.__name__}." if len(subs) > 1 else f"{path}.")

    walk(m.Calibration, "")
    return out


def _models_in(tp) -> list[type[BaseModel]]:
    tp = _bare(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    found = []
    for a in typing.get_args(tp):
        for sub in _models_in(a):
            if sub not in found:
                found.append(sub)
    return found


# ------------------------------------------------------------------------------------ the diff


_MISSING = object()


@dataclass(frozen=True)
class Change:
    """One changed field: `component` is a qubit ("Q3"), a coupler ("Q1-Q7"), or a section."""

    component: str
    field: str  # dotted path inside the component; "" for the component itself
    kind: str  # change class
    old: object  # None: absent before
    new: object  # None: absent now
    unit: str  # "s", "Hz", "rad", "" (dimensionless); "-" for non-numbers

    def __repr__(self) -> str:
        return f"Change({self.component} {self.field or '-'} [{self.kind}])"

    def describe(self) -> str:
        """One line: `Q3 t1_s: 159 us -> 80 us (-49.7%) [quality]` (seconds and hertz with a prefix)."""
        where = f"{self.component} {self.field}" if self.field else self.component
        old, new = _show_pair(self.old, self.new, self.unit)
        return f"{where}: {old} -> {new}{_relative(self)} [{self.kind}]"

    def to_json(self) -> dict:
        return {"component": self.component, "field": self.field, "class": self.kind,
                "old": self.old, "new": self.new, "unit": self.unit}  # fmt: skip


_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _show_pair(a, b, unit: str) -> tuple[str, str]:
    """`a` and `b` as a reader compares them: seconds and hertz in one SI prefix chosen by the larger
    magnitude (153 us -> 98 us, not 0.000153 s -> 9.8e-05 s), with as few digits as keep two different
    values different (a 3 kHz shift of a 5 GHz qubit reads 5.123 GHz -> 5.12303 GHz, not twice 5.12 GHz)."""
    if unit not in ("s", "Hz") or not (_is_number(a) or _is_number(b)):
        return _show(a, unit), _show(b, unit)
    top = max(abs(v) for v in (a, b) if _is_number(v))
    scale, prefix = next(((f, p) for f, p in _PREFIXES if top >= f), _PREFIXES[-1]) if top else (1.0, "")
    for digits in range(3, 13):
        shown = [_show(v, unit) if not _is_number(v) else f"{v / scale:.{digits}g} {prefix}{unit}" for v in (a, b)]
        if shown[0] != shown[1] or a == b:
            return shown[0], shown[1]
    return shown[0], shown[1]


def _show(v, unit: str) -> str:
    if v is None:
        return "(none)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return fmt(v) + (f" {unit}" if unit not in ("", "-") else "")
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    return _compact(v)


def _compact(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_compact(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_compact(x) for x in v) + "]"
    if isinstance(v, float):
        return fmt(v)
    return str(v)


def _relative(c: Change) -> str:
    a, b = c.old, c.new
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return ""
    if a == 0 or not math.isfinite(a):
        return ""
    return f" ({(b - a) / abs(a):+.1%})"


def _plain(v):
    """A JSON-ready value for the report."""
    if v is _MISSING:
        return None
    if isinstance(v, BaseModel):
        return v.model_dump(mode="json")
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in sorted(v.items())}
    return v


def _unit(owner: type[BaseModel], name: str) -> str:
    q = quantity(owner, name)
    return q.unit if q is not None else "-"


@functools.cache
def _field_names(cls: type[BaseModel]) -> tuple[str, ...]:
    return tuple(cls.model_fields)


@functools.cache
def _classify_cached(classify, owner: type[BaseModel], name: str) -> tuple[str, str]:
    return classify(owner, name), _unit(owner, name)


def _diff_models(a: BaseModel, b: BaseModel, path: tuple, component: str, out: list, classify) -> None:
    ta, tb = type(a), type(b)
    fa, fb = _field_names(ta), _field_names(tb)
    da, db = a.__dict__, b.__dict__  # pydantic keeps field values here
    names = fb if ta is tb else fb + tuple(n for n in fa if n not in fb)
    for name in names:
        va = da[name] if name in da else _MISSING
        vb = db[name] if name in db else _MISSING
        if va is not _MISSING and vb is not _MISSING and va == vb:
            continue
        owner = tb if vb is not _MISSING else ta
        kind, unit = _classify_cached(classify, owner, name)
        here = path + (name,)
        if isinstance(va, BaseModel) and isinstance(vb, BaseModel):
            _diff_models(va, vb, here, component, out, classify)
        elif _keyed(va) and _keyed(vb):
            a_, b_ = {_key(x): x for x in va}, {_key(x): x for x in vb}
            for k in sorted(set(a_) | set(b_), key=_natural):
                if k not in a_ or k not in b_:
                    out.append(Change(component, ".".join(here + (k,)), kind,
                                      _plain(a_.get(k, _MISSING)), _plain(b_.get(k, _MISSING)), "-"))  # fmt: skip
                elif a_[k] != b_[k]:
                    _diff_models(a_[k], b_[k], here + (k,), component, out, classify)
            if [_key(x) for x in va if _key(x) in b_] != [_key(x) for x in vb if _key(x) in a_]:
                out.append(Change(component, ".".join(here) + " (order)", kind,
                                  [_key(x) for x in va], [_key(x) for x in vb], "-"))  # fmt: skip
        elif isinstance(va, dict) and isinstance(vb, dict):
            for k in sorted(set(va) | set(vb)):
                if va.get(k) != vb.get(k):
                    out.append(Change(component, ".".join(here + (k,)), kind, va.get(k), vb.get(k), unit))
        else:
            out.append(Change(component, ".".join(here), kind, _plain(va), _plain(vb), unit))


def _key(x) -> str:
    return x.name if hasattr(x, "name") else _pair_name(x.qubits)


def _keyed(v) -> bool:
    """A tuple of named models (qubits, boards) or of models keyed by a pair of qubits (couplers)."""
    return (isinstance(v, tuple) and bool(v) and all(isinstance(x, BaseModel) for x in v)
            and all(hasattr(x, "name") or hasattr(x, "qubits") for x in v))  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _natural(name: str):
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _pair_name(pair) -> str:
    return "-".join(sorted(pair, key=_natural))


@dataclass(frozen=True)
class CalibrationDiff:
    changes: tuple[Change, ...]

    def __repr__(self) -> str:
        counts = {k: sum(c.kind == k for c in self.changes) for k in self.classes}
        return f"CalibrationDiff({len(self.changes)} changes: {counts})"

    def __bool__(self) -> bool:
        return bool(self.changes)

    @property
    def classes(self) -> tuple[str, ...]:
        """The classes present, in order of the work they cause."""
        order = CLASSES + (WIRING, UNCLASSIFIED)
        return tuple(k for k in order if any(c.kind == k for c in self.changes))

    def of(self, kind: str) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind == kind)

    def text(self) -> str:
        if not self.changes:
            return "no changes"
        return "\n".join(c.describe() for c in self.changes)

    def to_json(self) -> list[dict]:
        return [c.to_json() for c in self.changes]


def _named(items, key) -> dict:
    return {key(x): x for x in items}


def _diff_collections(old, new, key, label, section: str, out: list, classify, added_kind: str) -> None:
    """Named things matched by `key`; added or removed ones are `added_kind`; a different order too,
    since the compiler's graph (and so an adapted placement) follows the file's order."""
    a, b = _named(old, key), _named(new, key)
    for k in sorted(set(a) | set(b), key=lambda k: _natural(label(k))):
        if k not in a:
            out.append(Change(label(k), "", added_kind, None, "added", "-"))
        elif k not in b:
            out.append(Change(label(k), "", added_kind, "present", None, "-"))
        else:
            _diff_models(a[k], b[k], (), label(k), out, classify)
    common_a = [label(key(x)) for x in old if key(x) in b]
    common_b = [label(key(x)) for x in new if key(x) in a]
    if common_a != common_b:
        out.append(Change(section, "order in the file", added_kind, common_a, common_b, "-"))


def _single_pairs(cal: m.Calibration) -> set[frozenset]:
    seen: dict[frozenset, int] = {}
    for c in cal.couplers:
        seen[frozenset(c.qubits)] = seen.get(frozenset(c.qubits), 0) + 1
    return {p for p, n in seen.items() if n == 1}


def diff_calibrations(old: m.Calibration, new: m.Calibration) -> CalibrationDiff:
    """Every changed field of the calibration, qubits matched by name and couplers by their pair."""
    out: list[Change] = []
    if old.calibrated_at != new.calibrated_at:
        out.append(Change("calibration", "calibrated_at", field_class(m.Calibration, "calibrated_at"),
                          old.calibrated_at, new.calibrated_at, "-"))  # fmt: skip
    _diff_collections(old.qubits, new.qubits, lambda q: q.name, str, "qubits", out, field_class, STRUCTURE)
    # a pair with one gate in both files is matched by its pair (its kind may change: `timing`); where a
    # pair has several, each is matched by its kind and control
    single = _single_pairs(old) & _single_pairs(new)

    def gate_key(c):
        pair = frozenset(c.qubits)
        return pair if pair in single else (pair, c.gate, c.control)

    def gate_label(k):
        return _pair_name(k) if isinstance(k, frozenset) else f"{_pair_name(k[0])} {k[1]}" + (f" ({k[2]})" if k[2] else "")

    # a coupler's pair is a set (the hash sorts it too): its written order is no change; a CR direction is
    # its `control`
    def unordered(cs):
        return tuple(c if list(c.qubits) == sorted(c.qubits) else c.model_copy(update={"qubits": tuple(sorted(c.qubits))})
                     for c in cs)  # fmt: skip

    _diff_collections(unordered(old.couplers), unordered(new.couplers), gate_key, gate_label, "couplers", out,
                      field_class, STRUCTURE)  # fmt: skip
    was, now = chosen_gates(old.couplers), chosen_gates(new.couplers)
    for pair in sorted(set(was) & set(now), key=lambda p: _natural(_pair_name(p))):
        a, b = was[pair], now[pair]
        if (a.gate, a.control) != (b.gate, b.control):
            out.append(Change(_pair_name(pair), "gate the compiler uses", TIMING, gate_label((pair, a.gate, a.control)),
                              gate_label((pair, b.gate, b.control)), "-"))  # fmt: skip
    _diff_collections(old.static_zz, new.static_zz, lambda z: frozenset(z.qubits), lambda k: f"static_zz {_pair_name(k)}",
                      "static_zz", out, field_class, QUALITY)  # fmt: skip
    ex_a, ex_b = old.crosstalk_exclusions, new.crosstalk_exclusions
    if len(ex_a) != len(ex_b):
        out.append(Change("crosstalk_exclusions", "", TIMING, _plain(ex_a), _plain(ex_b), "-"))
    else:
        # by position: the scheduler names each group's resource by its index
        for i, (x, y) in enumerate(zip(ex_a, ex_b)):
            _diff_models(x, y, (), f"crosstalk_exclusions[{i}]", out, field_class)
    return CalibrationDiff(tuple(out))


def diff_wiring(old: m.Wiring | None, new: m.Wiring | None, old_firmware: dict, new_firmware: dict) -> CalibrationDiff:
    """Wiring changes (any of them means a full compile), firmware file contents included."""
    out: list[Change] = []
    if old is None or new is None:
        if old is not new:
            out.append(Change("wiring", "", WIRING, "none" if old is None else "present", "none" if new is None else "present", "-"))
        return CalibrationDiff(tuple(out))
    _diff_models(old, new, (), "wiring", out, lambda owner, name: WIRING)
    for board in sorted(set(old_firmware) | set(new_firmware)):
        a, b = old_firmware.get(board), new_firmware.get(board)
        if a is not None and b is not None and a.sha256 != b.sha256:
            out.append(Change("wiring", f"boards.{board}.firmware (file content)", WIRING, a.sha256, b.sha256, "-"))
    return CalibrationDiff(tuple(out))


def diff_devices(old, new) -> CalibrationDiff:
    """Calibration and wiring changes between two loaded devices (`ctrl diff-device`)."""
    changes: list[Change] = []
    if old.name != new.name:
        changes.append(Change("device", "name", STRUCTURE, old.name, new.name, "-"))
    if old.wiring_hash != new.wiring_hash:
        changes.extend(diff_wiring(old.wiring, new.wiring, dict(old.firmware), dict(new.firmware)).changes)
    changes.extend(diff_calibrations(old.calibration, new.calibration).changes)
    return CalibrationDiff(tuple(changes))
