"""File to `Device`, or to a list of located messages: parse, upgrade, validate the model, cross-check.

Every message reads `FILE:LINE:COLUMN: field.path: what is wrong, and what was expected (unit, range)`.
Nothing here prints; nothing but `CtrlError` escapes.
"""

from __future__ import annotations

import contextvars
import difflib
import re
import types
import typing
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ValidationError

from ctrl.device.checks import DEFAULT_FREQUENCY_GUARD_HZ, check
from ctrl.device.device import Device
from ctrl.device.model import DeviceFile
from ctrl.device.source import Marks, Problem, parse, path_str
from ctrl.device.units import Quantity, fmt, yaml_float
from ctrl.device.upgrade import upgrade
from ctrl.errors import CtrlError
from ctrl.files import MiB, read_limited


class DeviceError(CtrlError):
    """A device file with problems; `problems` holds one located message per problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# ------------------------------------------------------------------------------------ pydantic errors

_TYPE_WORDS = {
    "float_type": "a number",
    "int_type": "an integer",
    "bool_type": "true or false",
    "string_type": "a string",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_NUMBER_TEXT = re.compile(r"^[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _describe(v) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        s = v if len(v) <= 40 else v[:37] + "..."
        return f"the text '{s}'"
    if isinstance(v, (int, float)):
        return fmt(v)
    if isinstance(v, (list, tuple)):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


def _unwrap(tp, metadata: list):
    """Strip Annotated (collecting its metadata) and Optional."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            metadata.extend(tp.__metadata__)
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
            else:
                return tp
        else:
            return tp


