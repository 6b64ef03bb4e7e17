"""The results file of a lab run: JSON lines, append-only.

Line 1 is the header (format, identity, provenance, `started_utc`), created through a temporary file and a
rename, so a results file either has a whole header or does not exist. Every later line is appended once
and fsynced, and never rewritten: a batch (`{"batch": i, ...}`), or an event that changes what the header
says (`{"event": "resumed", "utc": ...}`, `{"event": "finished", "utc": ..., "summary": ...}`), which the
reader folds into the header it returns (`resumed_utc`, `finished_utc`, `summary`). Writing a batch costs
its own line only, whatever the length of the run.

A kill in the middle of an append leaves a last line without its newline: the reader drops it (with a
note) and `start` truncates it away before resuming. Anything else that is not a well-formed line is an
error naming the file and line. On reading, batches must be numbered 0, 1, ... with each `first_shot` the
sum of the earlier batches' shots, and no two batches may hold the same samples of a board's random stream
(`stream`: seed and first position, on boards that report one).

`locked` holds an exclusive lock (flock on a sibling `.lock` file) for a whole run, so two runs cannot
write the same file.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ctrl.errors import CtrlError

FORMAT = "ctrl.lab-results/2"
OLD_FORMATS = ("ctrl.lab-results/1",)


@dataclass(frozen=True)
class Results:
    path: Path
    header: dict  # the header line with the events folded in
    batches: tuple[dict, ...]
    note: str = ""  # what the reader dropped (a torn last line), for the user
    size: int = 0  # bytes of the file that hold whole lines

    def __repr__(self) -> str:
        return f"Results({self.path.name}: {len(self.batches)} batches, {self.shots} shots)"

    @property
    def shots(self) -> int:
        return sum(b["shots"] for b in self.batches)

    def total(self, key: str) -> int:
        return sum(int(b[key]) for b in self.batches)


@contextmanager
def locked(path: Path):
    """Hold the run's exclusive lock on `path` (through `path.lock`, which stays behind: removing it
    would let a third run lock a new file while the second still holds the old one)."""
    path = Path(path)
    lock = path.with_name(path.name + ".lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise CtrlError(f"{path}: cannot create the lock file {lock.name} ({e.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise CtrlError(
                    f"{path}: another ctrl run is writing this results file (it holds {lock.name}); "
                    f"wait for it to finish or use another --out"
                ) from None
            raise CtrlError(f"{path}: cannot lock {lock.name} ({e.strerror})") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def read_results(path: Path) -> Results | None:
    """None if there is no file yet; CtrlError if it is not a results file this version can extend."""
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
        raise CtrlError(f"{path}: not a ctrl lab results file (no complete first line); use another --out")
    fmt = docs[0].get("format")
    if fmt in OLD_FORMATS:
        raise CtrlError(
            f"{path}: a {fmt} file (written whole per batch by an older ctrl); this ctrl appends to {FORMAT} "
            f"files only: finish that run with the ctrl that started it, or use another --out"
        )
    if fmt != FORMAT or not isinstance(docs[0].get("identity"), dict):
        raise CtrlError(f"{path}:1: not a ctrl lab results file (expected a {FORMAT} header)")
    header = dict(docs[0]) | {"resumed_utc": [], "finished_utc": None}
    batches: list[dict] = []
    drawn: dict = {}  # seed -> sorted [start, end, batch] of the stream samples each batch holds
    for n, doc in enumerate(docs[1:], 2):
        if "event" in doc:
            _fold(path, n, header, doc)
        else:
            _check_batch(path, n, header, batches, drawn, doc)
            batches.append(doc)
    return Results(path, header, tuple(batches), note, whole)


def start(path: Path, identity: dict, header: dict, now_utc: str) -> Results:
    """The run's results so far: a new file (header only) or the existing one, checked and marked resumed.

    `identity` must match an existing header field by field: resuming a different program, calibration,
    firmware or batch size into the same file would mix runs. The caller holds `locked(path)`.
    """
    path = Path(path)
    old = read_results(path)
    if old is None:
        doc = {"format": FORMAT, "identity": identity, **header, "started_utc": now_utc}
        _create(path, _line(doc))
        return Results(path, doc | {"resumed_utc": [], "finished_utc": None}, (), "", len(_line(doc)) + 1)
    was = old.header["identity"]
    for k in sorted(set(was) | set(identity)):
        if was.get(k) != identity.get(k):
            raise CtrlError(
                f"{path}: cannot resume: {k} is {identity.get(k)!r} now but {was.get(k)!r} in the file "
                f"(use another --out for a different run)"
            )
    if old.note:
        try:
            os.truncate(path, old.size)
        except OSError as e:
            raise CtrlError(f"{path}: cannot truncate the torn last line ({e.strerror})") from None
    res = _event(old, {"event": "resumed", "utc": now_utc})
    return Results(path, res.header, res.batches, old.note, res.size)


def append(res: Results, batch: dict) -> Results:
    """Append one completed batch (fsynced); returns the extended results."""
    if batch.get("batch") != len(res.batches):
        raise CtrlError(f"{res.path}: batch {batch.get('batch')} out of order (expected {len(res.batches)})")
    if batch.get("first_shot") != res.shots:
        raise CtrlError(f"{res.path}: batch {batch['batch']} starts at shot {batch.get('first_shot')}, not {res.shots}")
    size = _append(res.path, _line(batch))
    return Results(res.path, res.header, res.batches + (batch,), res.note, res.size + size)


def finish(res: Results, now_utc: str, summary: dict) -> Results:
    return _event(res, {"event": "finished", "utc": now_utc, "summary": summary})


def _event(res: Results, doc: dict) -> Results:
    header = dict(res.header)
    _fold(res.path, 0, header, doc)
    size = _append(res.path, _line(doc))
    return Results(res.path, header, res.batches, res.note, res.size + size)


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


def _check_batch(path: Path, n: int, header: dict, batches: list[dict], drawn: dict, doc: dict) -> None:
    """The batch continues the ones before it: its number, its first shot, its size, and its samples."""
    i = len(batches)
    first = sum(b["shots"] for b in batches)
    size = header["identity"].get("batch_shots")
    where = f"{path}:{n}: batch {doc.get('batch')!r}"
    if doc.get("batch") != i:
        raise CtrlError(f"{where}: expected batch {i} (batches are numbered 0, 1, ... in order)")
    shots = doc.get("shots")
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1 or (size is not None and shots != size):
        raise CtrlError(f"{where}: {shots!r} shots, the run's batches hold {size}")
    if doc.get("first_shot") != first:
        raise CtrlError(f"{where}: first_shot is {doc.get('first_shot')!r}, the earlier batches hold {first} shots")
    for key in ("attempts", "accepted", "decision_mismatches"):
        v = doc.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= shots:
            raise CtrlError(f"{where}: {key} is {v!r}, expected 0 to {shots}")
    st = doc.get("stream")
    if st is None:
        return
    pos = st.get("position") if isinstance(st, dict) else None
    if isinstance(pos, bool) or not isinstance(pos, int) or pos < 0 or not isinstance(st.get("seed"), int):
        raise CtrlError(f"{where}: stream is {st!r}, expected {{\"seed\": S, \"position\": P}} (integers)")
    lo, hi = pos, pos + shots
    # the recorded ranges of a seed do not overlap, so only the neighbours of the new one can
    ranges = drawn.setdefault(st["seed"], [])
    k = bisect.bisect(ranges, [lo])
    for other in ranges[max(0, k - 1) : k + 1]:
        if lo < other[1] and other[0] < hi:
            raise CtrlError(
                f"{where}: holds samples {lo}..{hi - 1} of the board's stream (seed {st['seed']}), which batch "
                f"{other[2]} already holds: a replayed batch"
            )
    ranges.insert(k, [lo, hi, i])


def _create(path: Path, line: str) -> None:
    """The header, whole or not at all: written beside the file, fsynced, renamed into place. The
    temporary name is fixed (the caller holds the lock), so a kill here leaves one file a rerun overwrites."""
    tmp = path.with_name(f".{path.name}.header")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        raise CtrlError(f"{path}: cannot create the results file ({e.strerror})") from None


def _append(path: Path, line: str) -> int:
    data = (line + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise CtrlError(f"{path}: cannot append to the results file ({e.strerror})") from None
    return len(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _line(doc: dict) -> str:
    # allow_nan=False: a NaN would make the line unreadable by strict JSON readers
    try:
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError as e:
        raise CtrlError(f"results line not written: {e}") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")
