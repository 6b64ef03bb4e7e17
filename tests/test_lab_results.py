"""The results file `ctrl run` writes (HDF5, ctrl.lab.results): a commit per batch, a kill at any write
rolled back to the last commit, the run lock, the board's stream on resume, and the consistency check
that catches an edited file. File-level tests drive `ctrl.lab.results` with small batches; run-level ones
drive `ctrl run` against the emulated board as tests/test_lab.py does."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from lab_support import run_until_batches
from ctrl.cli import main
from ctrl.errors import CtrlError
from ctrl.lab import journal as res_journal
from ctrl.lab import results as res_file
from ctrl.lab.dataset import open_dataset

ROOT = Path(__file__).resolve().parents[1]
NOISE = "calibration*0.2"
IDENTITY = {"program_hash": "sha256:p", "batch_shots": 4}
READOUTS = ([0, 0, 3], [0, 1, 0], ["reset:Q0", "r0.X/a1", "r0.X/a2"], [np.nan, 10.0, -5.0])


def _batch(i: int, seed: int | None = 5, position: int | None = None) -> dict:
    rng = np.random.default_rng(i)
    board = np.array([0, 1, 0, 2])
    b = {"batch": i, "first_shot": 4 * i, "shots": 4, "attempts": 4, "accepted": 2, "decision_mismatches": 0,
         "board_outcomes": board, "rule_outcomes": board.copy(),
         "raw": {"0": {"shape": [4, 2, 2], "iq": rng.integers(-99, 99, 16)},
                 "3": {"shape": [4, 1, 2], "iq": rng.integers(-99, 99, 8)}}}  # fmt: skip
    if seed is not None:
        b["stream"] = {"seed": seed, "position": 4 * i if position is None else position}
    return b


def _open(path: Path, now: str = "t0", identity: dict = IDENTITY) -> res_file.RunFile:
    return res_file.open_run(path, identity, {"program": "prog"}, READOUTS, now)


def _file(path: Path, batches: int, finished: bool = True) -> res_file.Results:
    with _open(path) as run:
        for i in range(batches):
            run.append(_batch(i))
        if finished:
            run.finish("t1", {"shots": run.results.shots})
        return run.results


# ---- the file ------------------------------------------------------------------------------------


def _settled(journal: Path) -> bool:
    """No batch being written: no journal, or an empty one (the open run's, between commits)."""
    return not journal.exists() or journal.stat().st_size == 0


def test_each_batch_is_committed_and_leaves_the_earlier_ones_alone(tmp_path):
    path = tmp_path / "r.h5"
    journal = res_journal.journal_path(path)
    with _open(path) as run:
        assert res_file.read_results(path).batches == () and _settled(journal)
        seen = []
        for i in range(5):
            run.append(_batch(i))
            assert _settled(journal)  # committed: nothing left to roll back
            back = res_file.read_results(path)  # another reader, while the run holds the file
            assert [b["batch"] for b in back.batches] == list(range(i + 1)) and back.shots == 4 * (i + 1)
            ds = open_dataset(path)
            seen.append(ds["iq"].values[4 * i :].copy())
            for j, iq in enumerate(seen):  # every earlier batch's readouts as they were written
                assert (ds["iq"].values[4 * j : 4 * j + 4] == iq).all()
        run.finish("t1", {"shots": 20})
    back = res_file.read_results(path)
    assert back.header["finished_utc"] == "t1" and back.header["summary"] == {"shots": 20}
    ds = open_dataset(path)
    b = _batch(3)
    want = np.concatenate([b["raw"][ch]["iq"].reshape(b["raw"][ch]["shape"]) for ch in ("0", "3")], axis=1)
    assert (ds["iq"].values[12:16] == want).all()
    assert list(ds["readout_label"].values) == READOUTS[2] and list(ds["readout_channel"].values) == [0, 0, 3]
    assert (ds["bit"].values[:, 0] == -1).all() and (ds["bit"].values[12:16, 1] == (want[:, 1, 0] >= 10)).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]  # no temporary, no journal


