"""The results file of a lab run: one HDF5 file, format `ctrl.lab-dataset/1`, grown batch by batch.

`ctrl run` writes it (`open_run`); `ctrl results convert` writes the same layout from the JSON lines of an
older `ctrl run` (`ctrl.lab.dataset.convert`); `ctrl.lab.dataset.open_dataset` loads either as an
`xarray.Dataset`. Every array names its dimensions in a `dims` attribute, so any HDF5 reader can follow it.

Layout:

- root attributes: the provenance, as strings and numbers (nested values JSON-encoded): `program_hash`,
  `calibration_hash`, `firmware_hash`, `board`, `batch_shots` (the run's identity, also whole as JSON in
  `identity`), `device`, `distance`, `program`, `board_address`, `shots_requested`, `started_utc`,
  `resumed_utc` (JSON list), `finished_utc` ("" while unfinished), `summary` (JSON, "" while unfinished),
  `versions` (JSON), `seeds` (JSON list of the board's stream seeds), `header` (all of the above as one
  JSON object: what a resume reads back), `source` (the JSON lines file a converted file came from).
- per shot (dimension `shot`, coordinate = the run's shot number): `batch`, `board_outcome` (the board's
  verdict: 0 accepted, k > 0 aborted at decision point k - 1), `rule_outcome` (the same rule evaluated by
  ctrl on the same readouts), `accepted` (both 0), `iq` (shot, readout, quadrature): every readout window
  of a slot, channel by channel, with coordinates `readout_channel`, `readout_window`, `readout_label` and
  `threshold` (NaN: none; a converted file has the last two only when converted with its program); with
  the ground truth of an emulated board, `proxy` ("X"/"Z") and `logical_error` (-1: no ground truth).
- per batch (dimension `batch_index`): `batch_first_shot`, `batch_shots`, `batch_accepted`,
  `batch_decision_mismatches`, `batch_stream_seed`, `batch_stream_position` (-1 on a board that reports
  no stream), `batch_record` (the batch's counts as JSON: what the run's summary is computed from).

Per-shot arrays are chunked one batch to a chunk (gzip with shuffle: raw I/Q of few distinct values
shrink several-fold), so a batch writes new chunks and rewrites none.

Crash safety. HDF5 updates its metadata in place, so a process killed while writing can leave a file no
library opens (killed at each of the 44 writes of a resume and one batch, written in place, 6 left a
file h5py could not open and 22 one whose arrays did not add up). `ctrl run` therefore writes through `JournaledFile`: between commits, bytes past the
committed length go to the file at once and changes to committed bytes are held in memory; the commit
after each batch saves the old bytes of every 4 KiB page it will change to a journal beside the file
(`.NAME.journal`) and fsyncs it, writes the pages, fsyncs the file and empties the journal. Whatever
moment a kill comes, `recover` (run by the next `open_run`) finds an empty journal or none, and the file
is the last commit, or one with a header, and puts the old pages back and cuts the file to its committed
length: the batch in flight is lost, nothing else. A reader that opens the file during a commit may
fail; it reads it again.

`locked` holds an exclusive lock (flock on a sibling `.lock` file) for a whole run, so two runs cannot
write the same file.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import json
import os
import struct
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctrl.errors import CtrlError
from ctrl.files import output_mode

FORMAT = "ctrl.lab-dataset/1"
PER_SHOT_KEYS = ("board_outcomes", "rule_outcomes", "raw", "truth")  # arrays in the file, not in batch_record
PAGE = 4096
CHUNK_BYTES = 4 << 20  # the largest chunk of a per-shot array: a d=7 batch of raw I/Q stays one chunk


@dataclass(frozen=True)
class Results:
    path: Path
    header: dict  # identity, provenance, started_utc, resumed_utc, finished_utc, summary (once finished)
    batches: tuple[dict, ...]  # each batch's record (counts, stream); per-shot arrays stay in the file
    note: str = ""  # what opening it repaired (a batch in flight rolled back), for the user

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


# ---- the run's file -----------------------------------------------------------------------------------


class RunFile:
    """The results file `ctrl run` holds open: `.results` so far, `append` a batch, `finish`, `close`."""

    def __init__(self, path: Path, results: Results, raw: JournaledFile, f):
        self.path, self.results, self._raw, self._f = path, results, raw, f

    def __repr__(self) -> str:
        return f"RunFile({self.results!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def append(self, batch: dict) -> Results:
        """Append one completed batch and commit it; returns the extended results."""
        res = self.results
        if batch.get("batch") != len(res.batches):
            raise CtrlError(f"{self.path}: batch {batch.get('batch')} out of order (expected {len(res.batches)})")
        if batch.get("first_shot") != res.shots:
            raise CtrlError(f"{self.path}: batch {batch['batch']} starts at shot {batch.get('first_shot')}, "
                            f"not {res.shots}")  # fmt: skip
        with self._writing():
            append_batch(self._f, batch, f"{self.path}: batch {batch['batch']}")
            seeds = _seeds(res.batches + (batch,))
            if json.dumps(seeds) != attr_value(self._f.attrs.get("seeds", "[]")):
                self._f.attrs["seeds"] = json.dumps(seeds)
        self.results = Results(self.path, res.header, res.batches + (_record(batch),), res.note)
        return self.results

    def finish(self, now_utc: str, summary: dict) -> Results:
        header = self.results.header | {"finished_utc": now_utc, "summary": summary}
        with self._writing():
            write_header(self._f, header, self.results.batches)
        self.results = Results(self.path, header, self.results.batches, self.results.note)
        return self.results

    def close(self) -> None:
        if self._f is not None:
            with self._writing():
                self._f.close()
            self._f = None
            self._raw.close()

    @contextmanager
    def _writing(self):
        """One commit: what is written inside reaches the disk whole, or is undone (here on an error, by
        the next open_run's recover() after a kill)."""
        try:
            yield
            if self._f.id.valid:
                self._f.flush()
            self._raw.commit()
        except BaseException as e:
            self._abandon()
            if isinstance(e, OSError):
                raise CtrlError(f"{self.path}: cannot write the results file ({e.strerror or e})") from None
            raise

    def _abandon(self) -> None:
        """Close without committing and roll the file back to its last commit."""
        f, self._f = self._f, None
        try:
            if f is not None and f.id.valid:
                f.close()  # what it still writes goes through the journal, and is undone with the rest
        except Exception:  # noqa: BLE001 - the rollback below is what matters
            pass
        self._raw.close()
        recover(self.path)


def open_run(path: Path, identity: dict, header: dict, readouts: tuple[list[int], list[int], list[str], list[float]],
             now_utc: str) -> RunFile:
    """The run's results file, open for appending: a new file, or the existing one (a batch in flight
    when the last run was killed rolled back, checked, marked resumed). `identity` must match an existing
    file's field by field: resuming a different program, calibration, firmware or batch size into the same
    file would mix runs. `readouts`: channel, window, label and threshold of each readout window. The
    caller holds `locked(path)`."""
    import h5py

    path = check_out(path)
    rolled_back = recover(path)
    if not path.exists():
        _create(path, identity, header | {"started_utc": now_utc, "resumed_utc": [], "finished_utc": None},
                readouts)  # fmt: skip
        old = None
    else:
        old = read_results(path)
        was = old.header["identity"]
        for k in sorted(set(was) | set(identity)):
            if was.get(k) != identity.get(k):
                raise CtrlError(f"{path}: cannot resume: {k} is {identity.get(k)!r} now but {was.get(k)!r} in the "
                                f"file (use another --out for a different run)")  # fmt: skip
    raw = JournaledFile(path)
    try:
        f = h5py.File(raw, "r+")
    except OSError as e:
        raw.close()
        raise CtrlError(f"{path}: not an HDF5 file ({e}); use another --out") from None
    run = RunFile(path, Results(path, {}, ()), raw, f)
    if old is None:
        with run._writing():
            pass  # what opening it wrote, if anything, committed
        run.results = read_results(path)
        return run
    note = f"{path}: rolled back a batch the last run did not finish writing" if rolled_back else ""
    head = old.header | {"resumed_utc": [*old.header["resumed_utc"], now_utc], "finished_utc": None}
    head.pop("summary", None)
    with run._writing():
        write_header(f, head, old.batches)
        write_readouts(f, readouts, path)
    run.results = Results(path, head, old.batches, note)
    return run


def check_out(path: Path) -> Path:
    """`path` as a results file name: a .jsonl or .json name is refused (the habit of an older ctrl run)."""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".json"):
        raise CtrlError(f"{path}: ctrl run writes HDF5 (e.g. --out results.h5); a JSON lines file of an older "
                        f"ctrl run converts with `ctrl results convert`")  # fmt: skip
    return path


