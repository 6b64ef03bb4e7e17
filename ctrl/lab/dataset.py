"""Lab results as HDF5, loadable as an `xarray.Dataset`: `convert` (from the JSON lines `ctrl run` writes)
and `open_dataset`.

Why HDF5 (through h5py) and not zarr: a lab keeps its measurements as single HDF5 files (QICK's own
examples, Labber, qcodes and most instrument software write them), one file is what gets copied to a
shared drive or attached to a logbook, and a single file can be replaced atomically by a rename (a zarr
store is a folder of many files, which cannot). h5py's chunked datasets with an unlimited first axis grow
along the shot axis, so appending a batch writes only that batch. The loader builds the Dataset itself
from h5py rather than through xarray's netCDF engines: no h5netcdf dependency, and the file needs no
netCDF conventions beyond the `dims` attribute each array carries.

Layout of a file (format `ctrl.lab-dataset/1`):

- root attributes: the provenance of the run, as strings and numbers (nested values JSON-encoded):
  `program_hash`, `calibration_hash`, `firmware_hash`, `board`, `batch_shots` (the results header's
  identity), `device`, `distance`, `program`, `board_address`, `shots_requested`, `started_utc`,
  `resumed_utc` (JSON list), `finished_utc` ("" while unfinished), `summary` (JSON, "" while unfinished),
  `versions` (JSON), `seeds` (JSON list of the board's stream seeds), `header` (the whole folded header,
  JSON), `source` (the JSON lines file it came from).
- per shot (dimension `shot`, coordinate = the run's shot number): `batch`, `board_outcome` (the board's
  verdict: 0 accepted, k > 0 aborted at decision point k - 1), `rule_outcome` (the same rule evaluated by
  ctrl on the same readouts), `accepted` (both 0, as `ctrl run` counts it), `iq` (shot, readout,
  quadrature): every readout window of a slot, channel by channel, with coordinates `readout_channel` and
  `readout_window` (and, converted with the run's compile folder, `readout_label`, `threshold` and the
  loader's `bit`: I >= threshold, -1 without one); with the ground truth of an emulated board, `proxy` ("X"/"Z") and `logical_error`
  (-1 where a batch had no ground truth).
- per batch (dimension `batch_index`): `batch_first_shot`, `batch_shots`, `batch_accepted`,
  `batch_decision_mismatches`, `batch_stream_seed`, `batch_stream_position` (-1 on a board that reports
  no stream), `batch_record` (the batch line without its per-shot arrays, JSON: nothing is dropped).

Converting into an existing file appends the batches it does not hold yet (same run: same identity, and
the batches it holds must be the source's first ones); the file is rewritten through a temporary copy
and a rename, so a failed or killed convert leaves the old file (or none) and never a partial one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ctrl.errors import CtrlError
from ctrl.files import output_mode
from ctrl.lab import results as res_file

FORMAT = "ctrl.lab-dataset/1"
QUADRATURES = ("I", "Q")
PER_SHOT_KEYS = ("board_outcomes", "rule_outcomes", "raw", "truth")  # kept as arrays, not in batch_record


def read_results(path: Path | str) -> res_file.Results:
    """The JSON lines results file of a lab run (`ctrl.lab.results.Results`: `.header`, `.batches`,
    `.shots`); CtrlError naming the file if it is missing or not a results file."""
    path = Path(path)
    res = res_file.read_results(path)
    if res is None:
        raise CtrlError(f"{path}: no such results file")
    return res


def convert(source: Path | str, out: Path | str, program: Path | str | None = None,
            device_file: Path | str | None = None) -> dict:
    """Write (or extend) the HDF5 file `out` from the JSON lines results file `source`. Returns
    {"out", "batches", "shots", "appended"} (appended: batches new in `out`).

    `program`: the compile folder the run ran (and `device_file`, as for `ctrl run --device`): adds each
    readout window's label and threshold, from which `open_dataset` gives the thresholded `bit`s. The
    folder must hold the run's program (its program hash is checked)."""
    source, out = Path(source), Path(out)
    res = read_results(source)
    readouts = _readouts(program, device_file, res) if program is not None else None
    if out.exists():
        have = _existing_batches(out, res)
        appended = res.batches[have:]
    else:
        have, appended = 0, res.batches
    try:  # the temporary beside `out`: the rename that publishes it must not cross filesystems
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as e:
        raise CtrlError(f"{out}: cannot write ({e.strerror or e})") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        import h5py

        if have:
            shutil.copyfile(out, tmp)
        with h5py.File(tmp, "a" if have else "w") as f:
            if not have:
                f.attrs["format"] = FORMAT
            _write_header(f, res, source)
            for b in appended:
                _append_batch(f, b, source)
            if readouts is not None:
                _write_readouts(f, readouts, program)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, output_mode())  # mkstemp's 0600 is for the temporary only: data is for the group
        os.replace(tmp, out)
    except OSError as e:
        raise CtrlError(f"{out}: cannot write ({e.strerror or e})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return {"out": str(out), "batches": len(res.batches), "shots": res.shots, "appended": len(appended)}


def open_dataset(path: Path | str):
    """The HDF5 results file `path` as an `xarray.Dataset` (loaded into memory), provenance in `.attrs`.
    CtrlError naming the file if it is missing or not a ctrl lab dataset."""
    import xarray as xr

    path = Path(path)
    with _open(path) as f:
        attrs = {k: _attr(v) for k, v in f.attrs.items()}
        data_vars, coords = {}, {}
        for name, ds in f.items():
            dims = tuple(json.loads(ds.attrs["dims"]))
            values = ds[()]
            if ds.dtype.kind == "O" or _is_string(ds):
                values = np.array([v.decode() if isinstance(v, bytes) else v for v in values.reshape(-1)],
                                  dtype=object).reshape(values.shape)  # fmt: skip
            if ds.attrs.get("kind") == "char":  # one-letter labels stored as bytes: strings in the Dataset
                values = values.astype("S1").astype(str)
            if ds.attrs.get("kind") == "bool":
                values = values.astype(bool)
            (coords if ds.attrs.get("coord") else data_vars)[name] = (dims, values)
    coords.setdefault("quadrature", (("quadrature",), np.array(QUADRATURES)))
    if "threshold" in data_vars and "iq" in data_vars:
        # the bit the program tests: accumulated I >= the window's threshold (as the board and `ctrl run`
        # decide it); -1 for a window without a threshold
        thr = data_vars["threshold"][1]
        i = data_vars["iq"][1][:, :, 0]
        bit = np.where(np.isnan(thr), -1, i >= np.where(np.isnan(thr), 0, thr)).astype(np.int8)
        data_vars["bit"] = (("shot", "readout"), bit)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _is_string(ds) -> bool:
    import h5py

    return h5py.check_string_dtype(ds.dtype) is not None


# ---- writing ------------------------------------------------------------------------------------------


def _existing_batches(out: Path, res: res_file.Results) -> int:
    """How many of `res`'s batches `out` already holds; CtrlError if it is another run's file."""
    with _open(out) as f:
        ident = json.loads(_attr(f.attrs.get("identity", "null")))
        if ident != res.header["identity"]:
            raise CtrlError(f"{out}: holds another run (identity {ident}), not {res.path}'s; use another --out")
        n = int(f["batch_first_shot"].shape[0]) if "batch_first_shot" in f else 0
        if n > len(res.batches):
            raise CtrlError(f"{out}: holds {n} batches, more than the {len(res.batches)} of {res.path}")
        firsts = f["batch_first_shot"][()] if n else []
        if list(firsts) != [b["first_shot"] for b in res.batches[:n]]:
            raise CtrlError(f"{out}: its batches are not the first {n} of {res.path}")
    return n


def _readouts(program, device_file, res: res_file.Results) -> tuple[list[str], list[float]]:
    """Label and threshold (NaN: none) of every readout window, in the file's readout order."""
    from ctrl.lab.client import load_compiled

    compiled = load_compiled(Path(program), Path(device_file) if device_file is not None else None)
    want = res.header["identity"].get("program_hash")
    if compiled.program_hash != want:
        raise CtrlError(f"{program}: holds program {compiled.program_hash}, the run in {res.path} ran {want}")
    labels, thresholds = [], []
    for ch in sorted(compiled.labels):
        for label in compiled.labels[ch]:
            labels.append(label)
            thresholds.append(float(compiled.thresholds.get(label, np.nan)))
    return labels, thresholds


def _write_readouts(f, readouts: tuple[list[str], list[float]], program) -> None:
    labels, thresholds = readouts
    if "readout_channel" in f and f["readout_channel"].shape[0] != len(labels):
        raise CtrlError(f"{program}: the program has {len(labels)} readout windows, the results "
                        f"{f['readout_channel'].shape[0]}")  # fmt: skip
    if "readout_label" in f:
        if [_attr(x) for x in f["readout_label"][()]] != labels:
            raise CtrlError(f"{program}: its readout labels are not those already in {f.filename}")
        return
    ds = f.create_dataset("readout_label", data=np.array(labels, dtype=object), dtype=_string_dtype())
    ds.attrs["dims"] = json.dumps(["readout"])
    ds.attrs["coord"] = 1
    ds = f.create_dataset("threshold", data=np.array(thresholds, dtype=np.float64))
    ds.attrs["dims"] = json.dumps(["readout"])


def _string_dtype():
    import h5py

    return h5py.string_dtype()


def _write_header(f, res: res_file.Results, source: Path) -> None:
    h = res.header
    ident = h["identity"]
    seeds = sorted({b["stream"]["seed"] for b in res.batches if isinstance(b.get("stream"), dict)})
    attrs = {
        **{k: ident[k] for k in ("program_hash", "calibration_hash", "firmware_hash", "board", "batch_shots") if k in ident},
        "identity": json.dumps(ident, sort_keys=True),
        "results_format": h.get("format"),
        "device": h.get("device"),
        "distance": h.get("distance"),
        "program": h.get("program"),
        "board_address": h.get("board_address"),
        "shots_requested": h.get("shots_requested"),
        "started_utc": h.get("started_utc"),
        "resumed_utc": json.dumps(h.get("resumed_utc", [])),
        "finished_utc": h.get("finished_utc") or "",
        "summary": json.dumps(h["summary"], sort_keys=True) if "summary" in h else "",
        "versions": json.dumps(h.get("versions", {}), sort_keys=True),
        "seeds": json.dumps(seeds),
        "header": json.dumps(h, sort_keys=True),
        "source": str(source),
    }
    for k, v in attrs.items():
        if v is None:
            v = ""  # HDF5 attributes have no null; an absent field reads back as ""
        elif isinstance(v, (dict, list)):
            v = json.dumps(v, sort_keys=True)
        f.attrs[k] = v


def _append_batch(f, b: dict, source: Path) -> None:
    n = b["shots"]
    where = f"{source}: batch {b['batch']}"
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
            if list(f["readout_channel"][()]) != chans or list(f["readout_window"][()]) != wins:
                raise CtrlError(f"{where}: its readout windows are not those of the earlier batches")
        else:
            _fixed(f, "readout_channel", np.array(chans, dtype=np.int64), ("readout",))
            _fixed(f, "readout_window", np.array(wins, dtype=np.int64), ("readout",))
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
    else:  # a board without ground truth: the truth columns (if an earlier batch had them) say "unknown"
        if "proxy" in f:
            _grow(f, "proxy", np.full(n, b"", dtype="S1"), ("shot",), kind="char")
            _grow(f, "logical_error", np.full(n, -1, dtype=np.int8), ("shot",))
    st = b.get("stream") if isinstance(b.get("stream"), dict) else {}
    _grow(f, "batch_index", np.array([b["batch"]], dtype=np.int64), ("batch_index",), coord=True)
    for key, value in (("first_shot", first), ("shots", n), ("accepted", b["accepted"]),
                       ("decision_mismatches", b["decision_mismatches"]),
                       ("stream_seed", st.get("seed", -1)), ("stream_position", st.get("position", -1))):  # fmt: skip
        _grow(f, f"batch_{key}", np.array([value], dtype=np.int64), ("batch_index",))
    record = {k: v for k, v in b.items() if k not in PER_SHOT_KEYS}
    if isinstance(truth, dict):
        record["truth"] = {k: v for k, v in truth.items() if k not in ("proxy", "logical_error")}
    _grow(f, "batch_record", np.array([json.dumps(record, sort_keys=True)], dtype=object), ("batch_index",))


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
        shape = doc.get("shape") if isinstance(doc, dict) else None
        if not (isinstance(shape, list) and len(shape) == 3 and shape[0] == n and shape[2] == 2):
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
        # gzip with shuffle: raw I/Q of few distinct values shrink several-fold, and every HDF5 reader has it
        packed = {} if data.dtype == object else {"compression": "gzip", "compression_opts": 4, "shuffle": True}
        ds = f.create_dataset(name, shape=(0, *data.shape[1:]), maxshape=(None, *data.shape[1:]), dtype=dtype,
                              chunks=(max(1, min(4096, 2**20 // max(1, data[:1].nbytes))), *data.shape[1:]),
                              **packed)  # fmt: skip
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


def _fixed(f, name: str, data: np.ndarray, dims: tuple) -> None:
    ds = f.create_dataset(name, data=data)
    ds.attrs["dims"] = json.dumps(list(dims))
    ds.attrs["coord"] = 1


# ---- reading ------------------------------------------------------------------------------------------


class _open:
    """h5py.File(path, "r") as a context, every failure one CtrlError naming the file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import h5py

        if not self.path.exists():
            raise CtrlError(f"{self.path}: no such file")
        try:
            self.f = h5py.File(self.path, "r")
        except OSError:
            raise CtrlError(f"{self.path}: not an HDF5 file (expected a {FORMAT} file, e.g. from `ctrl results convert`)") from None
        fmt = _attr(self.f.attrs.get("format", ""))
        if fmt != FORMAT:
            self.f.close()
            raise CtrlError(f"{self.path}: not a ctrl lab dataset (format {fmt!r}, expected {FORMAT!r})")
        return self.f

    def __exit__(self, *exc):
        self.f.close()


def _attr(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


__all__ = ["FORMAT", "convert", "open_dataset", "read_results"]