def test_resume_and_finish_are_recorded_in_the_header(tmp_path):
    path = tmp_path / "r.h5"
    _file(path, 2)
    with _open(path, "t2") as run:
        r = run.results
        assert r.header["finished_utc"] is None and "summary" not in r.header and r.header["resumed_utc"] == ["t2"]
        assert len(r.batches) == 2
        run.append(_batch(2))
        run.finish("t3", {"shots": 12})
    back = res_file.read_results(path)
    assert back.header["resumed_utc"] == ["t2"] and back.header["finished_utc"] == "t3"
    assert back.header["summary"] == {"shots": 12} and back.header["started_utc"] == "t0"
    ds = open_dataset(path)
    assert json.loads(ds.attrs["resumed_utc"]) == ["t2"] and ds.attrs["finished_utc"] == "t3"
    assert json.loads(ds.attrs["seeds"]) == [5] and ds.sizes["shot"] == 12


def _killed_at(path: Path, k: int) -> int:
    """Resume `path` and append batch 2 in a child process killed (os._exit, no cleanup) at its k-th
    write to the file (held or not, the commit's included); the number of writes it made (k if killed)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        calls = [0]
        real = os.pwrite  # every write to the results file (os.write is the journal's)

        def write_then_die(fd, data, offset):
            calls[0] += 1
            n = real(fd, data, offset)
            if calls[0] == k:
                os.write(write, str(calls[0]).encode())
                os._exit(0)
            return n

        os.pwrite = write_then_die
        with _open(path, "t5") as run:
            run.append(_batch(2))
        os.write(write, str(calls[0]).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        return int(f.read() or 0)


def test_a_kill_at_any_write_rolls_back_to_the_last_commit(tmp_path):
    path = tmp_path / "r.h5"
    _file(path, 2)
    committed = path.read_bytes()
    journal = res_journal.journal_path(path)
    probe = tmp_path / "probe.h5"
    probe.write_bytes(committed)
    total = _killed_at(probe, 10**9)  # the writes of a whole resume and append
    assert len(res_file.read_results(probe).batches) == 3 and total > 5
    for k in sorted({*range(1, total, 4), total - 1}):  # without the journal, most leave a file h5py cannot open
        path.write_bytes(committed)
        assert _killed_at(path, k) == k and not _settled(journal)
        with _open(path, "t6") as run:  # recovers, then resumes
            assert "rolled back" in run.results.note, k
            assert len(run.results.batches) == 2  # the batch in flight is gone, the two before it whole
        assert not journal.exists()
        ds = open_dataset(path)
        assert ds.sizes["shot"] == 8 and ds.sizes["batch_index"] == 2
        first = [_batch(i) for i in range(2)]
        iq = np.concatenate([np.concatenate([b["raw"][ch]["iq"].reshape(b["raw"][ch]["shape"]) for ch in ("0", "3")],
                                            axis=1) for b in first])  # fmt: skip
        assert (ds["iq"].values == iq).all(), k


def test_recover_puts_back_every_byte(tmp_path):
    path = tmp_path / "r.h5"
    _file(path, 2)
    committed = path.read_bytes()
    raw = res_journal.JournaledFile(path)
    raw.seek(0)
    raw.write(b"x" * 10_000)  # over the superblock and whatever follows
    raw.seek(0, 2)
    raw.write(b"y" * 5000)  # and past the end
    raw.close()  # a kill: no commit
    assert path.read_bytes() != committed
    assert res_journal.recover(path) is True
    assert path.read_bytes() == committed and not res_journal.journal_path(path).exists()
    assert res_journal.recover(path) is False


def test_a_batch_that_fails_half_written_is_rolled_back_at_once(tmp_path):
    path = tmp_path / "r.h5"
    with _open(path) as run:
        run.append(_batch(0))
        bad = _batch(1) | {"truth": {"proxy": "XQ", "logical_error": [0, 0, 0, 0]}}  # after the verdicts are in
        with pytest.raises(CtrlError, match="truth.proxy"):
            run.append(bad)
    r = res_file.read_results(path)
    assert len(r.batches) == 1 and open_dataset(path).sizes["shot"] == 4
    assert not res_journal.journal_path(path).exists()


def test_an_edited_file_does_not_add_up(tmp_path):
    path = tmp_path / "r.h5"
    _file(path, 4)
    good = path.read_bytes()

    def record(i, **changes):
        def edit(f):
            doc = json.loads(f["batch_record"][i])
            f["batch_record"][i] = json.dumps(doc | changes)

        return edit

    def column(name, i, value):
        def edit(f):
            f[name][i] = value

        return edit

    cases = [
        (record(1, shots=5), r"r\.h5: batch 1: 5 shots, the run's batches hold 4"),
        (record(2, first_shot=4), r"r\.h5: batch 2: first_shot is 4, the earlier batches hold 8"),
        (record(2, batch=3), r"r\.h5: batch 3: expected batch 2"),
        (record(3, accepted=9), r"r\.h5: batch 3: accepted is 9"),
        # a batch whose samples another batch already holds: a replay, even with numbers that add up
        (record(3, stream={"seed": 5, "position": 2}), r"r\.h5: batch 3: holds samples 2\.\.5 .* batch 0"),
        (column("batch_accepted", 2, 3), r"r\.h5: batch 2: batch_accepted is 3, its record says 2"),
        (column("accepted", 13, 1), r"r\.h5: batch 3: 3 shots marked accepted, its record says 2"),
    ]
    for edit, message in cases:
        path.write_bytes(good)
        with h5py.File(path, "r+") as f:
            edit(f)
        with pytest.raises(CtrlError, match=message):
            res_file.read_results(path)
        with pytest.raises(CtrlError, match=message):
            _open(path, "t9")  # refused before anything is written
    path.write_bytes(good)
    with h5py.File(path, "r+") as f:
        record(3, stream={"seed": 6, "position": 2})(f)  # another seed: other samples
    assert len(res_file.read_results(path).batches) == 4


def test_another_run_is_not_resumed_into_the_file(tmp_path):
    path = tmp_path / "r.h5"
    _file(path, 1)
    before = path.read_bytes()
    with pytest.raises(CtrlError, match=r"cannot resume: program_hash is 'sha256:q' now but 'sha256:p'"):
        _open(path, "t1", IDENTITY | {"program_hash": "sha256:q"})
    assert path.read_bytes() == before


def test_json_lines_are_for_the_converter(tmp_path):
    with pytest.raises(CtrlError, match=r"r\.jsonl: ctrl run writes HDF5 .*ctrl results convert"):
        _open(tmp_path / "r.jsonl")
    old = tmp_path / "old.h5"  # an older run's JSON lines under another name
    old.write_text(json.dumps({"format": "ctrl.lab-results/2", "identity": IDENTITY}) + "\n")
    with pytest.raises(CtrlError, match=r"old\.h5: not an HDF5 results file .*ctrl results convert"):
        _open(old)
    assert old.read_text().count("\n") == 1  # untouched


def test_the_lock_is_exclusive_and_released(tmp_path):
    path = tmp_path / "r.h5"
    message = r"r\.h5: another ctrl run is writing this results file"
    with res_file.locked(path), pytest.raises(CtrlError, match=message), res_file.locked(path):
        pass
    with res_file.locked(path):  # released when the first run ends
        pass


def test_no_nan_is_written(tmp_path):
    path = tmp_path / "r.h5"
    with _open(path) as run, pytest.raises(CtrlError, match="not written"):
        run.finish("t1", {"acceptance": float("nan")})
    assert res_file.read_results(path).header["finished_utc"] is None


# ---- ctrl run --------------------------------------------------------------------------------------

pytest.importorskip("Pyro4")
pytest.importorskip("qick")
pytestmark = pytest.mark.filterwarnings("ignore:isSet:DeprecationWarning")  # inside Pyro4's request loop


@pytest.fixture(scope="module")
def compiled(default_program):
    return default_program


def _serve(seed: int):
    from ctrl.device import DEFAULT_DEVICE
    from ctrl.lab.board import serve

    return serve(DEFAULT_DEVICE, port=0, noise=NOISE, seed=seed)


def _run(server, compiled, res, shots) -> int:
    return main(["run", "--board", f"127.0.0.1:{server.port}", "--program", str(compiled), "--shots", str(shots),
                 "--out", str(res)])  # fmt: skip


def test_a_second_run_on_the_same_out_fails_at_once_and_the_first_is_intact(compiled, tmp_path, capsys):
    board, other = _serve(41), _serve(42)
    res = tmp_path / "shared.h5"
    args = ["run", "--board", f"127.0.0.1:{board.port}", "--program", str(compiled), "--shots", "12000",
            "--out", str(res)]  # fmt: skip
    proc = run_until_batches(args, res, 1)
    try:
        size = res.stat().st_size
        # another board, so only the file could stop it
        code = _run(other, compiled, res, 12000)
        err = capsys.readouterr().err
        assert code == 2
        assert err.count("\n") == 1 and f"ctrl: error: {res}: another ctrl run is writing this results file" in err
        assert other.soc.runs == 0 and other.soc.last_client == "" and other.soc._state.binprog is None
        assert res.stat().st_size >= size  # nothing truncated or rewritten by the refused run
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
        board.close()
        other.close()
    r = res_file.read_results(res)
    assert len(r.batches) == 12 and r.header["summary"]["attempts"] == 12000 and r.header["resumed_utc"] == []
    assert [b["stream"]["position"] for b in r.batches] == list(range(0, 12000, 1000))


def test_a_restarted_board_with_the_same_seed_does_not_replay_on_resume(compiled, tmp_path, capsys):
    res, fresh = tmp_path / "resumed.h5", tmp_path / "fresh.h5"
    first = _serve(31)
    try:
        assert _run(first, compiled, res, 3000) == 0
    finally:
        first.close()
    again = _serve(31)  # the same seed: a fresh stream at position 0
    try:
        capsys.readouterr()
        assert _run(again, compiled, res, 5000) == 0
        err = capsys.readouterr().err
    finally:
        again.close()
    assert "seed 31) was at position 0" in err and "moved it to 3000" in err
    r = res_file.read_results(res)
    assert len(r.batches) == 5 and r.header["summary"]["attempts"] == 5000
    assert [b["stream"] for b in r.batches] == [{"seed": 31, "position": p} for p in range(0, 5000, 1000)]
    iq = open_dataset(res)["iq"].values
    samples = {iq[i : i + 1000].tobytes() for i in range(0, 5000, 1000)}
    assert len(samples) == 5  # no batch holds another's samples
    # what a replay would have given: a board with that seed starts with exactly the first batches
    third = _serve(31)
    try:
        assert _run(third, compiled, fresh, 1000) == 0
    finally:
        third.close()
    assert (open_dataset(fresh)["iq"].values == iq[:1000]).all()


def test_an_unfinished_write_and_a_tampered_file_on_resume(compiled, tmp_path, capsys):
    res = tmp_path / "torn.h5"
    board = _serve(51)
    try:
        assert _run(board, compiled, res, 2000) == 0
        kept = open_dataset(res)
        raw = res_journal.JournaledFile(res)  # a run killed while writing its next batch
        raw.seek(0, 2)
        raw.write(b"\0" * 70_000)
        raw.seek(100)
        raw.write(b"\xff" * 5000)
        raw.close()
        capsys.readouterr()
        assert _run(board, compiled, res, 3000) == 0
        err = capsys.readouterr().err
        assert "rolled back a batch the last run did not finish writing" in err
        ds = open_dataset(res)
        assert ds.sizes["shot"] == 3000 and (ds["iq"].values[:2000] == kept["iq"].values).all()
        r = res_file.read_results(res)
        assert len(r.batches) == 3 and r.note == "" and r.header["summary"]["attempts"] == 3000
        with h5py.File(res, "r+") as f:
            doc = json.loads(f["batch_record"][1])
            f["batch_record"][1] = json.dumps(doc | {"shots": 999})  # a batch's shots edited
        runs = board.soc.runs
        assert _run(board, compiled, res, 4000) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{res}: batch 1: 999 shots" in err
        assert board.soc.runs == runs  # refused before anything ran
    finally:
        board.close()