def _create(path: Path, identity: dict, header: dict, readouts) -> None:
    """A new file with its header and readout windows and no batch, whole or not at all: written beside
    the file (a fixed name: the caller holds the lock), fsynced, renamed into place."""
    import h5py

    tmp = path.with_name(f".{path.name}.new")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            write_header(f, {"identity": identity, **header}, ())
            write_readouts(f, readouts, path)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, output_mode())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CtrlError(f"{path}: cannot create the results file ({e.strerror or e})") from None


# ---- reading and checking -----------------------------------------------------------------------------


def read_results(path: Path) -> Results | None:
    """The results so far (header and batch records) of an HDF5 results file; None if there is none.
    CtrlError naming the file if it is not one, or if its batches do not add up (`check_batch`, and each
    batch's arrays against its record)."""
    import h5py

    path = Path(path)
    if not path.exists():
        return None
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise CtrlError(f"{path}: not an HDF5 results file (expected {FORMAT}; a JSON lines file of an older "
                        f"ctrl run converts with `ctrl results convert`)") from None  # fmt: skip
    with f:
        fmt = attr_value(f.attrs.get("format", ""))
        if fmt != FORMAT:
            raise CtrlError(f"{path}: not a ctrl lab results file (format {fmt!r}, expected {FORMAT!r})")
        try:
            header = json.loads(attr_value(f.attrs["header"]))
            records = [json.loads(attr_value(x)) for x in f["batch_record"][()]] if "batch_record" in f else []
        except (KeyError, ValueError) as e:
            raise CtrlError(f"{path}: its header or batch records are not readable JSON ({e})") from None
        if not isinstance(header, dict) or not isinstance(header.get("identity"), dict):
            raise CtrlError(f"{path}: its header attribute has no identity")
        header.setdefault("resumed_utc", [])
        header.setdefault("finished_utc", None)
        batches: list[dict] = []
        drawn: dict = {}
        for doc in records:
            check_batch(f"{path}: batch {doc.get('batch')!r}" if isinstance(doc, dict) else f"{path}: a batch record",
                        header, batches, drawn, doc)  # fmt: skip
            batches.append(doc)
        _check_arrays(path, f, batches)
    return Results(path, header, tuple(batches))


