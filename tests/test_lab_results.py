"""The lab results file: append-only lines, a torn last line, the run lock, the board's stream on resume,
and the consistency check that catches an edited file. File-level tests drive `ctrl.lab.results` with
small batch records; run-level ones drive `ctrl run` against the emulated board as tests/test_lab.py does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab_support import run_until_batches
from ctrl.cli import main
from ctrl.errors import CtrlError
from ctrl.lab import results as res_file

ROOT = Path(__file__).resolve().parents[1]
NOISE = "calibration*0.2"
IDENTITY = {"program_hash": "sha256:p", "batch_shots": 4}


def _batch(i: int, seed: int | None = 5, position: int | None = None) -> dict:
    b = {"batch": i, "first_shot": 4 * i, "shots": 4, "attempts": 4, "accepted": i % 3, "decision_mismatches": 0,
         "board_outcomes": [0, 1, 0, 2]}
    if seed is not None:
        b["stream"] = {"seed": seed, "position": 4 * i if position is None else position}
    return b


def _file(path: Path, batches: int, finished: bool = True) -> res_file.Results:
    r = res_file.start(path, IDENTITY, {"program": "prog"}, "t0")
    for i in range(batches):
        r = res_file.append(r, _batch(i))
    if finished:
        r = res_file.finish(r, "t1", {"shots": r.shots})
    return r


def _edit(path: Path, line_no: int, **changes) -> None:
    lines = path.read_text().splitlines(keepends=True)
    doc = json.loads(lines[line_no - 1])
    doc.update(changes)
    lines[line_no - 1] = json.dumps(doc) + "\n"
    path.write_text("".join(lines))


# ---- the file ------------------------------------------------------------------------------------


def test_each_batch_appends_exactly_its_line_and_leaves_earlier_bytes_alone(tmp_path):
    path = tmp_path / "r.jsonl"
    r = res_file.start(path, IDENTITY, {"program": "prog"}, "t0")
    before = path.read_bytes()
    assert before.count(b"\n") == 1 and json.loads(before)["format"] == "ctrl.lab-results/2"
    for i in range(5):
        b = _batch(i)
        r = res_file.append(r, b)
        now = path.read_bytes()
        line = (json.dumps(b, sort_keys=True, separators=(",", ":")) + "\n").encode()
        assert now == before + line  # grown by exactly the new line, every earlier byte unchanged
        assert r.size == len(now)
        before = now
    r = res_file.finish(r, "t1", {"shots": 20})
    assert path.read_bytes().startswith(before)
    back = res_file.read_results(path)
    assert [b["batch"] for b in back.batches] == list(range(5)) and back.shots == 20
    assert back.header["finished_utc"] == "t1" and back.header["summary"] == {"shots": 20}
    assert not list(tmp_path.glob(".r.jsonl.*"))  # no temporary file left behind


def test_resume_and_finish_are_event_lines_the_reader_folds(tmp_path):
    path = tmp_path / "r.jsonl"
    _file(path, 2)
    first_line = path.read_text().splitlines()[0]
    r = res_file.start(path, IDENTITY, {"program": "prog"}, "t2")
    assert r.header["finished_utc"] is None and "summary" not in r.header and r.header["resumed_utc"] == ["t2"]
    r = res_file.finish(res_file.append(r, _batch(2)), "t3", {"shots": 12})
    lines = path.read_text().splitlines()
    assert lines[0] == first_line  # the header is never rewritten
    assert [json.loads(x).get("event") for x in lines[1:]] == [None, None, "finished", "resumed", None, "finished"]
    back = res_file.read_results(path)
    assert back.header["resumed_utc"] == ["t2"] and back.header["finished_utc"] == "t3"
    assert back.header["summary"] == {"shots": 12} and back.header["started_utc"] == "t0"


def test_a_torn_last_line_is_dropped_with_a_note_and_truncated_on_resume(tmp_path):
    path = tmp_path / "r.jsonl"
    _file(path, 3, finished=False)
    whole = path.read_bytes()
    with open(path, "ab") as f:
        f.write(json.dumps(_batch(3)).encode()[:25])  # a kill in the middle of the append
    r = res_file.read_results(path)
    assert len(r.batches) == 3 and "torn last line" in r.note and "after line 4" in r.note
    r = res_file.start(path, IDENTITY, {}, "t1")
    assert r.note and path.read_bytes().startswith(whole)
    assert path.read_bytes()[len(whole):] == b'{"event":"resumed","utc":"t1"}\n'
    r = res_file.append(r, _batch(3))
    assert len(res_file.read_results(path).batches) == 4 and res_file.read_results(path).note == ""


def test_a_malformed_line_that_is_not_the_last_is_an_error_with_its_line(tmp_path):
    path = tmp_path / "r.jsonl"
    _file(path, 3)
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2][:10] + "\n"  # whole line (newline present), but not JSON
    path.write_text("".join(lines))
    with pytest.raises(CtrlError, match=r"r\.jsonl:3: not a JSON line"):
        res_file.read_results(path)
    lines[2] = '{"event": "paused", "utc": "t"}\n'
    path.write_text("".join(lines))
    with pytest.raises(CtrlError, match=r"r\.jsonl:3: not a results event"):
        res_file.read_results(path)


def test_an_edited_file_does_not_add_up(tmp_path):
    path = tmp_path / "r.jsonl"
    _file(path, 4)
    good = path.read_text()
    cases = [
        (3, {"shots": 5}, r"r\.jsonl:3: batch 1: 5 shots, the run's batches hold 4"),
        (4, {"first_shot": 4}, r"r\.jsonl:4: batch 2: first_shot is 4, the earlier batches hold 8"),
        (4, {"batch": 3}, r"r\.jsonl:4: batch 3: expected batch 2"),
        (5, {"accepted": 9}, r"r\.jsonl:5: batch 3: accepted is 9"),
        # a batch whose samples another batch already holds: a replay, even with numbers that add up
        (5, {"stream": {"seed": 5, "position": 2}}, r"r\.jsonl:5: batch 3: holds samples 2\.\.5 .* batch 0"),
    ]
    for line, change, message in cases:
        path.write_text(good)
        _edit(path, line, **change)
        with pytest.raises(CtrlError, match=message):
            res_file.read_results(path)
    path.write_text(good)
    _edit(path, 5, stream={"seed": 6, "position": 2})  # another seed: other samples
    assert len(res_file.read_results(path).batches) == 4


def test_a_version_1_file_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps({"format": "ctrl.lab-results/1", "identity": IDENTITY}) + "\n")
    with pytest.raises(CtrlError, match=r"ctrl\.lab-results/1 file .* use another --out"):
        res_file.start(path, IDENTITY, {}, "t")
    assert path.read_text().count("\n") == 1  # untouched


def test_the_lock_is_exclusive_and_released(tmp_path):
    path = tmp_path / "r.jsonl"
    message = r"r\.jsonl: another ctrl run is writing this results file"
    with res_file.locked(path), pytest.raises(CtrlError, match=message), res_file.locked(path):
        pass
    with res_file.locked(path):  # released when the first run ends
        pass


def test_no_nan_is_written(tmp_path):
    r = res_file.start(tmp_path / "r.jsonl", IDENTITY, {}, "t0")
    with pytest.raises(CtrlError, match="not written"):
        res_file.finish(r, "t1", {"acceptance": float("nan")})
    assert (tmp_path / "r.jsonl").read_text().count("\n") == 1


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
    res = tmp_path / "shared.jsonl"
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
    res, fresh = tmp_path / "resumed.jsonl", tmp_path / "fresh.jsonl"
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
    samples = [json.dumps(b["raw"], sort_keys=True) for b in r.batches]
    assert len(set(samples)) == 5  # no batch holds another's samples
    # what a replay would have given: a board with that seed starts with exactly the first batches
    third = _serve(31)
    try:
        assert _run(third, compiled, fresh, 1000) == 0
    finally:
        third.close()
    assert res_file.read_results(fresh).batches[0]["raw"] == r.batches[0]["raw"]


def test_a_torn_line_and_a_tampered_file_on_resume(compiled, tmp_path, capsys):
    res = tmp_path / "torn.jsonl"
    board = _serve(51)
    try:
        assert _run(board, compiled, res, 2000) == 0
        whole = res.read_bytes()
        with open(res, "ab") as f:
            f.write(b'{"batch":2,"first_shot":2000,"raw":{"0":{"iq":[1,2')
        capsys.readouterr()
        assert _run(board, compiled, res, 3000) == 0
        err = capsys.readouterr().err
        assert "dropped a torn last line" in err and "truncated it" in err
        assert res.read_bytes().startswith(whole)
        r = res_file.read_results(res)
        assert len(r.batches) == 3 and r.note == "" and r.header["summary"]["attempts"] == 3000
        lines = res.read_text().splitlines()
        doc = json.loads(lines[2])
        doc["shots"] = 999  # a batch's shots edited
        lines[2] = json.dumps(doc)
        res.write_text("\n".join(lines) + "\n")
        runs = board.soc.runs
        assert _run(board, compiled, res, 4000) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{res}:3: batch 1: 999 shots" in err
        assert board.soc.runs == runs  # refused before anything ran
    finally:
        board.close()
