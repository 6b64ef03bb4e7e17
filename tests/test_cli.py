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
    from ctrl import cli
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


def test_weighted_counts_say_so(capsys):
    assert main(["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "100", "--method", "statevector"]) == 0
    out = capsys.readouterr().out
    assert "accepted, weighted)" in out
    assert main(["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "100"]) == 0
    assert "weighted" not in capsys.readouterr().out  # the proxy method counts shots