def check_batch(where: str, header: dict, batches: list[dict], drawn: dict, doc) -> None:
    """The batch continues the ones before it: its number, its first shot, its size, its counts, and its
    samples (no two batches may hold the same positions of one seed's stream: a replay). `drawn` carries
    the recorded stream ranges from one batch to the next."""
    if not isinstance(doc, dict):
        raise CtrlError(f"{where}: expected a JSON object, found {type(doc).__name__}")
    i = len(batches)
    first = sum(b["shots"] for b in batches)
    size = header["identity"].get("batch_shots")
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


def _check_arrays(path: Path, f, batches: list[dict]) -> None:
    """The arrays hold what the records say: as many rows as shots and batches, each batch's columns
    equal to its record, and its accepted shots counted again from the per-shot column."""
    n, shots = len(batches), sum(b["shots"] for b in batches)
    for name, ds in f.items():
        dims = json.loads(attr_value(ds.attrs.get("dims", "[]")))
        want = {"shot": shots, "batch_index": n}.get(dims[0] if dims else "")
        if want is not None and ds.shape[0] != want:
            raise CtrlError(f"{path}: {name} has {ds.shape[0]} rows, the batch records say {want}")
    if not n:
        return
    accepted = f["accepted"][()]
    for key, col in (("first_shot", "batch_first_shot"), ("shots", "batch_shots"), ("accepted", "batch_accepted"),
                     ("decision_mismatches", "batch_decision_mismatches")):  # fmt: skip
        values = f[col][()]
        for b, v in zip(batches, values):
            if int(v) != b[key]:
                raise CtrlError(f"{path}: batch {b['batch']}: {col} is {int(v)}, its record says {b[key]}")
    for b in batches:
        got = int(accepted[b["first_shot"] : b["first_shot"] + b["shots"]].sum())
        if got != b["accepted"]:
            raise CtrlError(f"{path}: batch {b['batch']}: {got} shots marked accepted, its record says {b['accepted']}")


