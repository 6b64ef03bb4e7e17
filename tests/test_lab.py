"""Lab runs: `ctrl run` against the emulated board served over qick's Pyro4 path (threads in this process,
ephemeral ports), on the default device with its calibration noise scaled by 0.2 (acceptance ~0.39, so
thousands of accepted states in a few seconds)."""

from __future__ import annotations

import copy
import json
import math
import signal
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("Pyro4")
pytest.importorskip("qick")

from lab_support import batches_in, run_until_batches  # noqa: E402
from ctrl.cli import main  # noqa: E402
from ctrl.compile.pipeline import compile_program  # noqa: E402
from ctrl.outputs import write_outputs  # noqa: E402
from ctrl.device import DEFAULT_DEVICE, load_device  # noqa: E402
from ctrl.emulate.run import emulate  # noqa: E402
from ctrl.errors import CtrlError  # noqa: E402
from ctrl.lab import journal as res_journal  # noqa: E402
from ctrl.lab import results as res_file  # noqa: E402
from ctrl.lab.dataset import open_dataset  # noqa: E402
from ctrl.lab.board import BoardServer, EmulatedSoc, serve  # noqa: E402
from ctrl.compile.timed import read_program  # noqa: E402
from ctrl.lab.client import firmware_mismatch, load_compiled  # noqa: E402
from ctrl.lab.engine import StimEngine  # noqa: E402
from ctrl.realtime.decision import Stream  # noqa: E402

NOISE = "calibration*0.2"
pytestmark = pytest.mark.filterwarnings("ignore:isSet:DeprecationWarning")  # inside Pyro4's request loop
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def device():
    return load_device(DEFAULT_DEVICE)