def _is_model(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tag_member(members, tag):
    for m in members:
        for f in m.model_fields.values():
            if typing.get_origin(f.annotation) is typing.Literal and tag in typing.get_args(f.annotation):
                return m
    return None


def _union_tags(members) -> tuple[str, list[str]]:
    for name, f in members[0].model_fields.items():
        if typing.get_origin(f.annotation) is typing.Literal:
            tags = [t for m in members for t in typing.get_args(m.model_fields[name].annotation)]
            return name, tags
    return "", []


def _resolve(loc: tuple):
    """Walk the model types along a pydantic error location.

    Returns (data path without union tags, Quantity or None, field description or None,
    parent model or None, type at the end of the path).
    """
    tp: object = DeviceFile
    path: list = []
    meta: list = []
    desc = None
    parent = None
    for el in loc:
        meta = []
        tp = _unwrap(tp, meta)
        if _is_model(tp):
            parent = tp
            f = tp.model_fields.get(el) if isinstance(el, str) else None
            path.append(el)
            if f is None:
                tp, desc = None, None
                continue
            desc = f.description
            meta = list(f.metadata)
            tp = f.annotation
            continue
        members = [a for a in typing.get_args(tp) if _is_model(a)] if typing.get_origin(tp) in (typing.Union, types.UnionType) else []
        if members and isinstance(el, str):
            m = _tag_member(members, el)
            if m is not None:  # a discriminated-union tag: not part of the data path
                tp = m
                meta = []
                continue
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        path.append(el)
        if origin is tuple and args:
            tp = args[0] if (len(args) == 2 and args[1] is Ellipsis) else (args[el] if isinstance(el, int) and el < len(args) else None)
        elif origin is dict and len(args) == 2:
            tp = args[1]
        else:
            tp = None
        desc = None
    tail_meta: list = []
    end = _unwrap(tp, tail_meta) if tp is not None else None
    q = next((m for m in meta + tail_meta if isinstance(m, Quantity)), None)
    for m in meta + tail_meta:
        d = getattr(m, "description", None)
        if d and not desc:
            desc = d
    return tuple(path), q, desc, parent, end


def _message(err: dict) -> tuple[tuple, bool, str]:
    """(data path, point at the key?, message) for one pydantic error."""
    loc = tuple(err["loc"])
    t = err["type"]
    inp = err.get("input")
    ctx = err.get("ctx") or {}
    path, q, desc, parent, end = _resolve(loc)
    expected = q.expected() if q else desc
    if t == "missing":
        msg = f"missing field '{path[-1]}'" + (f": {expected}" if expected else "")
        return path[:-1], False, msg
    if t == "extra_forbidden":
        msg = f"unknown field '{path[-1]}'"
        if parent is not None:
            close = difflib.get_close_matches(str(path[-1]), list(parent.model_fields), n=1, cutoff=0.6)
            if close:
                msg += f" (did you mean '{close[0]}'?)"
            else:
                msg += f" (allowed here: {', '.join(parent.model_fields)})"
        return path, True, msg
    if t == "quantity":
        return path, False, ctx["msg"]
    if t in ("union_tag_invalid", "union_tag_not_found", "literal_error"):
        members = [a for a in typing.get_args(end) if _is_model(a)] if end is not None else []
        if t == "union_tag_not_found":
            field, tags = _union_tags(members) if members else (ctx.get("discriminator", "?").strip("'"), [])
            return path, False, f"missing field '{field}' (one of: {', '.join(tags)})"
        if t == "union_tag_invalid":
            field, tags = _union_tags(members) if members else (ctx.get("discriminator", "?").strip("'"), [])
            return path + (field,), False, f"{field} must be one of: {', '.join(tags)}; got {_describe(ctx.get('tag'))}"
        return path, False, f"expected one of {ctx.get('expected')}, got {_describe(inp)}"
    if t in _TYPE_WORDS:
        what = q.expected() if q else _TYPE_WORDS[t] + (f" ({desc})" if desc else "")
        msg = f"expected {what}, got {_describe(inp)}"
        if t == "float_type" and isinstance(inp, str) and _NUMBER_TEXT.match(inp.strip()):
            try:
                msg += (f"; YAML reads {inp} as text (PyYAML needs a '.' in the number and a sign in the exponent): "
                        f"write {yaml_float(float(inp.replace('_', '')))}")
            except ValueError:
                pass
        return path, False, msg
    if t == "finite_number":
        return path, False, f"expected a finite number{f': {expected}' if expected else ''}, got {_describe(inp)}"
    if t in ("too_short", "too_long"):
        lo, hi = ctx.get("min_length"), ctx.get("max_length")
        n = ctx.get("actual_length")
        want = f"exactly {lo}" if lo == hi and lo is not None else (f"at least {lo}" if t == "too_short" else f"at most {hi}")
        return path, False, f"expected {want} item(s), got {n}"
    if t == "string_pattern_mismatch":
        return path, False, f"{_describe(inp)} is not valid: expected {desc or ctx.get('pattern')}"
    if t in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return path, False, f"{err['msg'].replace('Input should be', 'must be')}{f' ({desc})' if desc else ''}, got {_describe(inp)}"
    if t == "value_error":
        return path, False, err["msg"].removeprefix("Value error, ")
    return path, False, f"{err['msg']}, got {_describe(inp)}"


def _tuples(x):
    """Lists to tuples, recursively: the strict models take tuples for their immutable sequences."""
    if isinstance(x, list):
        return tuple(_tuples(v) for v in x)
    if isinstance(x, dict):
        return {k: _tuples(v) for k, v in x.items()}
    return x


def _located(name: str, marks: Marks, path: tuple, msg: str, key: bool = False) -> Problem:
    line, col = marks.at(path, key=key)
    return Problem(name, line, col, path_str(path), msg)


# ------------------------------------------------------------------------------------ the pipeline


def _check_text(text: str, name: str, base_dir: Path, guard_hz: float):
    """(problems, warnings, DeviceFile or None, firmware by board)."""
    try:
        src = parse(text, name)
    except CtrlError as e:
        return [str(e)], [], None, {}
    problems = list(src.problems)
    data, version_problem = upgrade(src.data, src.marks)
    if version_problem:
        problems.append(_located(name, src.marks, ("schema_version",), version_problem))
        return _sorted(problems), [], None, {}
    if not isinstance(data, dict):
        problems.append(Problem(name, *src.marks.at(()), "",
                                f"expected a mapping with schema_version, name, wiring, calibration; got {_describe(data)}"))
        return _sorted(problems), [], None, {}
    try:
        spec = DeviceFile.model_validate(_tuples(data))
    except ValidationError as e:
        for err in e.errors(include_url=False):
            path, key, msg = _message(err)
            problems.append(_located(name, src.marks, path, msg, key))
        return _sorted(problems), [], None, {}
    found, notes, firmware = check(spec, base_dir, guard_hz)
    problems += [_located(name, src.marks, path, msg) for path, msg in found]
    warnings = [_located(name, src.marks, path, msg) for path, msg in notes]
    if _STRICT.get():
        problems, warnings = problems + warnings, []
    return _sorted(problems), _sorted(warnings), spec, firmware


_STRICT: contextvars.ContextVar[bool] = contextvars.ContextVar("ctrl_strict_devices", default=False)
_HEARD: contextvars.ContextVar[list | None] = contextvars.ContextVar("ctrl_device_warnings", default=None)


@contextmanager
def device_warnings(strict: bool = False):
    """Collect the warnings of every device file loaded inside the block (a list, filled as they load);
    `strict`: those findings are errors instead."""
    heard: list[str] = []
    tokens = (_STRICT.set(strict), _HEARD.set(heard))
    try:
        yield heard
    finally:
        _HEARD.reset(tokens[1])
        _STRICT.reset(tokens[0])


def _sorted(problems) -> list[str]:
    out, seen = [], set()
    for p in sorted(problems, key=lambda p: (p.line, p.column, p.path, p.message) if isinstance(p, Problem) else (0, 0, "", p)):
        s = str(p)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


MAX_DEVICE_BYTES = 16 * MiB  # a 1000-qubit calibration is about 1 MiB


def _read(path: Path) -> str:
    data = read_limited(path, MAX_DEVICE_BYTES, "device file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CtrlError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def validate_text(text: str, name: str = "<text>", base_dir: Path | str = ".",
                  frequency_guard_hz: float = DEFAULT_FREQUENCY_GUARD_HZ) -> list[str]:
    """Problems of a device file given as text (firmware paths resolve against `base_dir`)."""
    return _check_text(text, name, Path(base_dir), frequency_guard_hz)[0]


def lint_text(text: str, name: str = "<text>", base_dir: Path | str = ".",
              frequency_guard_hz: float = DEFAULT_FREQUENCY_GUARD_HZ) -> tuple[list[str], list[str]]:
    """(problems, warnings) of a device file given as text."""
    problems, warnings, _, _ = _check_text(text, name, Path(base_dir), frequency_guard_hz)
    return problems, warnings


def validate(path: Path | str, frequency_guard_hz: float = DEFAULT_FREQUENCY_GUARD_HZ) -> list[str]:
    """Every problem of a device file, one located message each; [] if the file is valid."""
    path = Path(path)
    try:
        text = _read(path)
    except CtrlError as e:
        return [str(e)]
    return validate_text(text, str(path), path.parent, frequency_guard_hz)


def load_device(path: Path | str, frequency_guard_hz: float = DEFAULT_FREQUENCY_GUARD_HZ) -> Device:
    """The device in `path`; DeviceError (a CtrlError listing every problem) if it is not valid."""
    path = Path(path)
    text = _read(path)
    problems, warnings, spec, firmware = _check_text(text, str(path), path.parent, frequency_guard_hz)
    if problems:
        raise DeviceError(problems)
    heard = _HEARD.get()
    if heard is not None:
        heard.extend(w for w in warnings if w not in heard)
    return Device(path.resolve(), spec, firmware)