# ---- the layout (shared with ctrl results convert) ---------------------------------------------------


def write_header(f, header: dict, batches) -> None:
    """The provenance attributes of `header` (identity, provenance, the events' times, summary)."""
    ident = header["identity"]
    attrs = {
        **{k: ident[k] for k in ("program_hash", "calibration_hash", "firmware_hash", "board", "batch_shots") if k in ident},
        "identity": _json(ident),
        "device": header.get("device"),
        "distance": header.get("distance"),
        "program": header.get("program"),
        "board_address": header.get("board_address"),
        "shots_requested": header.get("shots_requested"),
        "started_utc": header.get("started_utc"),
        "resumed_utc": _json(header.get("resumed_utc", [])),
        "finished_utc": header.get("finished_utc") or "",
        "summary": _json(header["summary"]) if "summary" in header else "",
        "versions": _json(header.get("versions", {})),
        "seeds": json.dumps(_seeds(batches)),
        "header": _json(header),
    }
    for k, v in attrs.items():
        f.attrs[k] = "" if v is None else v  # HDF5 attributes have no null; an absent field reads back as ""


def write_readouts(f, readouts, where) -> None:
    """Channel, window, label and threshold of every readout window (in the order of `iq`'s readout
    axis); an existing file must have the same channels and windows (labels added if it has none)."""
    chans, wins, labels, thresholds = readouts
    if not len(chans) == len(wins) == len(labels) == len(thresholds):
        raise CtrlError(f"{where}: the program has {len(labels)} readout windows, the results {len(chans)}")
    if "readout_channel" in f:
        if [int(x) for x in f["readout_channel"][()]] != list(chans) or [int(x) for x in f["readout_window"][()]] != list(wins):
            raise CtrlError(f"{where}: the program's readout windows are not those already in {f.filename}")
    else:
        _fixed(f, "readout_channel", np.array(chans, dtype=np.int64))
        _fixed(f, "readout_window", np.array(wins, dtype=np.int64))
    if "readout_label" in f:
        if [attr_value(x) for x in f["readout_label"][()]] != list(labels):
            raise CtrlError(f"{where}: its readout labels are not those already in {f.filename}")
        return
    _fixed(f, "readout_label", np.array(labels, dtype=object))
    ds = f.create_dataset("threshold", data=np.array(thresholds, dtype=np.float64))
    ds.attrs["dims"] = json.dumps(["readout"])