@pytest.fixture(scope="module")
def compiled(device, tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled")
    c = compile_program(device, 3)
    write_outputs(c, out, device)
    return c, out


@pytest.fixture(scope="module")
def board():
    server = serve(DEFAULT_DEVICE, port=0, noise=NOISE, seed=11)
    yield server
    server.close()


def _addr(server) -> str:
    return f"127.0.0.1:{server.port}"


def _wait_free(soc, timeout=10.0):
    end = time.monotonic() + timeout
    while soc.owner and time.monotonic() < end:
        time.sleep(0.02)
    assert not soc.owner


def test_program_json_round_trip(compiled):
    c, out = compiled
    t = read_program(out / "program.json")
    assert t.to_json() == c.program.to_json()
    assert t.decisions == c.program.decisions


def test_run_agrees_with_emulate(device, compiled, board, tmp_path, capsys):
    c, out = compiled
    res = tmp_path / "run.h5"
    assert main(["run", "--board", _addr(board), "--program", str(out), "--shots", "6000", "--out", str(res)]) == 0
    text = capsys.readouterr().out
    assert "6000/6000 shots" in text and "acceptance" in text
    r = res_file.read_results(res)
    s = r.header["summary"]
    assert s["attempts"] == 6000 and len(r.batches) == 6
    assert s["decision_mismatches"] == 0
    emu = emulate(device, c.program, 20_000, NOISE, seed=3)
    # acceptance: the board alternates the two Clifford proxies, so compare with both of emulate's (its
    # headline figure is proxy X's); within 4 sigma of the difference of two binomial estimates
    emu_acc = sum(v["accepted"] for v in emu["components"].values()) / 40_000
    sigma = math.hypot(*(math.sqrt(a * (1 - a) / n) for a, n in ((s["acceptance"], 6000), (emu_acc, 40_000))))
    assert abs(s["acceptance"] - emu_acc) < 4 * sigma, (s["acceptance"], emu_acc)
    assert s["accepted"] > 1500
    # logical error per accepted state: the two 95% intervals overlap
    lo, hi = s["logical_error_rate_ci95"]
    elo, ehi = emu["logical_error_rate_ci95"]
    assert lo <= ehi and elo <= hi, (s["logical_error_rate_ci95"], emu["logical_error_rate_ci95"])
    # provenance in the header, timestamps only there
    ident = r.header["identity"]
    assert ident["calibration_hash"] == device.calibration_hash and ident["board"] == "zcu216"
    assert r.header["started_utc"] and "qick" in r.header["versions"]
    assert not any(k.endswith("_utc") for b in r.batches for k in b)
    # raw readouts as acquire() returns them: every declared readout's windows per shot, with I and Q
    report = json.loads((out / "report.json").read_text())["qick"]["boards"]["zcu216"]
    ds = open_dataset(res)
    assert ds["iq"].shape == (6000, sum(report["reads_per_shot"].values()), 2)
    for ro, n in report["reads_per_shot"].items():
        assert int((ds["readout_channel"] == int(ro)).sum()) == n
    assert int(ds["accepted"].sum()) == s["accepted"] and int(ds["batch_accepted"].sum()) == s["accepted"]
    # the board's own verdicts, checked slot by slot with the plain streaming evaluator on the raw readouts
    compiled_run = load_compiled(out)
    decisions = c.program.decisions
    keys = {r.name: r.keys for r in decisions.rules}
    chans, wins = ds["readout_channel"].values, ds["readout_window"].values
    for slot in range(0, 1000, 7):
        bit = {}
        for ro, labels in compiled_run.labels.items():
            for j, label in enumerate(labels):
                if label in keys_of_measurements(c.program):
                    (col,) = np.flatnonzero((chans == ro) & (wins == j))
                    bit[label] = int(ds["iq"].values[slot, col, 0] >= compiled_run.thresholds[label])
        v = Stream(decisions).feed([sum(bit[k] for k in keys[name]) % 2 for name in decisions.record])
        assert ds["board_outcome"].values[slot] == (0 if v.status == "accept" else v.point + 1)


def keys_of_measurements(program):
    return {t.op.key for t in program.ops if t.op.name == "MEASURE"}


def test_killed_client_loses_no_batch_and_rerun_resumes(compiled, board, tmp_path, capsys):
    _, out = compiled
    res = tmp_path / "killed.h5"
    args = ["run", "--board", _addr(board), "--program", str(out), "--shots", "20000", "--out", str(res)]
    proc = run_until_batches(args, res, 2)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    res_journal.recover(res)  # what the rerun does first: undo a batch the kill caught mid-write, if it did
    kept = res_file.read_results(res)
    before = open_dataset(res)
    assert 2 <= len(kept.batches) < 20 and kept.header["finished_utc"] is None
    _wait_free(board.soc)  # the board noticed the dead connection and is free again
    assert main(args) == 0
    r = res_file.read_results(res)
    assert len(r.batches) == 20 and [b["batch"] for b in r.batches] == list(range(20))
    assert r.batches[: len(kept.batches)] == kept.batches
    after = open_dataset(res).isel(shot=slice(0, before.sizes["shot"]))
    for name in ("iq", "board_outcome", "rule_outcome", "logical_error"):  # every batch committed before the kill
        assert (after[name].values == before[name].values).all(), name
    assert len(r.header["resumed_utc"]) == 1 and r.header["summary"]["attempts"] == 20_000
    assert f"{20000}/{20000} shots" in capsys.readouterr().out


def test_board_killed_mid_run_keeps_every_batch_and_another_board_resumes(compiled, tmp_path, capsys):
    import threading

    _, out = compiled
    res = tmp_path / "board_killed.h5"
    first = serve(DEFAULT_DEVICE, port=0, noise=NOISE, seed=21)

    finished = threading.Event()

    def kill_board_after_two_batches():
        while not finished.is_set():
            if batches_in(res) >= 2:
                break
            time.sleep(0.01)
        first.close()

    killer = threading.Thread(target=kill_board_after_two_batches)
    killer.start()
    args = ["--program", str(out), "--shots", "20000", "--out", str(res)]
    code = main(["run", "--board", f"127.0.0.1:{first.port}", *args])
    finished.set()
    killer.join()
    err = capsys.readouterr().err
    assert code == 2 and "connection lost" in err and "rerun to resume" in err
    kept = res_file.read_results(res)
    assert 2 <= len(kept.batches) < 20 and kept.header["finished_utc"] is None
    before = open_dataset(res)
    second = serve(DEFAULT_DEVICE, port=0, noise=NOISE, seed=22)
    try:
        assert main(["run", "--board", f"127.0.0.1:{second.port}", *args]) == 0
    finally:
        second.close()
    r = res_file.read_results(res)
    assert len(r.batches) == 20 and r.batches[: len(kept.batches)] == kept.batches
    after = open_dataset(res)
    assert (after["iq"].values[: before.sizes["shot"]] == before["iq"].values).all()
    assert json.loads(after.attrs["seeds"]) == [21, 22]


def test_second_client_on_a_busy_board_is_refused(compiled, board, tmp_path, capsys):
    import Pyro4

    _, out = compiled
    ns = Pyro4.locateNS(host="127.0.0.1", port=board.port, hmac_key=board.key)
    holder = Pyro4.Proxy(ns.lookup("myqick"))
    holder._pyroHmacKey = board.key
    holder.start_src("internal")  # a run in progress: the board belongs to this connection
    try:
        res = tmp_path / "busy.h5"
        code = main(["run", "--board", _addr(board), "--program", str(out), "--shots", "10", "--out", str(res)])
        err = capsys.readouterr().err
        assert code == 2
        assert "busy" in err and "holds it since" in err and len(err.strip().splitlines()) == 1
        assert not res.exists()
    finally:
        holder._pyroRelease()
    _wait_free(board.soc)


def test_other_firmware_is_refused_before_anything_is_loaded(device, compiled, tmp_path, capsys):
    _, out = compiled
    cfg = device.firmware_config("zcu216")
    cfg["readouts"][3]["f_dds"] = 76.8  # another PFB build
    soc = EmulatedSoc(cfg, StimEngine(device, "zcu216", NOISE), "zcu216")
    server = BoardServer(soc, port=0)
    try:
        res = tmp_path / "fw.h5"
        code = main(["run", "--board", f"127.0.0.1:{server.port}", "--program", str(out), "--shots", "10",
                     "--out", str(res)])  # fmt: skip
        err = capsys.readouterr().err
    finally:
        server.close()
    assert code == 2
    assert "other firmware" in err and "readouts[3].f_dds" in err and "nothing was loaded" in err
    assert soc._state.binprog is None and not soc._state.envelopes and soc.last_client == ""
    assert not res.exists()


def test_firmware_comparison_ignores_the_library_version_only(device):
    cfg = device.firmware_config("zcu216")
    other = copy.deepcopy(cfg)
    other["sw_version"] = "0.2.999"
    assert firmware_mismatch(other, cfg) == ""
    other["tprocs"][0]["pmem_size"] = 1024
    assert "tprocs[0].pmem_size" in firmware_mismatch(other, cfg)


def test_board_refuses_a_program_it_cannot_identify(device, compiled):
    from ctrl.backends.qick import load_program

    _, out = compiled
    dump = (out / "qick_zcu216.json").read_text()
    fw = (out / "firmware_zcu216.json").read_text()
    prog = load_program(dump, fw)
    soc = EmulatedSoc(device.firmware_config("zcu216"), StimEngine(device, "zcu216", NOISE), "zcu216")
    binprog = {k: (None if v is None else np.array(v, dtype=np.int64)) for k, v in prog.binprog.items()}
    soc.load_bin_program(binprog)  # in-process: ctrl's own program is identified
    pmem = binprog["pmem"].copy()
    binprog["pmem"][5, 0] ^= 1
    with pytest.raises(RuntimeError, match="runs only programs ctrl compiles.* carries the stamp of its d=3 asap "
                                           "program but its program or waveform memory differs"):
        soc.load_bin_program(binprog)
    # another stamp (the first number's lowest bit), or none (the stamp's three words cut off)
    binprog["pmem"] = pmem.copy()
    binprog["pmem"][-3, 1] ^= 1
    with pytest.raises(RuntimeError, match="runs only programs ctrl compiles.* carries a stamp that matches none of "
                                           "d=3 asap"):
        soc.load_bin_program(binprog)
    binprog["pmem"] = pmem[:-3]
    with pytest.raises(RuntimeError, match="runs only programs ctrl compiles.* carries no ctrl stamp"):
        soc.load_bin_program(binprog)


def test_the_board_finds_the_program_by_its_stamp_compiling_no_more_than_it_needs(device, compiled):
    import dataclasses

    from ctrl.backends.qick import load_program
    from ctrl.backends.qick.stream import program_stamp

    c, out = compiled
    prog = load_program((out / "qick_zcu216.json").read_text(), (out / "firmware_zcu216.json").read_text())
    engine = StimEngine(device, "zcu216", NOISE)
    soc = EmulatedSoc(device.firmware_config("zcu216"), engine, "zcu216")
    soc.load_bin_program({k: (None if v is None else np.array(v, dtype=np.int64)) for k, v in prog.binprog.items()})
    # the default compile is the first variant: its stamp matched, no other program was compiled
    assert list(engine._programs) == [(3, "asap", None)]
    assert engine._current.program.to_json() == c.program.to_json()
    # the stamp names board, attempt slots and schedule; not the calibration hash or the CZ corrections,
    # which a pulse-only patch changes in a program whose machine code keeps its shape
    attempts = engine._current.attempts
    stamp = program_stamp(c.program, "zcu216", attempts)
    assert program_stamp(c.program, "zcu216", attempts + 1) != stamp
    assert program_stamp(c.program, "other", attempts) != stamp
    later = dataclasses.replace(c.program, ops=c.program.ops[1:])
    assert program_stamp(later, "zcu216", attempts) != stamp
    recalibrated = dataclasses.replace(c.program, calibration_hash="sha256:" + "1" * 64)
    assert program_stamp(recalibrated, "zcu216", attempts) == stamp


def test_board_identifies_a_program_with_echo_pulses(device, tmp_path):
    from ctrl.backends.qick import load_program

    c = compile_program(device, 3, dd="xx")
    write_outputs(c, tmp_path, device)
    prog = load_program((tmp_path / "qick_zcu216.json").read_text(), (tmp_path / "firmware_zcu216.json").read_text())
    engine = StimEngine(device, "zcu216", NOISE)
    soc = EmulatedSoc(device.firmware_config("zcu216"), engine, "zcu216")
    soc.load_bin_program({k: (None if v is None else np.array(v, dtype=np.int64)) for k, v in prog.binprog.items()})
    ident = engine._current
    assert (ident.distance, ident.policy, ident.dd) == (3, "asap", "xx")
    assert ident.program == c.program


def test_serving_beyond_loopback_needs_allow_remote(device):
    soc = EmulatedSoc(device.firmware_config("zcu216"), None, "zcu216")
    with pytest.raises(CtrlError, match="--allow-remote"):
        BoardServer(soc, host="0.0.0.0", port=0)


def test_a_board_without_ground_truth_reports_acceptance_only(device, compiled, tmp_path, capsys):
    class RealLike(EmulatedSoc):
        def ctrl_truth(self):  # a QickSoc has no such method: Pyro raises AttributeError for it
            raise AttributeError("no exposed method ctrl_truth")

        def ctrl_stream(self):
            raise AttributeError("no exposed method ctrl_stream")

    _, out = compiled
    soc = RealLike(device.firmware_config("zcu216"), StimEngine(device, "zcu216", NOISE), "zcu216")
    server = BoardServer(soc, port=0)
    try:
        res = tmp_path / "real.h5"
        assert main(["run", "--board", f"127.0.0.1:{server.port}", "--program", str(out), "--shots", "1000",
                     "--out", str(res)]) == 0  # fmt: skip
    finally:
        server.close()
    text = capsys.readouterr().out
    assert "logical error per accepted: not measured" in text
    r = res_file.read_results(res)
    assert "logical_error_rate" not in r.header["summary"] and "truth" not in r.batches[0]
    assert "stream" not in r.batches[0]  # a real board has no stream to record; the run does without
    ds = open_dataset(res)
    assert "proxy" not in ds and "logical_error" not in ds and list(ds["batch_stream_seed"].values) == [-1]
    assert r.header["summary"]["decision_mismatches"] == 0
