"""The results file of a lab run: one HDF5 file, format `ctrl.lab-dataset/1`, grown batch by batch.

`ctrl run` writes it (`open_run`); `ctrl results convert` writes the same layout from the JSON lines of an
older `ctrl run` (`ctrl.lab.dataset.convert`); `ctrl.lab.dataset.open_dataset` loads either as an
`xarray.Dataset`. Every array names its dimensions in a `dims` attribute, so any HDF5 reader can follow it.

The layout is `ctrl.lab.layout`'s docstring. Crash safety: `ctrl run` writes through the page journal of
`ctrl.lab.journal`, committing after each batch; `recover` (run by the next `open_run`) rolls back a
batch a kill caught mid-write, and nothing else. A reader that opens the file during a commit may
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ctrl.errors import CtrlError
from ctrl.files import output_mode
from ctrl.lab.journal import JournaledFile, fsync_dir, recover
from ctrl.lab.layout import FORMAT, append_batch, attr_value, batch_record, seeds, write_header, write_readouts


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
            stream_seeds = seeds(res.batches + (batch,))
            if json.dumps(stream_seeds) != attr_value(self._f.attrs.get("seeds", "[]")):
                self._f.attrs["seeds"] = json.dumps(stream_seeds)
        self.results = Results(self.path, res.header, res.batches + (batch_record(batch),), res.note)
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
        fsync_dir(path.parent)
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
