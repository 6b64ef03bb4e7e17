"""The JSON lines results files an older `ctrl run` wrote (format `ctrl.lab-results/2`), read for
`ctrl results convert`, which turns them into the HDF5 file `ctrl run` now writes (`ctrl.lab.results`).

Line 1 is the header (format, identity, provenance, `started_utc`); every later line is a batch
(`{"batch": i, ...}`) or an event that changes what the header says (`{"event": "resumed", "utc": ...}`,
`{"event": "finished", "utc": ..., "summary": ...}`), which the reader folds into the header it returns
(`resumed_utc`, `finished_utc`, `summary`).

A run killed in the middle of an append left a last line without its newline: the reader drops it (with
a note). Anything else that is not a well-formed line is an error naming the file and line, and the
batches must add up as in a results file (`ctrl.lab.results.check_batch`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ctrl.errors import CtrlError
from ctrl.lab.results import Results, check_batch

FORMAT = "ctrl.lab-results/2"
OLD_FORMATS = ("ctrl.lab-results/1",)


def read_results(path: Path) -> Results | None:
    """The header (events folded in, without `format`) and batches of a JSON lines results file; None if
    there is no file; CtrlError naming the file (and line) if it is not one or its batches do not add up."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CtrlError(f"{path}: cannot read the results file ({e.strerror})") from None
    whole = data.rfind(b"\n") + 1
    lines = data[:whole].split(b"\n")[:-1]
    note = ""
    if whole < len(data):
        note = (f"{path}: dropped a torn last line ({len(data) - whole} bytes after line {len(lines)}, "
                f"a write the run did not finish)")  # fmt: skip
    docs = []
    for n, line in enumerate(lines, 1):
        try:
            doc = json.loads(line, parse_constant=_no_constant)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CtrlError(f"{path}:{n}: not a JSON line ({getattr(e, 'msg', None) or e.reason})") from None
        except ValueError as e:
            raise CtrlError(f"{path}:{n}: not a JSON line ({e})") from None
        if not isinstance(doc, dict):
            raise CtrlError(f"{path}:{n}: expected a JSON object, found {type(doc).__name__}")
        docs.append(doc)
    if not docs:
        raise CtrlError(f"{path}: not a ctrl lab results file (no complete first line)")
    fmt = docs[0].get("format")
    if fmt in OLD_FORMATS:
        raise CtrlError(f"{path}: a {fmt} file (written whole per batch by an older ctrl); this ctrl converts "
                        f"{FORMAT} files only: convert it with the ctrl that wrote it")
    if fmt != FORMAT or not isinstance(docs[0].get("identity"), dict):
        raise CtrlError(f"{path}:1: not a ctrl lab results file (expected a {FORMAT} header)")
    header = {k: v for k, v in docs[0].items() if k != "format"} | {"resumed_utc": [], "finished_utc": None}
    batches: list[dict] = []
    drawn: dict = {}  # seed -> sorted [start, end, batch] of the stream samples each batch holds
    for n, doc in enumerate(docs[1:], 2):
        if "event" in doc:
            _fold(path, n, header, doc)
        else:
            check_batch(f"{path}:{n}: batch {doc.get('batch')!r}", header, batches, drawn, doc)
            batches.append(doc)
    return Results(path, header, tuple(batches), note)


def _fold(path: Path, n: int, header: dict, doc: dict) -> None:
    kind = doc.get("event")
    if kind == "resumed" and isinstance(doc.get("utc"), str):
        header["resumed_utc"] = [*header["resumed_utc"], doc["utc"]]
        header["finished_utc"] = None
        header.pop("summary", None)
    elif kind == "finished" and isinstance(doc.get("utc"), str) and isinstance(doc.get("summary"), dict):
        header["finished_utc"] = doc["utc"]
        header["summary"] = doc["summary"]
    else:
        raise CtrlError(f"{path}:{n}: not a results event (resumed with utc, or finished with utc and summary)")


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")
