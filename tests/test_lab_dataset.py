"""`ctrl results convert` (ctrl.lab.dataset): the JSON lines of an older `ctrl run` -> HDF5 -> xarray.Dataset,
checked against the JSON lines read here with json alone; appending batches; provenance; bad input; atomic
writes; the JSON lines reader's strictness (a torn last line, a malformed line, an edited file).

The JSON lines files are written here line by line as an older `ctrl run` appended them, from batch
records shaped as it made them (raw I/Q per readout channel, board and rule verdicts, the emulated board's
ground truth), so no board is needed; test_lab.py and test_example.py load files `ctrl run` wrote."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from ctrl.cli import main
from ctrl.errors import CtrlError
from ctrl.lab import dataset
from ctrl.lab import jsonl, layout

SHOTS = 6
WINDOWS = {"10": 1, "2": 3}  # channel -> windows per shot; "10" sorts before "2" as text, after it as a number
IDENTITY = {"program_hash": "sha256:p", "calibration_hash": "sha256:c", "firmware_hash": "sha256:f",
            "board": "zcu216", "batch_shots": SHOTS}  # fmt: skip
HEADER = {"shots_requested": 12, "program": "prog", "device": "planar16_d3", "distance": 3,
          "board_address": "127.0.0.1:1/myqick", "versions": {"ctrl": "0.1.0", "qick": "0.2.436"}}  # fmt: skip


def _batch(i: int, truth: bool = True, seed: int = 7) -> dict:
    rng = np.random.default_rng(i)
    board = rng.integers(0, 4, SHOTS)
    rule = board.copy()
    rule[0] = 0 if board[0] else 1  # one mismatch, so accepted needs both verdicts
    b = {"batch": i, "first_shot": SHOTS * i, "shots": SHOTS, "attempts": SHOTS,
         "accepted": int(((board == 0) & (rule == 0)).sum()), "board_outcomes": board.tolist(),
         "rule_outcomes": rule.tolist(), "decision_mismatches": int((board != rule).sum()),
         "raw": {ch: {"shape": [SHOTS, w, 2], "iq": rng.integers(-200, 200, SHOTS * w * 2).tolist()}
                 for ch, w in WINDOWS.items()},
         "stream": {"seed": seed, "position": SHOTS * i}}  # fmt: skip
    if truth:
        err = rng.integers(0, 2, SHOTS)
        b["logical"] = {"Z-type (proxy X)": [3, 1, 0], "X-type (proxy Z)": [3, 1, 1]}
        b["truth"] = {"proxy": "XZ" * (SHOTS // 2), "logical_error": err.tolist(), "note": "emulator ground truth"}
    return b


class _Lines:
    """A JSON lines results file as an older `ctrl run` wrote it: the header, then a line per batch or event."""

    def __init__(self, path: Path, identity: dict = IDENTITY, now: str = "2026-01-01T00:00:00Z"):
        self.path, self.shots = path, 0
        self._line({"format": "ctrl.lab-results/2", "identity": identity, **HEADER, "started_utc": now}, "w")

    def _line(self, doc: dict, mode: str = "a") -> None:
        with open(self.path, mode) as f:
            f.write(json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n")

    def append(self, b: dict) -> "_Lines":
        self._line(b)
        self.shots += b["shots"]
        return self

    def finish(self, utc: str, summary: dict) -> None:
        self._line({"event": "finished", "utc": utc, "summary": summary})


def _results(path: Path, batches: int, finished: bool = True, truth=lambda i: True) -> Path:
    r = _Lines(path)
    for i in range(batches):
        r.append(_batch(i, truth(i)))
    if finished:
        r.finish("2026-01-01T00:01:00Z", {"shots": r.shots})
    return path


def _lines(path: Path) -> tuple[dict, list[dict]]:
    """The header and the batch lines, read with json alone (independent of the code under test)."""
    docs = [json.loads(x) for x in path.read_text().splitlines()]
    return docs[0], [d for d in docs[1:] if "batch" in d]


def _expected_iq(b: dict) -> np.ndarray:
    """(shots, readouts, 2) from the JSON: channels in numeric order, windows in order within each."""
    parts = [np.array(b["raw"][ch]["iq"]).reshape(b["raw"][ch]["shape"]) for ch in sorted(b["raw"], key=int)]
    return np.concatenate(parts, axis=1)


def _check_against_json(ds, src: Path) -> None:
    header, batches = _lines(src)
    assert ds.sizes["shot"] == sum(b["shots"] for b in batches)
    assert ds.sizes["batch_index"] == len(batches)
    assert ds.sizes["readout"] == sum(WINDOWS.values()) and ds.sizes["quadrature"] == 2
    assert list(ds["readout_channel"].values) == [2, 2, 2, 10]
    assert list(ds["readout_window"].values) == [0, 1, 2, 0]
    shots = np.concatenate([np.arange(b["first_shot"], b["first_shot"] + b["shots"]) for b in batches])
    assert (ds["shot"].values == shots).all()
    board = np.concatenate([b["board_outcomes"] for b in batches])
    rule = np.concatenate([b["rule_outcomes"] for b in batches])
    assert (ds["board_outcome"].values == board).all() and (ds["rule_outcome"].values == rule).all()
    assert ds["accepted"].dtype == bool
    assert int(ds["accepted"].sum()) == sum(b["accepted"] for b in batches)
    assert (ds["batch"].values == np.concatenate([[b["batch"]] * b["shots"] for b in batches])).all()
    assert (ds["iq"].values == np.concatenate([_expected_iq(b) for b in batches])).all()
    assert list(ds["quadrature"].values) == ["I", "Q"]
    proxies = "".join(b["truth"]["proxy"] if "truth" in b else " " * b["shots"] for b in batches)
    assert "".join(p or " " for p in ds["proxy"].values) == proxies
    err = np.concatenate([b["truth"]["logical_error"] if "truth" in b else [-1] * b["shots"] for b in batches])
    assert (ds["logical_error"].values == err).all()
    assert list(ds["batch_accepted"].values) == [b["accepted"] for b in batches]
    assert list(ds["batch_stream_seed"].values) == [b["stream"]["seed"] for b in batches]
    assert list(ds["batch_stream_position"].values) == [b["stream"]["position"] for b in batches]
    for rec, b in zip(ds["batch_record"].values, batches):
        # everything of the line but its per-shot arrays (variables above), so nothing is dropped
        want = {k: v for k, v in b.items() if k not in ("board_outcomes", "rule_outcomes", "raw", "truth")}
        if "truth" in b:
            want["truth"] = {"note": b["truth"]["note"]}
        assert json.loads(rec) == want
    # provenance: the header's fields, strings and numbers only (nested values as JSON)
    for k in ("program_hash", "calibration_hash", "firmware_hash", "board", "batch_shots"):
        assert ds.attrs[k] == header["identity"][k]
    for k in ("device", "distance", "program", "board_address", "shots_requested", "started_utc"):
        assert ds.attrs[k] == header[k]
    assert json.loads(ds.attrs["versions"]) == header["versions"]
    assert json.loads(ds.attrs["seeds"]) == sorted({b["stream"]["seed"] for b in batches})
    assert all(isinstance(v, (str, int, float)) for v in ds.attrs.values()), ds.attrs
    assert ds.attrs["format"] == "ctrl.lab-dataset/1"


def test_round_trip_equals_the_json_lines(tmp_path):
    src = _results(tmp_path / "r.jsonl", 2)
    out = tmp_path / "r.h5"
    got = dataset.convert(src, out)
    assert got == {"out": str(out), "batches": 2, "shots": 2 * SHOTS, "appended": 2}
    ds = dataset.open_dataset(out)
    _check_against_json(ds, src)
    assert ds.attrs["finished_utc"] == "2026-01-01T00:01:00Z"
    assert json.loads(ds.attrs["summary"]) == {"shots": 2 * SHOTS}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_converting_again_appends_the_new_batches_and_keeps_the_first(tmp_path):
    src = tmp_path / "r.jsonl"
    r = _Lines(src).append(_batch(0))
    out = tmp_path / "r.h5"
    assert dataset.convert(src, out)["appended"] == 1
    first = dataset.open_dataset(out)
    assert first.attrs["finished_utc"] == "" and first.attrs["summary"] == ""
    # the run goes on (a batch from a board without ground truth, as after a resume on a real board)
    r.append(_batch(1, truth=False)).finish("t1", {"shots": 2 * SHOTS})
    inode = out.stat().st_ino
    assert dataset.convert(src, out)["appended"] == 1
    # a new file renamed into place, not the old one written in place: a reader that has the old file
    # open keeps a whole file, and a crash mid-write cannot leave a half-extended one
    assert out.stat().st_ino != inode
    ds = dataset.open_dataset(out)
    _check_against_json(ds, src)
    assert ds.attrs["finished_utc"] == "t1"
    kept = ds.isel(shot=slice(0, SHOTS), batch_index=slice(0, 1))
    for name in ("iq", "board_outcome", "rule_outcome", "accepted", "logical_error", "proxy", "batch_record"):
        assert (kept[name].values == first[name].values).all(), name
    assert (ds["logical_error"].values[SHOTS:] == -1).all()  # no ground truth: unknown, not "no error"
    assert dataset.convert(src, out)["appended"] == 0  # nothing new: nothing added twice
    assert dataset.open_dataset(out).sizes["shot"] == 2 * SHOTS


def test_the_cli_converts_and_says_what_it_wrote(tmp_path, capsys):
    src = _results(tmp_path / "r.jsonl", 1)
    out = tmp_path / "r.h5"
    assert main(["results", "convert", str(src), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{out}: 1 batches, {SHOTS} shots (1 batches appended)"
    _check_against_json(dataset.open_dataset(out), src)


def _one_line_error(capsys, args, *names) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ctrl: error: ") and "\n" not in err and "Traceback" not in err, err
    for n in names:
        assert str(n) in err, err
    return err


def test_bad_input_is_one_line_naming_the_file(tmp_path, capsys):
    out = tmp_path / "out.h5"
    missing = tmp_path / "missing.jsonl"
    _one_line_error(capsys, ["results", "convert", str(missing), "--out", str(out)], missing)
    src = _results(tmp_path / "r.jsonl", 2, finished=False)
    broken = tmp_path / "broken.jsonl"
    lines = src.read_text().splitlines(keepends=True)
    broken.write_text(lines[0] + lines[1][: len(lines[1]) // 2] + "\n" + lines[2])  # a cut line, then more
    err = _one_line_error(capsys, ["results", "convert", str(broken), "--out", str(out)], f"{broken}:2")
    assert "JSON" in err
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"format": "something else"}) + "\n")
    _one_line_error(capsys, ["results", "convert", str(other), "--out", str(out)], other)
    assert not out.exists()
    # not an HDF5 file, and an HDF5 file that is not ours, as the loader's input and as an --out to extend
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5\n")
    with pytest.raises(CtrlError, match=f"^{text}: not an HDF5 file"):
        dataset.open_dataset(text)
    _one_line_error(capsys, ["results", "convert", str(src), "--out", str(text)], text)
    assert text.read_text() == "not hdf5\n"  # never overwritten
    import h5py

    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2]
    with pytest.raises(CtrlError, match=f"^{foreign}: not a ctrl lab dataset"):
        dataset.open_dataset(foreign)
    with pytest.raises(CtrlError, match=f"^{tmp_path / 'nope.h5'}: no such file"):
        dataset.open_dataset(tmp_path / "nope.h5")


def test_another_runs_file_is_not_extended(tmp_path, capsys):
    a = _results(tmp_path / "a.jsonl", 1)
    out = tmp_path / "a.h5"
    dataset.convert(a, out)
    before = out.read_bytes()
    b = tmp_path / "b.jsonl"
    _Lines(b, IDENTITY | {"program_hash": "sha256:other"}).append(_batch(0))
    _one_line_error(capsys, ["results", "convert", str(b), "--out", str(out)], out, "another run")
    assert out.read_bytes() == before


def test_a_failed_convert_leaves_no_partial_file(tmp_path, monkeypatch):
    src = _results(tmp_path / "r.jsonl", 2)
    out = tmp_path / "r.h5"
    real = layout.append_batch
    calls = []

    def fail_on_second(f, b, where):
        calls.append(b["batch"])
        if len(calls) == 2:
            raise CtrlError("disk gone")  # after the first batch is in the temporary file
        real(f, b, where)

    monkeypatch.setattr(layout, "append_batch", fail_on_second)
    with pytest.raises(CtrlError, match="disk gone"):
        dataset.convert(src, out)
    assert calls == [0, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]  # no r.h5, no temporary
    # ... and a failed append leaves the existing file as it was
    monkeypatch.setattr(layout, "append_batch", real)
    one = tmp_path / "one.jsonl"
    r = _Lines(one).append(_batch(0))
    dataset.convert(one, out)
    before = out.read_bytes()
    r.append(_batch(1))
    calls.clear()
    monkeypatch.setattr(layout, "append_batch", lambda f, b, w: (_ for _ in ()).throw(CtrlError("disk gone")))
    with pytest.raises(CtrlError, match="disk gone"):
        dataset.convert(one, out)
    assert out.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_file_gets_the_mode_of_any_new_file(tmp_path):
    src = _results(tmp_path / "r.jsonl", 1)
    old = os.umask(0o027)
    try:
        dataset.convert(src, tmp_path / "r.h5")
    finally:
        os.umask(old)
    assert (tmp_path / "r.h5").stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600: the group may read it


def test_labels_need_the_runs_own_program(tmp_path, capsys, default_program):
    # the shipped program is not the run's (its identity names program sha256:p): refused, nothing written
    src = _results(tmp_path / "r.jsonl", 1)
    out = tmp_path / "r.h5"
    _one_line_error(capsys, ["results", "convert", str(src), "--out", str(out), "--program", str(default_program)],
                    default_program, "sha256:p")
    assert not out.exists()


# ---- the JSON lines reader (the converter's input) ------------------------------------------------


def _edit(path: Path, line_no: int, **changes) -> None:
    lines = path.read_text().splitlines(keepends=True)
    doc = json.loads(lines[line_no - 1])
    doc.update(changes)
    lines[line_no - 1] = json.dumps(doc) + "\n"
    path.write_text("".join(lines))


def test_a_torn_last_line_is_dropped_with_a_note(tmp_path):
    path = _results(tmp_path / "r.jsonl", 3, finished=False)
    with open(path, "ab") as f:
        f.write(json.dumps(_batch(3)).encode()[:25])  # a kill in the middle of the append
    r = jsonl.read_results(path)
    assert len(r.batches) == 3 and "torn last line" in r.note and "after line 4" in r.note
    assert dataset.convert(path, tmp_path / "r.h5")["batches"] == 3


def test_a_malformed_line_that_is_not_the_last_is_an_error_with_its_line(tmp_path):
    path = _results(tmp_path / "r.jsonl", 3)
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2][:10] + "\n"  # whole line (newline present), but not JSON
    path.write_text("".join(lines))
    with pytest.raises(CtrlError, match=r"r\.jsonl:3: not a JSON line"):
        jsonl.read_results(path)
    lines[2] = '{"event": "paused", "utc": "t"}\n'
    path.write_text("".join(lines))
    with pytest.raises(CtrlError, match=r"r\.jsonl:3: not a results event"):
        jsonl.read_results(path)


def test_an_edited_file_does_not_add_up(tmp_path):
    path = _results(tmp_path / "r.jsonl", 4)
    good = path.read_text()
    cases = [
        (3, {"shots": 5}, r"r\.jsonl:3: batch 1: 5 shots, the run's batches hold 6"),
        (4, {"first_shot": 4}, r"r\.jsonl:4: batch 2: first_shot is 4, the earlier batches hold 12"),
        (4, {"batch": 3}, r"r\.jsonl:4: batch 3: expected batch 2"),
        (5, {"accepted": 9}, r"r\.jsonl:5: batch 3: accepted is 9"),
        # a batch whose samples another batch already holds: a replay, even with numbers that add up
        (5, {"stream": {"seed": 7, "position": 2}}, r"r\.jsonl:5: batch 3: holds samples 2\.\.7 .* batch 0"),
    ]
    for line, change, message in cases:
        path.write_text(good)
        _edit(path, line, **change)
        with pytest.raises(CtrlError, match=message):
            jsonl.read_results(path)
    path.write_text(good)
    _edit(path, 5, stream={"seed": 8, "position": 2})  # another seed: other samples
    assert len(jsonl.read_results(path).batches) == 4


def test_a_version_1_file_is_refused(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps({"format": "ctrl.lab-results/1", "identity": IDENTITY}) + "\n")
    with pytest.raises(CtrlError, match=r"ctrl\.lab-results/1 file .* convert it with the ctrl that wrote it"):
        jsonl.read_results(path)


def test_read_results_reads_both_kinds(tmp_path):
    src = _results(tmp_path / "r.jsonl", 2)
    out = tmp_path / "r.h5"
    dataset.convert(src, out)
    old, new = dataset.read_results(src), dataset.read_results(out)
    counts = ("batch", "first_shot", "shots", "attempts", "accepted", "decision_mismatches", "logical", "stream")
    assert [{k: b[k] for k in counts} for b in old.batches] == [{k: b[k] for k in counts} for b in new.batches]
    assert old.header == new.header and new.shots == 2 * SHOTS
    assert "raw" in old.batches[0] and "raw" not in new.batches[0]  # the HDF5 keeps per-shot data in arrays
    with pytest.raises(CtrlError, match="no such results file"):
        dataset.read_results(tmp_path / "nope.h5")
