"""docs/example.py, the example notebook (jupytext percent format), run as a script through runpy in a
temporary folder: its figures, its numbers, and the lab dataset it loads, checked against the files it
wrote (read here with json, csv and h5py, not with the code under test)."""

from __future__ import annotations

import csv
import json
import os
import runpy
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("Pyro4")
pytest.importorskip("qick")

pytestmark = pytest.mark.filterwarnings("ignore:isSet:DeprecationWarning")  # inside Pyro4's request loop
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "example.py"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example's globals after a run (they keep its temporary folder alive), its folder and stdout."""
    import matplotlib

    cwd = tmp_path_factory.mktemp("example")
    mp = pytest.MonkeyPatch()
    mp.setenv("MPLBACKEND", "Agg")  # the test's choice; the example itself never sets a backend
    mp.chdir(cwd)
    backend = dict.__getitem__(matplotlib.rcParams, "backend")
    from io import StringIO
    from contextlib import redirect_stdout

    out = StringIO()
    key = Path(os.environ["CTRL_BOARD_KEY_FILE"])
    key_before = key.read_bytes() if key.exists() else None
    try:
        with redirect_stdout(out):
            g = runpy.run_path(str(EXAMPLE), run_name="__main__")
    finally:
        mp.undo()
    assert dict.__getitem__(matplotlib.rcParams, "backend") == backend  # the example left the backend alone
    g["_key_before"] = key_before
    return g, cwd, out.getvalue()


def test_figures_are_written_and_returned(example):
    from matplotlib.figure import Figure

    g, cwd, _ = example
    assert sorted(p.name for p in cwd.iterdir()) == ["example_lab.png", "example_sweep.png", "example_timeline.png"]
    for p in cwd.iterdir():
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, p  # a real picture, not an empty canvas
    for name in ("fig", "sweep_fig", "lab_fig"):
        assert isinstance(g[name], Figure), name


def test_emulation_numbers_are_printed_with_their_intervals(example):
    g, _, out = example
    s = g["stats"]
    assert s["shots"] == 5000 and s["device"] == "planar16_d3" and s["distance"] == 3
    lo, hi = s["acceptance_ci95"]
    assert 0 < lo <= s["acceptance"] <= hi < 1
    assert f"acceptance {s['acceptance']:.3f} (95% {lo:.3f}..{hi:.3f}) over 5000 attempts" in out
    lo, hi = s["logical_error_rate_ci95"]
    assert lo <= s["logical_error_rate"] <= hi
    assert f"p_L {s['logical_error_rate']:.2e} per accepted state" in out


def test_the_sweep_csv_holds_both_noise_points(example):
    g, _, out = example
    with open(g["sweep_csv"], newline="") as f:
        lines = list(csv.DictReader(f, skipinitialspace=True))
    meta = [json.loads(r["json_metadata"]) for r in lines]
    assert sorted((m["scale"], m["proxy"]) for m in meta) == [(0.5, "X"), (0.5, "Z"), (1.0, "X"), (1.0, "Z")]
    assert all(int(r["shots"]) == 1000 for r in lines)
    rows = g["rows"]
    assert [r["noise"] for r in rows] == ["calibration*0.5", "calibration*1.0"]
    for r in rows:  # the summary's acceptance is proxy X's accepted/shots, recomputed from the CSV
        (x,) = [line for line, m in zip(lines, meta) if m["scale"] == r["scale"] and m["proxy"] == "X"]
        assert r["acceptance"] == (int(x["shots"]) - int(x["discards"])) / int(x["shots"])
        assert f"{r['noise']:>16}: acceptance {r['acceptance']:.3f}" in out
    assert rows[0]["acceptance"] > rows[1]["acceptance"]  # half the noise: more attempts pass


def test_the_lab_dataset_is_the_runs_results(example):
    import h5py

    g, _, out = example
    ds = g["ds"]
    h5 = g["results_h5"]
    assert h5.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    with h5py.File(h5, "r") as f:  # the file as ctrl run wrote it, read with h5py and json alone
        header = json.loads(f.attrs["header"])
        records = [json.loads(x) for x in f["batch_record"][()]]
        board = f["board_outcome"][()]
        iq = f["iq"][()]
        chans = f["readout_channel"][()]
    assert len(records) == 2 and ds.sizes["shot"] == 2000 and ds.sizes["batch_index"] == 2
    for v in ("accepted", "board_outcome", "rule_outcome", "iq", "proxy", "logical_error", "batch_stream_seed"):
        assert v in ds, v
    assert ds["iq"].dims == ("shot", "readout", "quadrature")
    assert (ds["board_outcome"].values == board).all() and (ds["iq"].values == iq).all()
    assert int(ds["accepted"].sum()) == sum(b["accepted"] for b in records) == g["summary"]["accepted"]
    assert [b["stream"]["position"] for b in records] == [0, 1000]
    for k in ("program_hash", "calibration_hash", "firmware_hash", "board"):
        assert ds.attrs[k] == header["identity"][k]
    assert ds.attrs["device"] == "planar16_d3" and ds.attrs["distance"] == 3
    assert json.loads(ds.attrs["versions"]) == header["versions"]
    assert json.loads(ds.attrs["seeds"]) == [1]  # the example's board seed
    assert json.loads(ds.attrs["summary"])["accepted"] == g["summary"]["accepted"]
    # the thresholded bits: I >= the threshold the program tests, computed here from the raw I/Q with
    # the labels and thresholds `ctrl run` itself loads from the compile folder
    from ctrl.lab.client import load_compiled

    c = load_compiled(g["WORK"] / "prog")
    labels = [label for ch in sorted(c.labels) for label in c.labels[ch]]
    assert list(ds["readout_label"].values) == labels
    assert list(chans) == [ch for ch in sorted(c.labels) for _ in c.labels[ch]]
    for r, label in enumerate(labels):
        want = (iq[:, r, 0] >= c.thresholds[label]).astype(int) if label in c.thresholds else np.full(len(iq), -1)
        assert (ds["bit"].values[:, r] == want).all(), label
    assert (ds["bit"].values >= 0).sum() > 0 and (ds["bit"].values == 1).sum() > 0
    assert "acceptance per batch: " in out and "board and rule disagree on 0 attempts" in out


def test_the_example_touches_no_key_file(example):
    # it signs with a throwaway key: the board key file (the tests' own, see conftest) is as it was
    key = Path(os.environ["CTRL_BOARD_KEY_FILE"])
    assert (key.read_bytes() if key.exists() else None) == example[0]["_key_before"]
