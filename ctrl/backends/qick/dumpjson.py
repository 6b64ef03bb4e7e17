"""`json.dumps(dump, cls=qick.helpers.NpEncoder, sort_keys=True, indent=1)`, faster, and with the places a
pulse-only patch rewrites marked.

The text is the same, character for character (tested on every shipped device): the same escaping
(ASCII, C encoder), `float.__repr__`, keys sorted by their own value before being written (so integer
keys come in numeric order), numpy values and qick's Waveform through NpEncoder's `default`. It is
faster because a list of flat dicts (program instructions, waveforms) is written with one string join
per dict instead of json's generator chain.

`render_dump(dump)` returns the text and its spans: (start, end) offsets of each waveform, of each
program instruction, of each envelope's base64 data string, and of the whole `envelopes`, `gen_chs`
and `ro_chs` values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

_esc = json.encoder.encode_basestring_ascii  # the C encoder where available, as json.dumps uses
_INF = float("inf")


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return float.__repr__(o)


def _key(k) -> str:
    if isinstance(k, str):
        return _esc(k)
    if isinstance(k, float):
        return _esc(_float(k))
    if k is True:
        return '"true"'
    if k is False:
        return '"false"'
    if k is None:
        return '"null"'
    if isinstance(k, int):
        return '"' + int.__repr__(k) + '"'
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


_ENCODER = None


def _default(o):
    global _ENCODER
    if _ENCODER is None:
        from qick.helpers import NpEncoder

        _ENCODER = NpEncoder()
    return _ENCODER.default(o)


def dumps(o) -> str:
    """json.dumps(o, sort_keys=True, indent=1), faster (NpEncoder's conversions for anything else)."""
    return encode(o, "\n")


def encode(o, ind: str = "\n") -> str:
    """One value at the indentation `ind` ("\\n" plus one space per level), as json.dumps(indent=1)."""
    if isinstance(o, str):
        return _esc(o)
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if isinstance(o, int):
        return int.__repr__(o)
    if isinstance(o, float):
        return _float(o)
    inner = ind + " "
    if isinstance(o, (list, tuple)):
        if not o:
            return "[]"
        return "[" + inner + ("," + inner).join([encode(v, inner) for v in o]) + ind + "]"
    if isinstance(o, dict):
        if not o:
            return "{}"
        return ("{" + inner + ("," + inner).join([_key(k) + ": " + encode(v, inner) for k, v in sorted(o.items())])
                + ind + "}")  # fmt: skip
    return encode(_default(o), ind)


_LEAF = frozenset({str, int, float, bool, type(None)})
_FLAT: dict[str, object] = {}  # indentation -> C encoder writing a flat dict's items at that depth


def _flat_encoder(inner: str):
    enc = _FLAT.get(inner)
    if enc is None and json.encoder.c_make_encoder is not None:
        enc = _FLAT[inner] = json.encoder.c_make_encoder(None, _default, _esc, None, ": ", "," + inner, True, False,
                                                         True)  # fmt: skip
    return enc


def encode_flat(d, ind: str) -> str:
    """A dict at the indentation `ind`; one of scalars only (an instruction, a waveform) is written by json's
    C encoder with the indentation as its item separator (keys sorted and converted as json.dumps does)."""
    inner = ind + " "
    enc = _FLAT.get(inner) or _flat_encoder(inner)
    if not d or enc is None:
        return encode(d, ind)
    for v in d.values():
        if v.__class__ not in _LEAF:  # a container would come out on one line
            return encode(d, ind)
    return "{" + inner + "".join(enc(d, 0))[1:-1] + ind + "}"


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
