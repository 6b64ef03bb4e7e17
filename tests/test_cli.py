import json

import pytest

from ctrl.cli import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["simulate", "-d", "4", "--noise", "uniform:0.001", "--shots", "10"], "odd integer"),
        (["simulate", "-d", "1", "--noise", "uniform:0.001", "--shots", "10"], "odd integer"),
        (["simulate", "-d", "3", "--noise", "uniform:0.7", "--shots", "10"], "[0, 0.5]"),
        (["simulate", "-d", "3", "--noise", "uniform:-1e-3", "--shots", "10"], "[0, 0.5]"),
        (["simulate", "-d", "3", "--noise", "depolarize:0.001", "--shots", "10"], "unknown noise model"),
        (["simulate", "-d", "3", "--noise", "uniform:abc", "--shots", "10"], "must be a number"),
        (["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "0"], "from 1 to 1000000000"),
        (["protocol", "-d", "2", "--out", "x"], "odd integer"),
        (["simulate", "-d", "three", "--noise", "uniform:0.001", "--shots", "10"], "must be an integer"),
        (["simulate", "-d", "101", "--noise", "uniform:0.001", "--shots", "10"], "from 3 to 15"),
        (["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "1000000000000"], "from 1 to 1000000000"),
        (["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "2000000", "--method", "statevector"],
         "at most 1000000"),
        (["dry-run", "--noise", "uniform:2", "--out", "OUT"], "[0, 0.5]"),
        (["emulate", "--device", "device_configs/planar16_d3.yaml", "-d", "3", "--shots", "10", "--noise",
          "calibration*-1"], "SCALE >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    assert not (tmp_path / "out").exists()  # bad input is refused before anything is written
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err
    assert "Traceback" not in err


def test_protocol_writes_ir_and_stim(tmp_path):
    assert main(["protocol", "-d", "3", "--noise", "uniform:0.001", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "protocol.json").read_text())
    assert doc["distance"] == 3 and len(doc["qubits"]) == 16
    kinds = {c["kind"] for c in doc["checks"]}
    assert kinds == {"logical-H", "cat-parity", "syndrome", "flag"}
    text = (tmp_path / "protocol.stim").read_text()
    assert "DEPOLARIZE2(0.001)" in text and "OBSERVABLE_INCLUDE(0)" in text
    again = tmp_path / "again"
    main(["protocol", "-d", "3", "--noise", "uniform:0.001", "--out", str(again)])
    assert (again / "protocol.json").read_bytes() == (tmp_path / "protocol.json").read_bytes()
    assert (again / "protocol.stim").read_bytes() == (tmp_path / "protocol.stim").read_bytes()


def test_simulate_json(capsys):
    assert main(["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "2000", "--json", "--seed", "3"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("shots", "accepted", "acceptance", "logical_errors", "logical_error_rate", "method", "versions"):
        assert key in r
    assert r["shots"] == 2000 and 0 < r["accepted"] <= 2000
    assert r["acceptance_ci95"][0] <= r["acceptance"] <= r["acceptance_ci95"][1]
    assert sum(r["discards"].values()) == r["shots"] - r["accepted"]


def test_the_help_states_the_bounds_the_parser_enforces():
    from ctrl.cli import parser as cli
    from ctrl.codes.color import MAX_DISTANCE

    assert cli._DISTANCE_HELP.endswith(f"3 to {MAX_DISTANCE}")
    assert cli._SHOTS_HELP.endswith(f"{cli.MAX_SHOTS:,}")


def _options(parser):
    """(command, action) for every option and positional of the parser and each subcommand's."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for a in sub._actions:
                    if not isinstance(a, argparse._HelpAction):
                        yield name, a
        elif not isinstance(action, argparse._HelpAction):
            yield "ctrl", action


def test_every_option_of_every_command_has_help_and_shows_its_default():
    from ctrl.cli import build_parser

    parser = build_parser()
    seen = 0
    for command, action in _options(parser):
        assert action.help and action.help.strip(), f"ctrl {command} {action.option_strings or action.dest}: no help"
        seen += 1
    assert seen > 60  # every command was walked, not only the top level
    sub = next(a for a in parser._actions if a.choices and "emulate" in a.choices)
    for command, option, default in (("emulate", "--seed", "0"), ("simulate", "--method", "proxy"),
                                     ("compile", "--policy", "asap"), ("sweep", "--max-errors", "1000"),
                                     ("emulate", "--noise", "calibration")):  # fmt: skip
        text = " ".join(sub.choices[command].format_help().split())
        entry = text[text.index("options:"):]  # past the usage line
        entry = entry[entry.index(" " + option + " "):].split(" --", 2)[1]  # this option's entry only
        assert f"(default: {default})" in entry or f"(default {default})" in entry, (command, option, entry)


def test_top_level_help_shows_the_workflow(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "ctrl dry-run" in out and "ctrl COMMAND --help" in out


def _devices(tmp_path):
    """The shipped default device and a copy with one T1 halved (its firmware folder linked beside it)."""
    from pathlib import Path

    configs = Path(__file__).resolve().parents[1] / "device_configs"
    text = (configs / "planar16_d3.yaml").read_text()
    i = text.index("t1_s: ") + len("t1_s: ")
    j = text.index("\n", i)
    changed = tmp_path / "new.yaml"
    changed.write_text(text[:i] + repr(float(text[i:j]) * 0.5) + text[j:])
    (tmp_path / "firmware").symlink_to(configs / "firmware")
    return configs / "planar16_d3.yaml", changed


def test_diff_device_exits_like_diff_and_shows_units(tmp_path, capsys):
    old, new = _devices(tmp_path)
    assert main(["diff-device", str(old), str(old)]) == 0
    assert main(["diff-device", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "1 change(s)" in out and " us -> " in out and "e-0" not in out
    assert main(["diff-device", str(old), str(tmp_path / "missing.yaml")]) == 2


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`ctrl diff-device A B | head -1`: the reader is gone before ctrl writes (a pipe whose read end is
    closed first, so the write fails every time, not only when the output outgrows the pipe)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    old, new = _devices(tmp_path)
    read, write = os.pipe()
    os.close(read)
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    try:
        p = subprocess.run([sys.executable, "-c", "import sys; from ctrl.cli import main; sys.exit(main())",
                            "diff-device", str(old), str(new)], stdout=write, stderr=subprocess.PIPE, env=env,
                           cwd=root, timeout=600)  # fmt: skip
    finally:
        os.close(write)
    assert p.stderr.decode() == ""  # no traceback, no "Exception ignored ... BrokenPipeError"
    assert p.returncode == 141


def test_a_closed_pipe_does_not_cost_the_outputs(tmp_path):
    """`ctrl protocol ... | head -0`: the reader is gone before the first line, the files are written anyway."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    read, write = os.pipe()
    os.close(read)
    root = Path(__file__).resolve().parents[1]
    try:
        p = subprocess.run([sys.executable, "-c", "import sys; from ctrl.cli import main; sys.exit(main())",
                            "protocol", "-d", "3", "--out", str(tmp_path / "out")], stdout=write,
                           stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(root)), cwd=root,
                           timeout=600)  # fmt: skip
    finally:
        os.close(write)
    assert p.stderr.decode() == "" and p.returncode == 141
    assert sorted(f.name for f in (tmp_path / "out").iterdir()) == ["protocol.json", "protocol.stim"]


def test_weighted_counts_say_so(capsys):
    assert main(["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "100", "--method", "statevector"]) == 0
    out = capsys.readouterr().out
    assert "accepted, weighted)" in out
    assert main(["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "100"]) == 0
    assert "weighted" not in capsys.readouterr().out  # the proxy method counts shots


# --- emulate --program: a compiled folder, emulated without compiling again


def _compiled_folder(tmp_path, device, name="compiled"):
    out = tmp_path / name
    assert main(["compile", "--device", str(device), "-d", "3", "--out", str(out)]) == 0
    return out


def test_emulate_program_folder_gives_the_same_json_as_compiling(tmp_path, capsys):
    shipped, _ = _devices(tmp_path)
    folder = _compiled_folder(tmp_path, shipped)
    capsys.readouterr()
    common = ["--shots", "3000", "--seed", "5", "--json"]
    assert main(["emulate", "--device", str(shipped), "-d", "3", *common]) == 0
    compiled_now = capsys.readouterr()
    assert main(["emulate", "--program", str(folder), *common]) == 0  # the shipped device of its name
    from_folder = capsys.readouterr()
    assert main(["emulate", "--program", str(folder), "--device", str(shipped), "-d", "3", *common]) == 0
    named = capsys.readouterr()
    assert json.loads(compiled_now.out)["shots"] == 3000
    assert from_folder.out == compiled_now.out == named.out  # byte for byte
    # progress goes to stderr, and only on a terminal: under capture, stderr stays empty
    assert compiled_now.err == from_folder.err == named.err == ""


def test_emulate_refuses_a_program_of_another_calibration_naming_both_hashes(tmp_path, capsys):
    from ctrl.device import load_device

    shipped, changed = _devices(tmp_path)
    folder = _compiled_folder(tmp_path, changed)  # same device name, one T1 halved
    capsys.readouterr()
    assert main(["emulate", "--program", str(folder), "--shots", "10"]) == 2
    err = capsys.readouterr().err.strip()
    old, new = load_device(shipped).calibration_hash, load_device(changed).calibration_hash
    assert old != new
    assert len(err.splitlines()) == 1 and old in err and new in err and "--device" in err
    assert main(["emulate", "--program", str(folder), "--device", str(changed), "--shots", "10"]) == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-d", "5"], "--distance 5: the program in"),
        (["--dd", "xy4"], "--dd xy4: the program in"),
        (["-d", "3", "--dd", "xx"], "--dd xx: the program in"),
    ],
)
def test_emulate_program_refuses_options_that_contradict_the_folder(extra, message, tmp_path, capsys):
    shipped, _ = _devices(tmp_path)
    folder = _compiled_folder(tmp_path, shipped)
    capsys.readouterr()
    assert main(["emulate", "--program", str(folder), "--shots", "10", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert "is d=3" in err if "-d" in extra and "--dd" not in extra else "compiled already" in err


@pytest.mark.parametrize("argv", [["--shots", "10"], ["--device", "device_configs/planar16_d3.yaml", "--shots", "10"],
                                  ["-d", "3", "--shots", "10"]])  # fmt: skip
def test_emulate_needs_device_and_distance_or_a_program(argv, capsys):
    assert main(["emulate", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--program DIR" in err


def test_emulate_help_shows_program_and_defaults(capsys):
    assert main(["emulate", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--program DIR" in out and "(default: calibration)" in out


# --- progress: tqdm on stderr, drawn only on a terminal


class _Terminal:
    """A stream that says it is a terminal, keeping what is written."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


class _File(_Terminal):
    def isatty(self) -> bool:
        return False


def test_progress_bar_is_drawn_on_a_terminal_only():
    from ctrl.cli.progress import _bar, _stage

    tty, file = _Terminal(), _File()
    for stream in (tty, file):
        with _bar(20, "emulate X", unit="shot", file=stream) as b:
            b.update(10)
            b.stage("emulate Z")
            b.update(10)
        with _stage("plot", file=stream):
            pass
    # tqdm redraws at most every 0.1 s, so which counts are drawn depends on time; the stages are always drawn
    assert "emulate X:" in tty.text and "emulate Z:" in tty.text and "/20" in tty.text and "plot:" in tty.text
    assert file.text == ""


def test_progress_stages_follow_the_callbacks():
    from ctrl.cli.progress import _Stages

    tty = _Terminal()
    with _Stages(unit="chunk", file=tty) as stages:
        for n in range(4):
            stages("single faults", n, 3)
        for n in range(3):
            stages("fault configurations", n, 2)
    assert "single faults:" in tty.text and "/3 [" in tty.text
    assert "fault configurations:" in tty.text and "/2 [" in tty.text


def test_emulate_reports_every_chunk_of_both_proxies():
    from ctrl.compile.pipeline import compile_program
    from ctrl.device import DEFAULT_DEVICE, load_device
    from ctrl.collect.run import CHUNK_SHOTS
    from ctrl.emulate import run

    device = load_device(DEFAULT_DEVICE)
    program = compile_program(device, 3).program
    heard = []
    shots = CHUNK_SHOTS + 7  # two chunks per proxy
    with_bar = run.emulate(device, program, shots, seed=2, progress=lambda task, s: heard.append((task, s.shots)))
    assert sorted(heard) == [(0, 7), (0, CHUNK_SHOTS), (1, 7), (1, CHUNK_SHOTS)]  # task 0 is proxy X
    assert with_bar == run.emulate(device, program, shots, seed=2)  # hearing changes nothing


def test_statevector_map_tells_each_finished_task():
    from ctrl.sim.statevector import workers

    heard = []
    done = workers._counter(lambda *a: heard.append(a), "fault configurations", 3)
    assert workers._map(abs, [-1, -2, -3], 1, done) == [1, 2, 3]
    assert heard == [("fault configurations", k, 3) for k in range(4)]
    assert workers._counter(None, "x", 3) is None and workers._map(abs, [-4], 1) == [4]


# --- run / serve-board --proxy-name: qick's proxy name is configurable


@pytest.mark.filterwarnings("ignore:isSet:DeprecationWarning")  # inside Pyro4's request loop
def test_run_finds_a_board_served_under_another_proxy_name(tmp_path, capsys):
    pytest.importorskip("Pyro4")
    pytest.importorskip("qick")
    from ctrl.cli import parser as cli
    from ctrl.device import DEFAULT_DEVICE
    from ctrl.lab.board import PROXY_NAME, serve

    assert cli.PROXY_NAME == PROXY_NAME == "myqick"  # the CLI's default is qick's, written out to start fast
    folder = _compiled_folder(tmp_path, DEFAULT_DEVICE)
    server = serve(DEFAULT_DEVICE, port=0, noise="calibration*0.2", seed=4, proxy_name="lab-rfsoc-2")
    try:
        board = f"127.0.0.1:{server.port}"
        capsys.readouterr()
        res = tmp_path / "default.h5"
        assert main(["run", "--board", board, "--program", str(folder), "--shots", "10", "--out", str(res)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "no proxy named 'myqick'" in err and "'lab-rfsoc-2'" in err and "--proxy-name" in err
        assert not res.exists() and server.soc.runs == 0
        res = tmp_path / "named.h5"
        assert main(["run", "--board", board, "--program", str(folder), "--shots", "10", "--out", str(res),
                     "--proxy-name", "lab-rfsoc-2"]) == 0  # fmt: skip
        assert server.soc.runs >= 1
    finally:
        server.close()
    from ctrl.lab import results as res_file

    header = res_file.read_results(res).header
    assert header["summary"]["attempts"] >= 10
    assert "/lab-rfsoc-2" in json.dumps(header)  # the board's address names the proxy


def test_proxy_name_options_show_the_default(capsys):
    for command in ("run", "serve-board"):
        assert main([command, "--help"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "--proxy-name PROXY_NAME" in out and "(default: myqick)" in out
    assert main(["run", "--board", "h:1", "--program", "p", "--shots", "1", "--out", "o", "--proxy-name", " x"]) == 2
    assert "proxy name" in capsys.readouterr().err
