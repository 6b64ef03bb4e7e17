"""Importers: the calibration files labs already have, turned into ctrl device files (schema v3).

    ctrl import ibm props_sherbrooke.json --out sherbrooke.yaml [--wiring wiring.yaml]

Each format is a module with `convert(raw: bytes, source: str) -> Imported`. A converter keeps every
measured number exactly as the source gives it (converted to SI, nothing rounded); what the source
lacks is left out where schema v3 allows it (the noise model's documented defaults then apply, and
`ctrl validate` warns), or filled in and said so, one line each, in the file's header. Nothing here
unpickles or evaluates anything: JSON and YAML (safe loader) only.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from ctrl.device.load import DeviceError, lint_text
from ctrl.device.source import parse
from ctrl.errors import CtrlError
from ctrl.files import MiB, read_limited

# format name -> module under ctrl.device.importers with convert(raw, source) -> Imported
FORMATS = {
    "ibm": "ibm",
    "qibolab": "qibolab",
    "qick-lab": "slab",
}
MAX_SOURCE_BYTES = 64 * MiB  # a 1000-qubit backend properties file is about 3 MiB


@dataclass(frozen=True)
class Imported:
    """A converted device: the file's data (schema v3, plain dicts and lists, no wiring) and its header
    (comment lines: where each filled-in value came from, what was left out and why)."""

    data: dict
    header: tuple[str, ...]

    def __repr__(self) -> str:
        cal = self.data.get("calibration", {})
        return (f"Imported({self.data.get('name')!r}, {len(cal.get('qubits', ()))} qubits, "
                f"{len(cal.get('couplers', ()))} gates, {len(self.header)} header lines)")


def exact_float(x: float) -> str:
    """`x` as a YAML 1.1 float literal that reads back as exactly `x` (shortest repr, '.' in the mantissa,
    a signed exponent: PyYAML reads `1e-05` as text)."""
    s = repr(float(x))
    if "e" in s:
        mantissa, exponent = s.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        if exponent[0] not in "+-":
            exponent = "+" + exponent
        return f"{mantissa}e{exponent}"
    return s


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(float, lambda d, x: d.represent_scalar("tag:yaml.org,2002:float", exact_float(x)))
# short lists (positions, pairs) on one line, as the shipped files write them
_Dumper.add_representer(
    list,
    lambda d, x: d.represent_sequence("tag:yaml.org,2002:seq", x,
                                      flow_style=len(x) <= 3 and all(not isinstance(v, (dict, list)) for v in x)),
)


def render(imported: Imported) -> str:
    """The device file's text: the header as comments, then the data in the model's field order."""
    head = "".join(f"# {line}\n".replace("# \n", "#\n") for line in imported.header)
    body = yaml.dump(imported.data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    return head + "\n" + body


def source_line(raw: bytes, source: str) -> str:
    """The header line naming the source by name and content hash."""
    return f"imported from {Path(source).name} (sha256:{hashlib.sha256(raw).hexdigest()})"


def import_device(fmt: str, source: Path | str, wiring: Path | str | None = None,
                  out_dir: Path | str = ".") -> str:
    """The device file text for `source` in format `fmt`, with the `wiring:` section of
    the YAML file `wiring` if given, its firmware paths made relative to `out_dir` (where the file is to
    be written); checked as `ctrl validate` checks it (DeviceError listing every problem)."""
    if fmt not in FORMATS:
        raise CtrlError(f"unknown import format {fmt!r} (known: {', '.join(sorted(FORMATS))})")
    source = Path(source)
    raw = read_limited(source, MAX_SOURCE_BYTES, f"{fmt} calibration")
    module = importlib.import_module(f"ctrl.device.importers.{FORMATS[fmt]}")
    imported = module.convert(raw, str(source))
    if wiring is not None:
        imported = _with_wiring(imported, Path(wiring), Path(out_dir))
    text = render(imported)
    # line numbers are those of the text about to be written, not of the source
    problems, _ = lint_text(text, f"{source} as imported", out_dir)
    if problems:
        raise DeviceError(problems)
    return text


def _with_wiring(imported: Imported, path: Path, out_dir: Path) -> Imported:
    text = read_limited(path, 16 * MiB, "wiring file").decode("utf-8", errors="replace")
    src = parse(text, str(path))
    if src.problems:
        raise DeviceError([str(p) for p in src.problems])
    doc = src.data
    wiring = doc.get("wiring") if isinstance(doc, dict) else None
    if not isinstance(wiring, dict):
        raise CtrlError(f"{path}: expected a mapping with a 'wiring' section (boards, controller, qubits)")
    for board in wiring.get("boards") or ():
        if isinstance(board, dict) and isinstance(board.get("firmware"), str):
            where = (path.parent / board["firmware"]).resolve()
            board["firmware"] = os.path.relpath(where, out_dir.resolve())
    data = dict(imported.data)
    data = {k: v for k, v in data.items() if k != "calibration"} | {"wiring": wiring, "calibration": data["calibration"]}
    return Imported(data, imported.header + (f"wiring: from {path.name}",))
