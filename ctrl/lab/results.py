"""The results file of a lab run: JSON lines, one header then one line per completed batch.

The whole file is rewritten through `write_atomic` after every batch, so a reader (or a rerun after the
client or the board died) always finds a valid file that ends at the last completed batch; nothing
half-written is ever on disk. A rerun with the same file resumes: its identity (program, calibration,
firmware, board, batch size) must equal the header's, and it continues after the last batch.

Timestamps live in the header only (`started_utc`, `resumed_utc`, `finished_utc`); batch lines hold
what the board returned and what was derived from it, so the same data gives the same batch lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ctrl.errors import CtrlError
from ctrl.files import write_atomic

FORMAT = "ctrl.lab-results/1"


@dataclass(frozen=True)
class Results:
    path: Path
    header: dict
    batches: tuple[dict, ...]
    lines: tuple[str, ...] = field(default=(), repr=False, compare=False)  # the batches as written

    def __post_init__(self) -> None:
        # each batch is serialised once, when it is added; the file is rewritten from these lines
        if len(self.lines) != len(self.batches):
            object.__setattr__(self, "lines", tuple(_line(b) for b in self.batches))

    def __repr__(self) -> str:
        return f"Results({self.path.name}: {len(self.batches)} batches, {self.shots} shots)"

    @property
    def shots(self) -> int:
        return sum(b["shots"] for b in self.batches)

    def total(self, key: str) -> int:
        return sum(int(b[key]) for b in self.batches)


def read_results(path: Path) -> Results | None:
    """None if there is no file yet; CtrlError if it is not a results file this version can extend."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CtrlError(f"{path}: cannot read the results file ({e.strerror})") from None
    lines = text.splitlines()
    docs = []
    for n, line in enumerate(lines, 1):
        try:
            docs.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise CtrlError(f"{path}:{n}: not a JSON line ({e.msg})") from None
    if not docs or not isinstance(docs[0], dict) or docs[0].get("format") != FORMAT:
        raise CtrlError(f"{path}: not a ctrl lab results file (expected a {FORMAT} header on line 1)")
    batches = tuple(docs[1:])
    kept = tuple(lines[1:])
    for i, b in enumerate(batches):
        if not isinstance(b, dict) or b.get("batch") != i:
            found = b.get("batch") if isinstance(b, dict) else b
            raise CtrlError(f"{path}:{i + 2}: expected batch {i}, found {found!r}")
    return Results(path, docs[0], batches, kept)


def start(path: Path, identity: dict, header: dict, now_utc: str) -> Results:
    """The run's results so far: a new file (header only) or the existing one, checked and marked resumed.

    `identity` must match an existing header field by field: resuming a different program, calibration,
    firmware or batch size into the same file would mix runs.
    """
    path = Path(path)
    old = read_results(path)
    if old is None:
        doc = {"format": FORMAT, "identity": identity, **header, "started_utc": now_utc, "resumed_utc": [],
               "finished_utc": None}
        res = Results(path, doc, ())
        write(res)
        return res
    was = old.header.get("identity", {})
    for k in sorted(set(was) | set(identity)):
        if was.get(k) != identity.get(k):
            raise CtrlError(
                f"{path}: cannot resume: {k} is {identity.get(k)!r} now but {was.get(k)!r} in the file "
                f"(use another --out for a different run)"
            )
    doc = dict(old.header) | {k: v for k, v in header.items() if k not in ("started_utc",)}
    doc["resumed_utc"] = list(old.header.get("resumed_utc", [])) + [now_utc]
    doc["finished_utc"] = None
    res = Results(path, doc, old.batches, old.lines)
    write(res)
    return res


def append(res: Results, batch: dict) -> Results:
    """Add one completed batch and write the file; returns the extended results."""
    if batch.get("batch") != len(res.batches):
        raise CtrlError(f"{res.path}: batch {batch.get('batch')} out of order (expected {len(res.batches)})")
    out = Results(res.path, res.header, res.batches + (batch,), res.lines + (_line(batch),))
    write(out)
    return out


def finish(res: Results, now_utc: str, summary: dict) -> Results:
    out = Results(res.path, dict(res.header) | {"finished_utc": now_utc, "summary": summary}, res.batches, res.lines)
    write(out)
    return out


def write(res: Results) -> None:
    write_atomic(res.path, "\n".join((_line(res.header),) + res.lines) + "\n")


def _line(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))
