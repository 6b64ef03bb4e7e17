"""The HDF5 layout of a results file (format `ctrl.lab-dataset/1`): its attributes and arrays, written
by `ctrl run` (`ctrl.lab.results`) and `ctrl results convert` (`ctrl.lab.dataset`) alike.

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
"""

from __future__ import annotations

import json

import numpy as np

from ctrl.errors import CtrlError

FORMAT = "ctrl.lab-dataset/1"
PER_SHOT_KEYS = ("board_outcomes", "rule_outcomes", "raw", "truth")  # arrays in the file, not in batch_record
CHUNK_BYTES = 4 << 20  # the largest chunk of a per-shot array: a d=7 batch of raw I/Q stays one chunk


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
        "seeds": json.dumps(seeds(batches)),
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
    _grow(f, "batch_record", np.array([_json(batch_record(b))], dtype=object), ("batch_index",))


def batch_record(b: dict) -> dict:
    """The batch without its per-shot arrays (those are the file's per-shot variables)."""
    record = {k: v for k, v in b.items() if k not in PER_SHOT_KEYS}
    if isinstance(b.get("truth"), dict):
        record["truth"] = {k: v for k, v in b["truth"].items() if k not in ("proxy", "logical_error")}
    return record


def seeds(batches) -> list[int]:
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