def append_batch(f, b: dict, where: str) -> None:
    """Append batch `b` (as `ctrl.lab.client` makes it, or a JSON line of an older run: per-shot values
    as lists or arrays) to every array."""
    n = b["shots"]
    first = b["first_shot"]
    old = f["shot"].shape[0] if "shot" in f else 0
    if old != first:
        raise CtrlError(f"{where}: starts at shot {first}, the file holds {old}")
    board = _ints(b.get("board_outcomes"), n, where, "board_outcomes")
    rule = _ints(b.get("rule_outcomes"), n, where, "rule_outcomes")
    _grow(f, "shot", np.arange(first, first + n, dtype=np.int64), ("shot",), coord=True)
    _grow(f, "batch", np.full(n, b["batch"], dtype=np.int64), ("shot",))
    _grow(f, "board_outcome", board, ("shot",))
    _grow(f, "rule_outcome", rule, ("shot",))
    _grow(f, "accepted", ((board == 0) & (rule == 0)).astype(np.uint8), ("shot",), kind="bool")
    iq, chans, wins = _iq(b.get("raw") or {}, n, where)
    if iq is not None:
        if "readout_channel" in f:
            if [int(x) for x in f["readout_channel"][()]] != chans or [int(x) for x in f["readout_window"][()]] != wins:
                raise CtrlError(f"{where}: its readout windows are not those of the earlier batches")
        else:
            _fixed(f, "readout_channel", np.array(chans, dtype=np.int64))
            _fixed(f, "readout_window", np.array(wins, dtype=np.int64))
        _grow(f, "iq", iq, ("shot", "readout", "quadrature"), old=old, fill=np.nan)
    elif "iq" in f:
        raise CtrlError(f"{where}: no raw readouts, the earlier batches have them")
    truth = b.get("truth")
    if isinstance(truth, dict):
        proxy = str(truth.get("proxy", ""))[:n]
        err = _ints(truth.get("logical_error"), n, where, "truth.logical_error")
        if len(proxy) != n or set(proxy) - {"X", "Z"}:
            raise CtrlError(f"{where}: truth.proxy must be {n} letters X or Z")
        _grow(f, "proxy", np.frombuffer(proxy.encode(), dtype="S1"), ("shot",), old=old, fill=b"", kind="char")
        _grow(f, "logical_error", err.astype(np.int8), ("shot",), old=old, fill=-1)
    elif "proxy" in f:  # a board without ground truth after one with it: the truth columns say "unknown"
        _grow(f, "proxy", np.full(n, b"", dtype="S1"), ("shot",), kind="char")
        _grow(f, "logical_error", np.full(n, -1, dtype=np.int8), ("shot",))
    st = b.get("stream") if isinstance(b.get("stream"), dict) else {}
    _grow(f, "batch_index", np.array([b["batch"]], dtype=np.int64), ("batch_index",), coord=True)
    for key, value in (("first_shot", first), ("shots", n), ("accepted", b["accepted"]),
                       ("decision_mismatches", b["decision_mismatches"]),
                       ("stream_seed", st.get("seed", -1)), ("stream_position", st.get("position", -1))):  # fmt: skip
        _grow(f, f"batch_{key}", np.array([value], dtype=np.int64), ("batch_index",))
    _grow(f, "batch_record", np.array([_json(_record(b))], dtype=object), ("batch_index",))


def _record(b: dict) -> dict:
    """The batch without its per-shot arrays (those are the file's per-shot variables)."""
    record = {k: v for k, v in b.items() if k not in PER_SHOT_KEYS}
    if isinstance(b.get("truth"), dict):
        record["truth"] = {k: v for k, v in b["truth"].items() if k not in ("proxy", "logical_error")}
    return record


def _seeds(batches) -> list[int]:
    return sorted({b["stream"]["seed"] for b in batches if isinstance(b.get("stream"), dict)})


def _json(x) -> str:
    # allow_nan=False: a NaN would make the text unreadable by strict JSON readers
    try:
        return json.dumps(x, sort_keys=True, allow_nan=False)
    except ValueError as e:
        raise CtrlError(f"results not written: {e}") from None


def _ints(values, n: int, where: str, key: str) -> np.ndarray:
    a = np.asarray(values if values is not None else [])
    if a.shape != (n,) or a.dtype.kind not in "iub":
        raise CtrlError(f"{where}: {key} must be {n} integers")
    return a.astype(np.int64)


def _iq(raw: dict, n: int, where: str):
    """(shots, readouts, 2) array of every readout window, channels in numeric order; channel and window
    index of each readout."""
    if not raw:
        return None, [], []
    parts, chans, wins = [], [], []
    for ch in sorted(raw, key=int):
        doc = raw[ch]
        shape = list(doc.get("shape")) if isinstance(doc, dict) and doc.get("shape") is not None else None
        if not (shape is not None and len(shape) == 3 and shape[0] == n and shape[2] == 2):
            raise CtrlError(f"{where}: raw readout {ch} has shape {shape!r}, expected [{n}, windows, 2]")
        a = np.asarray(doc.get("iq"))
        if a.dtype.kind not in "iuf" or a.size != n * shape[1] * 2:
            raise CtrlError(f"{where}: raw readout {ch} does not hold {n}x{shape[1]}x2 numbers")
        parts.append(a.reshape(shape).astype(np.float64))  # accumulated I/Q: integers on QICK, exact in float64
        chans += [int(ch)] * shape[1]
        wins += list(range(shape[1]))
    return np.concatenate(parts, axis=1), chans, wins


