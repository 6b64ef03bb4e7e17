"""JSON text exactly as `json.dumps(o, indent=1, sort_keys=True)` writes it, faster.

The same escaping (ASCII, json's C encoder), `float.__repr__`, keys sorted by their own value before they
are written (so integer keys come in numeric order). Faster because it builds each container with one
string join instead of json's chain of generators, and writes a dict of scalars (an instruction, a
waveform, an operation's fields) with json's C encoder, its indentation as the item separator. Used for
every large JSON output: program.json, the QICK dumps (`ctrl.backends.qick.dumpjson`), report.json.

A fenced fast path: its reference is json.dumps itself, and tests/test_jsontext.py checks that both write
the same text (odd values, and whole programs). It pays: grid55_d5's program.json (554 kB) takes 43 ms
here against 78 ms by json.dumps.
"""

from __future__ import annotations

import json

esc = json.encoder.encode_basestring_ascii  # the C encoder where available, as json.dumps uses
_INF = float("inf")
_LEAF = frozenset({str, int, float, bool, type(None)})


def float_text(o: float) -> str:
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return float.__repr__(o)


def key_text(k) -> str:
    """A key as json writes it: a string, or a scalar's own text in quotes (which none of them needs escaped)."""
    if isinstance(k, str):
        return esc(k)
    if k is None or isinstance(k, (int, float)):  # bool is an int
        return '"' + encode(k) + '"'
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def _refuse(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def writer(default=_refuse):
    """(encode, encode_flat) for values that `default` turns into JSON ones where json cannot (as
    json.dumps's `default`, or a JSONEncoder's). `encode(o, ind)`: one value at the indentation `ind`
    ("\\n" plus one space per level); `encode_flat(d, ind)`: a dict there, by json's C encoder when it holds
    scalars only."""
    flat: dict[str, object] = {}  # indentation -> C encoder writing a flat dict's items at that depth

    def encode(o, ind: str = "\n") -> str:
        if isinstance(o, str):
            return esc(o)
        if o is None:
            return "null"
        if o is True:
            return "true"
        if o is False:
            return "false"
        if isinstance(o, int):
            return int.__repr__(o)
        if isinstance(o, float):
            return float_text(o)
        inner = ind + " "
        if isinstance(o, (list, tuple)):
            if not o:
                return "[]"
            return "[" + inner + ("," + inner).join([encode(v, inner) for v in o]) + ind + "]"
        if isinstance(o, dict):
            if not o:
                return "{}"
            return ("{" + inner + ("," + inner).join([key_text(k) + ": " + encode(v, inner)
                                                      for k, v in sorted(o.items())]) + ind + "}")  # fmt: skip
        return encode(default(o), ind)

    def encode_flat(d, ind: str) -> str:
        inner = ind + " "
        enc = flat.get(inner)
        if enc is None and json.encoder.c_make_encoder is not None:
            enc = flat[inner] = json.encoder.c_make_encoder(None, default, esc, None, ": ", "," + inner, True, False,
                                                            True)  # fmt: skip
        if not d or enc is None:
            return encode(d, ind)
        for v in d.values():
            if v.__class__ not in _LEAF:  # a container would come out on one line
                return encode(d, ind)
        return "{" + inner + "".join(enc(d, 0))[1:-1] + ind + "}"

    return encode, encode_flat


encode = writer()[0]


def dumps(o) -> str:
    """json.dumps(o, sort_keys=True, indent=1)."""
    return encode(o, "\n")
