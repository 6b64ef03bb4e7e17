"""Lab results as an `xarray.Dataset` (`open_dataset`), and the JSON lines of an older `ctrl run` turned
into the HDF5 file `ctrl run` now writes (`convert`). The layout is `ctrl.lab.layout`'s docstring.

Why HDF5 (through h5py) and not zarr: a lab keeps its measurements as single HDF5 files (QICK's own
examples, Labber, qcodes and most instrument software write them), one file is what gets copied to a
shared drive or attached to a logbook, and a single file can be replaced atomically by a rename (a zarr
store is a folder of many files, which cannot). h5py's chunked datasets with an unlimited first axis grow
along the shot axis, so appending a batch writes only that batch. The loader builds the Dataset itself
from h5py rather than through xarray's netCDF engines: no h5netcdf dependency, and the file needs no
netCDF conventions beyond the `dims` attribute each array carries.

Converting into an existing file appends the batches it does not hold yet (same run: same identity, and
the batches it holds must be the source's first ones); the file is rewritten through a temporary copy
and a rename, so a failed or killed convert leaves the old file (or none) and never a partial one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from ctrl.errors import CtrlError
from ctrl.files import temporary
from ctrl.lab import jsonl, layout
from ctrl.lab import results as res_file
from ctrl.lab.layout import FORMAT, attr_value

QUADRATURES = ("I", "Q")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def read_results(path: Path | str) -> res_file.Results:
    """The header and batch records of a results file, the HDF5 `ctrl run` writes or the JSON lines of an
    older one (`ctrl.lab.results.Results`: `.header`, `.batches`, `.shots`); CtrlError naming the file if
    it is missing or not a results file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            hdf5 = f.read(8) == HDF5_SIGNATURE
    except FileNotFoundError:
        raise CtrlError(f"{path}: no such results file") from None
    except OSError as e:
        raise CtrlError(f"{path}: cannot read the results file ({e.strerror})") from None
    res = res_file.read_results(path) if hdf5 else _json_lines(path)
    if res is None:
        raise CtrlError(f"{path}: no such results file")
    return res


def _json_lines(path: Path) -> res_file.Results:
    res = jsonl.read_results(path)
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
    res = _json_lines(source)
    readouts = _readouts(program, device_file, res) if program is not None else None
    if out.exists():
        have = _existing_batches(out, res)
        appended = res.batches[have:]
    else:
        have, appended = 0, res.batches
    # the temporary beside `out` (the rename that publishes it must not cross filesystems), with the mode
    # any new file gets: the data is for the group
    fd, tmp = temporary(out, 0o666)
    os.close(fd)
    tmp = Path(tmp)
    try:
        import h5py

        if have:
            shutil.copyfile(out, tmp)
        with h5py.File(tmp, "a" if have else "w") as f:
            if not have:
                f.attrs["format"] = FORMAT
            layout.write_header(f, res.header, res.batches)
            f.attrs["source"] = str(source)
            for b in appended:
                layout.append_batch(f, b, f"{source}: batch {b['batch']}")
            if readouts is not None:
                if "readout_channel" not in f:
                    raise CtrlError(f"{source}: no batch with raw readouts, so no readout windows to label")
                layout.write_readouts(f, (f["readout_channel"][()].tolist(), f["readout_window"][()].tolist(),
                                            *readouts), program)  # fmt: skip
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
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
        attrs = {k: attr_value(v) for k, v in f.attrs.items()}
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


def _existing_batches(out: Path, res: res_file.Results) -> int:
    """How many of `res`'s batches `out` already holds; CtrlError if it is another run's file."""
    with _open(out) as f:
        ident = json.loads(attr_value(f.attrs.get("identity", "null")))
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
    from ctrl.lab.client import load_compiled, readout_windows

    compiled = load_compiled(Path(program), Path(device_file) if device_file is not None else None)
    want = res.header["identity"].get("program_hash")
    if compiled.program_hash != want:
        raise CtrlError(f"{program}: holds program {compiled.program_hash}, the run in {res.path} ran {want}")
    _, _, labels, thresholds = readout_windows(compiled)
    return labels, thresholds


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
            raise CtrlError(f"{self.path}: not an HDF5 file (expected a {FORMAT} file, as ctrl run writes)") from None
        fmt = attr_value(self.f.attrs.get("format", ""))
        if fmt != FORMAT:
            self.f.close()
            raise CtrlError(f"{self.path}: not a ctrl lab dataset (format {fmt!r}, expected {FORMAT!r})")
        return self.f

    def __exit__(self, *exc):
        self.f.close()


__all__ = ["FORMAT", "convert", "open_dataset", "read_results"]
