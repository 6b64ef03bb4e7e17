"""`json.dumps(dump, cls=qick.helpers.NpEncoder, sort_keys=True, indent=1)`, faster, and with the places a
pulse-only patch rewrites marked.

The text is the same, character for character (tested on every shipped device): ctrl.jsontext's writer,
with numpy values and qick's Waveform through NpEncoder's `default`.

`render_dump(dump)` returns the text and its spans: (start, end) offsets of each waveform, of each
program instruction, of each envelope's base64 data string, and of the whole `envelopes`, `gen_chs`
and `ro_chs` values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ctrl.jsontext import esc as _esc
from ctrl.jsontext import key_text as _key
from ctrl.jsontext import writer

_ENCODER = None


def _default(o):
    global _ENCODER
    if _ENCODER is None:
        from qick.helpers import NpEncoder

        _ENCODER = NpEncoder()
    return _ENCODER.default(o)


encode, encode_flat = writer(_default)  # NpEncoder's conversions (numpy values, qick's Waveform) where json has none


def dumps(o) -> str:
    """json.dumps(o, cls=NpEncoder, sort_keys=True, indent=1)."""
    return encode(o, "\n")


class EnvelopeData(NamedTuple):
    """An envelope's data as NpEncoder writes an array (for re-rendering without the array)."""

    b64: str
    shape: tuple
    dtype: str


def render_envelopes(envelopes: list, start: int = 0) -> tuple[str, dict]:
    """The `envelopes` value of a dump (data as arrays or EnvelopeData), at depth 1, and the spans of each
    data string relative to `start`."""
    out: list[str] = []
    pos = start
    spans: dict = {}

    def put(s: str) -> None:
        nonlocal pos
        out.append(s)
        pos += len(s)

    if not envelopes:
        return "[]", spans
    put("[")
    for g, gen in enumerate(envelopes):
        put("\n  " if g == 0 else ",\n  ")
        _envelopes(gen, g, put, lambda: pos, spans)
    put("\n ]")
    return "".join(out), spans


@dataclass(frozen=True)
class DumpSpans:
    """Offsets (start, end) into the dump text."""

    waves: tuple[tuple[int, int], ...]
    prog: tuple[tuple[int, int], ...]  # every instruction of prog_list
    envelope_data: dict  # (gen, envelope name) -> the base64 string (with its quotes)
    envelopes: tuple[int, int]
    gen_chs: tuple[int, int]
    ro_chs: tuple[int, int]


def render_dump(dump: dict) -> tuple[str, DumpSpans]:
    """The dump as json.dumps(..., cls=NpEncoder, sort_keys=True, indent=1) writes it, and its spans."""
    out: list[str] = []
    pos = 0

    def put(s: str) -> None:
        nonlocal pos
        out.append(s)
        pos += len(s)

    waves: list = []
    prog: list = []
    env_data: dict = {}
    whole: dict = {}
    put("{")
    first = True
    for key, value in sorted(dump.items()):
        put(("\n " if first else ",\n ") + _key(key) + ": ")
        first = False
        start = pos
        if key == "prog_list" and value:
            put("[")
            for i, inst in enumerate(value):
                put("\n  " if i == 0 else ",\n  ")
                s = encode_flat(inst, "\n  ")
                prog.append((pos, pos + len(s)))
                put(s)
            put("\n ]")
        elif key == "waves" and value:
            put("[")
            for i, w in enumerate(value):
                put("\n  " if i == 0 else ",\n  ")
                s = encode_flat(w.to_dict() if hasattr(w, "to_dict") else w, "\n  ")
                waves.append((pos, pos + len(s)))
                put(s)
            put("\n ]")
        elif key == "envelopes":
            text, spans = render_envelopes(value, pos)
            env_data.update(spans)
            put(text)
        else:
            put(encode(value, "\n "))
        whole[key] = (start, pos)
    put("\n}" if not first else "}")
    text = "".join(out)
    empty = (0, 0)
    return text, DumpSpans(tuple(waves), tuple(prog), env_data, whole.get("envelopes", empty),
                           whole.get("gen_chs", empty), whole.get("ro_chs", empty))  # fmt: skip


def _envelopes(gen: dict, g: int, put, pos, env_data: dict) -> None:
    """One generator's {"envs": {name: {"addr", "data"}}, "next_addr"} at depth 2, marking each data string."""
    if not isinstance(gen, dict) or set(gen) != {"envs", "next_addr"} or not isinstance(gen["envs"], dict):
        put(encode(gen, "\n  "))
        return
    put('{\n   "envs": ')
    envs = gen["envs"]
    if not envs:
        put("{}")
    else:
        put("{")
        for i, (name, env) in enumerate(sorted(envs.items())):
            put(("\n    " if i == 0 else ",\n    ") + _key(name) + ": ")
            data = env.get("data") if isinstance(env, dict) else None
            if isinstance(data, EnvelopeData):
                b64, shape, dtype = data
            elif set(env) == {"addr", "data"} and hasattr(data, "tobytes"):
                b64, shape, dtype = _default(data)
            else:
                put(encode(env, "\n    "))
                continue
            put('{\n     "addr": ' + encode(env["addr"]) + ',\n     "data": [\n      ')
            s = _esc(b64)
            env_data[(g, name)] = (pos(), pos() + len(s))
            put(s)
            put(",\n      " + encode(list(shape), "\n      ") + ",\n      " + _esc(dtype) + "\n     ]\n    }")
        put("\n   }")
    put(',\n   "next_addr": ' + encode(gen["next_addr"], "\n   ") + "\n  }")
