"""Hostile and clumsy input, as issue 18 found it: every outcome is exit 0 or one line and exit 2, never a
traceback, a hang, a half-written output, or exit 0 with a different program."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ctrl.cli import main
from ctrl.device import DEFAULT_DEVICE

DEVICE = str(DEFAULT_DEVICE)
OUTPUTS = ("program.json", "program.stim", "qick_zcu216.json", "qick_zcu216.asm")


def _one_line_or_ok(code: int, err: str) -> None:
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    if code == 2:  # said, in lines that each name what is wrong ("ctrl: error: ..." or validate's FILE:LINE: ...)
        lines = [x for x in err.strip().splitlines() if not x.startswith("ctrl: warning")]
        assert lines and all(x.startswith("ctrl: error: ") or ": " in x for x in lines), err


# ------------------------------------------------------------------------------------------- inputs


def test_an_alias_bomb_is_refused_before_it_is_built(tmp_path, capsys):
    """Nine lines whose aliases expand to 3.9e9 values: refused by counting over the parsed nodes (had it
    been built, this test would not end), at the node where the count passes the limit."""
    rows = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    rows += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(rows) + "\n")
    code = main(["compile", "--device", str(bomb), "-d", "3", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "expands to over" in err and not (tmp_path / "o").exists()
    assert f"{bomb}:7:" in err  # a6 (line 7) holds 9^7 = 4.8e6 values: the first node past 1e6


def test_a_huge_device_file_is_refused_before_it_is_parsed(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    with big.open("w") as f:
        f.write("name: big\n# " + "x" * (17 * 2**20) + "\n")
    assert main(["compile", "--device", str(big), "-d", "3", "--out", str(tmp_path / "o")]) == 2
    assert "at most 16 MiB" in capsys.readouterr().err


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder"])
def test_a_firmware_path_that_is_not_a_regular_file_is_refused(tmp_path, capsys, special):
    folder = tmp_path / "dev"
    shutil.copytree(DEFAULT_DEVICE.parent, folder)
    target = {"/dev/zero": "/dev/zero", "fifo": str(tmp_path / "fw.fifo"), "folder": str(tmp_path)}[special]
    if special == "fifo":
        os.mkfifo(target)
    text = (folder / DEFAULT_DEVICE.name).read_text()
    fw = "firmware/zcu216_tprocv2_rev21_mux_pfb_fw20240928.json"
    assert fw in text
    (folder / DEFAULT_DEVICE.name).write_text(text.replace(fw, target))
    code = main(["compile", "--device", str(folder / DEFAULT_DEVICE.name), "-d", "3", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and not (tmp_path / "o").exists()
    assert "wiring.boards[0].firmware" in err and ("regular file" in err or "Is a directory" in err), err


# ------------------------------------------------------------------------------------------ outputs


def test_a_file_where_the_output_folder_goes_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("mine\n")
    for out in ("afile", "afile/sub"):
        code = main(["compile", "--device", DEVICE, "-d", "3", "--out", str(tmp_path / out)])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and "not a folder" in err
    assert (tmp_path / "afile").read_text() == "mine\n"


def test_a_full_disk_midway_leaves_no_output(tmp_path, capsys, monkeypatch):
    """The third file cannot be written: the first two must not appear either, and the folder's previous
    contents stay as they were."""
    from ctrl import files

    out = tmp_path / "o"
    out.mkdir()
    (out / "program.json").write_text("yesterday's\n")
    real, calls = files.temporary, []

    def full_disk(path, mode):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, mode)

    monkeypatch.setattr(files, "temporary", full_disk)
    code = main(["compile", "--device", DEVICE, "-d", "3", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert len(calls) == 3
    assert sorted(p.name for p in out.iterdir()) == ["program.json"]
    assert (out / "program.json").read_text() == "yesterday's\n"


# ------------------------------------------------------------------------------------ CLI arguments

_NASTY = st.sampled_from(["", "-1", "0", "1", "3", "4", "15", "17", "101", "1e12", "2.5", "nan", "inf",
                          "999999999999", "x", "uniform:0.001", "uniform:2", "calibration*-1", "calibration",
                          "/dev/zero", "/dev/null", "/", "no/such/file", "é", "--", "-d"])  # fmt: skip
_COMMANDS = {
    "protocol": ["--distance", "--noise", "--out"],
    "simulate": ["--distance", "--noise", "--shots", "--method", "--seed"],
    "compile": ["--device", "--distance", "--out", "--policy", "--dd"],
    "emulate": ["--device", "--distance", "--shots", "--noise", "--seed"],
    "dry-run": ["--device", "--distance", "--shots", "--noise", "--seed", "--out"],
    "validate": [],
    "diff-device": [],
    "plot": ["--out", "--window-us"],
    "recompile": ["--from", "--device", "--out", "--margin", "--emulate-shots"],
    "run": ["--board", "--program", "--shots", "--out", "--timeout-s"],
}


@st.composite
def _argv(draw, tmp: Path):
    cmd = draw(st.sampled_from(sorted(_COMMANDS)))
    argv = [cmd]
    for opt in draw(st.lists(st.sampled_from(_COMMANDS[cmd] or ["--x"]), max_size=5, unique=True)):
        value = draw(st.one_of(_NASTY, st.sampled_from([DEVICE, str(tmp / "out"), str(tmp / "file")])))
        if opt in ("--out", "--from") and value in ("/", "/dev/null", "/dev/zero"):
            value = str(tmp / "out")  # never write into the real file system
        argv += [opt, value]
    argv += draw(st.lists(_NASTY, max_size=2))
    if cmd in ("simulate", "emulate", "dry-run", "run"):
        argv += ["--shots", draw(st.sampled_from(["10", "0", "-5"]))]  # the last --shots wins: keep runs short
    if cmd == "run":
        argv += ["--timeout-s", "2"]
    return argv


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_argument_list_gives_a_traceback(tmp_path, data, capsys, monkeypatch):
    # a drawn value is also a relative path ("-1", "x", "no/such/file"): whatever a command makes of it
    # lands here, not in the folder pytest runs from (it once wrote a dry run into the repository's "-1/")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("not yaml: [\n")
    argv = data.draw(_argv(tmp_path))
    # "sweep" and "serve-board" are left out: with valid arguments they run for minutes or until stopped
    code = main([a for a in argv if a not in ("sweep", "serve-board")])
    event(f"{argv[0]} exit {code}")
    _one_line_or_ok(code, capsys.readouterr().err)


# ---------------------------------------------------------------------------------- compile folders


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """A folder from `ctrl compile`, its cache, and what a recompile from it writes when nothing changed."""
    root = tmp_path_factory.mktemp("fold")
    folder, cache = root / "c", root / "cache"
    assert main(["compile", "--device", DEVICE, "-d", "3", "--out", str(folder), "--cache", str(cache)]) == 0
    ref = root / "ref"
    assert main(["recompile", "--from", str(folder), "--device", DEVICE, "--out", str(ref),
                 "--cache", str(cache)]) == 0  # fmt: skip
    return folder, cache, {name: (ref / name).read_bytes() for name in OUTPUTS}


_DAMAGE = st.sampled_from(["flip", "truncate", "delete", "folder", "junk"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=_DAMAGE, target=st.integers(0, 10**6), where=st.floats(0, 1))
def test_a_damaged_compile_folder_or_cache_never_gives_another_program(compiled, tmp_path_factory, damage,
                                                                        target, where, capsys):  # fmt: skip
    folder0, cache0, want = compiled
    work = tmp_path_factory.mktemp("dmg")
    folder, cache = work / "c", work / "cache"
    shutil.copytree(folder0, folder)
    shutil.copytree(cache0, cache)
    files = sorted([p for p in folder.iterdir() if p.is_file()] + list((cache / "compiled").rglob("*.pickle")))
    victim = files[target % len(files)]
    data = victim.read_bytes()
    i = min(int(where * len(data)), len(data) - 1)
    if damage == "flip":
        victim.write_bytes(data[:i] + bytes([data[i] ^ (1 + target % 255)]) + data[i + 1:])
    elif damage == "truncate":
        victim.write_bytes(data[:i])
    elif damage == "delete":
        victim.unlink()
    elif damage == "folder":
        victim.unlink()
        victim.mkdir()
    else:
        victim.write_bytes(data[:i] + b"\x00\xff{[\"junk" + data[i:])
    out = work / "re"
    code = main(["recompile", "--from", str(folder), "--device", DEVICE, "--out", str(out), "--cache", str(cache)])
    event(f"{victim.suffix} {damage} exit {code}")
    _one_line_or_ok(code, capsys.readouterr().err)
    if code == 0:
        for name, content in want.items():
            assert (out / name).read_bytes() == content, (victim.name, damage, name)
    else:
        assert not out.exists()


# ------------------------------------------------------------------------------- undefined figures


def _strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_nothing_accepted_gives_null_not_zero_or_infinity(capsys):
    """At p = 0.5 no attempt passes: the logical error per accepted state and the time per accepted state
    are undefined (null in JSON, said in words when printed), never 0 or Infinity."""
    assert main(["emulate", "--device", DEVICE, "-d", "3", "--shots", "40", "--noise", "uniform:0.5", "--json"]) == 0
    r = _strict_json(capsys.readouterr().out)
    assert r["accepted"] == 0
    assert r["logical_error_rate"] is None and r["logical_error_rate_ci95"] is None
    assert r["expected_attempts_per_accepted_state"] is None and r["time_per_accepted_state_s"] is None
    assert main(["emulate", "--device", DEVICE, "-d", "3", "--shots", "40", "--noise", "uniform:0.5"]) == 0
    assert "undefined (nothing accepted)" in capsys.readouterr().out
    assert main(["simulate", "-d", "3", "--shots", "40", "--noise", "uniform:0.5", "--json"]) == 0
    r = _strict_json(capsys.readouterr().out)
    assert r["accepted"] == 0 and r["logical_error_rate"] is None
    assert all(c["logical_error_rate"] is None for c in r["components"].values())