def _grow(f, name: str, data: np.ndarray, dims: tuple, coord: bool = False, old: int | None = None,
          fill=None, kind: str | None = None) -> None:
    """Append `data` along the first axis of dataset `name`, creating it (chunked, unlimited first axis)
    on first use; a dataset created after `old` rows exist elsewhere gets `fill` for those rows."""
    import h5py

    if name not in f:
        dtype = h5py.string_dtype() if data.dtype == object else data.dtype
        packed = {} if data.dtype == object else {"compression": "gzip", "compression_opts": 4, "shuffle": True}
        # a chunk per batch (the first append's rows; at least 64 rows for the one-row-per-batch arrays)
        row = max(1, data[:1].nbytes // max(1, len(data[:1])) if data.dtype != object else 64)
        rows = max(1, min(max(64, len(data)), CHUNK_BYTES // row))
        ds = f.create_dataset(name, shape=(0, *data.shape[1:]), maxshape=(None, *data.shape[1:]), dtype=dtype,
                              chunks=(rows, *data.shape[1:]), **packed)  # fmt: skip
        ds.attrs["dims"] = json.dumps(list(dims))
        if coord:
            ds.attrs["coord"] = 1
        if kind:
            ds.attrs["kind"] = kind
        if old:
            ds.resize(old, axis=0)
            ds[:old] = fill
    ds = f[name]
    if ds.shape[1:] != data.shape[1:]:
        raise CtrlError(f"{f.filename}: {name} has shape {ds.shape[1:]} per row, a new batch {data.shape[1:]}")
    k = ds.shape[0]
    ds.resize(k + data.shape[0], axis=0)
    ds[k:] = data


def _fixed(f, name: str, data: np.ndarray) -> None:
    import h5py

    ds = f.create_dataset(name, data=data, dtype=h5py.string_dtype() if data.dtype == object else data.dtype)
    ds.attrs["dims"] = json.dumps(["readout"])
    ds.attrs["coord"] = 1


def attr_value(v):
    """An HDF5 attribute or string element as Python: str, int or float."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


# ---- the journal --------------------------------------------------------------------------------------

MAGIC = b"ctrl-results-journal/1\n"
_HEAD = struct.Struct("<QI")  # committed size, crc32 of it
_REC = struct.Struct("<QII")  # offset, length, crc32 of offset, length and the old bytes


def journal_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.journal")


class JournaledFile:
    """The results file as h5py writes it (h5py's file-object driver). Between two commits, writes past
    the committed length go to the file at once (nothing there to lose), writes into the committed
    bytes are held here, page by page; `commit` saves the old bytes of every page it will change to the
    journal, fsyncs it, writes the held pages, fsyncs the file and empties the journal: three fsyncs a
    batch, whatever it changed. See the module docstring."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.journal = journal_path(self.path)
        self.fd = os.open(self.path, os.O_RDWR)
        self.base = os.fstat(self.fd).st_size  # the committed length
        self.size = self.base  # the length h5py sees
        self.cut = self.base  # the shortest length h5py truncated to (below base: applied at the commit)
        self.held: dict[int, bytearray] = {}  # page -> its new bytes (of the committed part of the page)
        self.jfd: int | None = None
        self.began = False  # written since the last commit
        self.pos = 0

    def __repr__(self) -> str:
        return f"JournaledFile({self.path.name}, committed {self.base} bytes, {len(self.held)} pages held)"

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else self.size + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buf) -> int:
        data = self._read(self.pos, len(buf))
        buf[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def read(self, n: int = -1) -> bytes:
        data = self._read(self.pos, max(0, self.size - self.pos) if n < 0 else n)
        self.pos += len(data)
        return bytes(data)

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        n, at = len(view), self.pos
        self._begin()
        held = min(n, max(0, self.base - at))  # the part over committed bytes: held until the commit
        for k in range(at // PAGE, -(-(at + held) // PAGE)) if held else ():
            page = self._page(k)
            lo, hi = max(at, k * PAGE), min(at + held, k * PAGE + len(page))
            page[lo - k * PAGE : hi - k * PAGE] = view[lo - at : hi - at]
        done = held
        while done < n:
            done += os.pwrite(self.fd, view[done:], at + done)
        self.pos += n
        self.size = max(self.size, at + n)
        return n

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else size
        self._begin()
        self.size = size
        self.cut = min(self.cut, size)
        os.ftruncate(self.fd, max(size, self.base))  # the committed bytes are cut at the commit
        return size

    def flush(self) -> None:
        pass  # commit() is where the file reaches the disk

    def commit(self) -> None:
        if not self.began:
            return
        pages = sorted(set(self.held) | set(range(self.cut // PAGE, -(-self.base // PAGE))))
        if pages:
            records = []
            for k in pages:
                old = os.pread(self.fd, min(PAGE, self.base - k * PAGE), k * PAGE)
                records.append(_REC.pack(k * PAGE, len(old), zlib.crc32(struct.pack("<QI", k * PAGE, len(old)) + old))
                               + old)  # fmt: skip
            _write_all(self.jfd, b"".join(records))
        os.fsync(self.jfd)  # the old bytes are safe before any of them changes
        for k, page in sorted(self.held.items()):
            os.pwrite(self.fd, page, k * PAGE)
        os.ftruncate(self.fd, self.size)
        os.fsync(self.fd)
        os.ftruncate(self.jfd, 0)  # an empty journal: nothing to roll back
        os.fsync(self.jfd)
        os.lseek(self.jfd, 0, os.SEEK_SET)
        self.base = self.size = self.cut = os.fstat(self.fd).st_size
        self.held.clear()
        self.began = False

    def close(self) -> None:
        """Close without committing: a journal holding anything stays, for recover(); an empty one goes."""
        if self.jfd is not None:
            empty = os.fstat(self.jfd).st_size == 0
            os.close(self.jfd)
            self.jfd = None
            if empty:
                self.journal.unlink(missing_ok=True)
        os.close(self.fd)

    def _begin(self) -> None:
        """The first write since the commit: the journal's header, the committed length (fsynced with the
        records; a kill before then leaves at most bytes past the committed length, which HDF5 ignores)."""
        if self.began:
            return
        if self.jfd is None:
            self.jfd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            _fsync_dir(self.path.parent)
        _write_all(self.jfd, MAGIC + _HEAD.pack(self.base, zlib.crc32(struct.pack("<Q", self.base))))
        self.began = True

    def _page(self, k: int) -> bytearray:
        if k not in self.held:
            self.held[k] = bytearray(os.pread(self.fd, min(PAGE, self.base - k * PAGE), k * PAGE))
        return self.held[k]

    def _read(self, at: int, n: int) -> bytearray:
        n = max(0, min(n, self.size - at))
        data = bytearray(os.pread(self.fd, n, at))
        data.extend(bytes(n - len(data)))
        for k in range(at // PAGE, -(-min(at + n, self.base) // PAGE)) if at < self.base else ():
            page = self.held.get(k)
            if page is not None:
                lo, hi = max(at, k * PAGE), min(at + n, k * PAGE + len(page))
                data[lo - at : hi - at] = page[lo - k * PAGE : hi - k * PAGE]
        return data


def recover(path: Path) -> bool:
    """Undo what a killed run wrote after its last commit (see the module docstring). True if the journal
    says a batch was being written (now undone), False if the file is as its last commit left it."""
    path = Path(path)
    journal = journal_path(path)
    try:
        data = journal.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise CtrlError(f"{journal}: cannot read the results journal ({e.strerror})") from None
    start = len(MAGIC) + _HEAD.size
    began = data[: len(MAGIC)] == MAGIC and len(data) >= start
    if began:
        base, crc = _HEAD.unpack_from(data, len(MAGIC))
        began = crc == zlib.crc32(struct.pack("<Q", base))
    if began:  # else: an empty or torn header, so nothing but bytes past the committed length was written
        records, at = [], start
        while at + _REC.size <= len(data):  # a torn last record: the commit never wrote a page
            offset, length, crc = _REC.unpack_from(data, at)
            old = data[at + _REC.size : at + _REC.size + length]
            if len(old) != length or crc != zlib.crc32(struct.pack("<QI", offset, length) + old):
                break
            records.append((offset, old))
            at += _REC.size + length
        try:
            fd = os.open(path, os.O_RDWR)
            try:
                for offset, old in records:
                    os.pwrite(fd, old, offset)
                os.ftruncate(fd, base)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise CtrlError(f"{path}: cannot roll back the unfinished batch ({e.strerror})") from None
    journal.unlink()
    _fsync_dir(path.parent)
    return began


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
