"""Atomic outputs (`ctrl.files`): whole files or none, the same bytes whatever the locale."""

import pytest

from ctrl.files import atomic_file, write_atomic


def test_write_atomic_makes_missing_folders_and_writes_utf8(tmp_path):
    path = tmp_path / "a" / "b" / "report.json"
    write_atomic(path, "T2 = 12 µs\n")
    assert path.read_bytes() == "T2 = 12 µs\n".encode("utf-8")
    write_atomic(path, b"replaced")
    assert path.read_bytes() == b"replaced"
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json"]  # no temporary file left


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "entry.pickle"
    write_atomic(path, b"yesterday")
    with pytest.raises(RuntimeError):
        with atomic_file(path) as f:
            f.write(b"half of tod")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == b"yesterday"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.pickle"]
    with pytest.raises(UnicodeEncodeError):
        write_atomic(tmp_path / "new" / "x.json", "\ud800")  # text that has no UTF-8 bytes
    assert not (tmp_path / "new" / "x.json").exists() and list((tmp_path / "new").iterdir()) == []


@pytest.fixture
def umask_022():
    import os

    old = os.umask(0o022)
    yield
    os.umask(old)


def test_outputs_follow_the_umask_and_secrets_stay_private(tmp_path, umask_022):
    import os
    import stat

    from ctrl.files import ensure_secret, outputs

    def mode(p):
        return stat.S_IMODE(os.stat(p).st_mode)

    write_atomic(tmp_path / "report.json", "{}")
    assert mode(tmp_path / "report.json") == 0o644  # not mkstemp's 0600
    with outputs():
        write_atomic(tmp_path / "out" / "program.json", "{}")
    assert mode(tmp_path / "out" / "program.json") == 0o644
    with atomic_file(tmp_path / "entry.pickle", private=True) as f:
        f.write(b"x")
    assert mode(tmp_path / "entry.pickle") == 0o600
    os.umask(0o077)
    write_atomic(tmp_path / "strict.json", "{}")
    assert mode(tmp_path / "strict.json") == 0o600  # a stricter umask is kept too
    os.umask(0o022)
    ensure_secret(tmp_path / "keys" / "board.key", "board key")
    assert mode(tmp_path / "keys" / "board.key") == 0o600


def test_compile_cache_entries_stay_private(tmp_path, umask_022):
    import os
    import stat

    from ctrl.cli import main

    assert main(["compile", "--device", "device_configs/planar16_d3.yaml", "-d", "3", "--out", str(tmp_path / "out"),
                 "--cache", str(tmp_path / "cache")]) == 0  # fmt: skip
    entries = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert entries and all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in entries)
    assert stat.S_IMODE(os.stat(tmp_path / "out" / "report.json").st_mode) == 0o644


def test_stale_qick_files_of_an_earlier_compile_are_removed_and_said(tmp_path, capsys):
    from ctrl.cli import main

    out = tmp_path / "out"
    out.mkdir()
    earlier = ["qick_zcu216_7.asm", "qick_zcu216_7.json", "firmware_zcu216_7.json"]
    kept = ["notes.txt", "qick_zcu216_7.txt", "my_qick_a.asm", "firmware.json"]  # not ctrl's output names
    for name in earlier + kept:
        (out / name).write_text("earlier\n")
    (out / "qick_dir.json").mkdir()  # a folder is never removed, whatever its name
    args = ["compile", "--device", "device_configs/planar16_d3.yaml", "-d", "3", "--out", str(out),
            "--cache", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "removed 3 stale QICK file(s)" in said and "qick_zcu216_7.asm" in said
    names = {p.name for p in out.iterdir()}
    assert not names & set(earlier)
    assert set(kept) | {"qick_dir.json", "qick_zcu216.asm", "qick_zcu216.json", "firmware_zcu216.json"} <= names
    assert main(args) == 0
    assert "removed" not in capsys.readouterr().out  # nothing left to remove: nothing said


def test_a_failed_command_removes_no_stale_file(tmp_path):
    from ctrl.files import outputs
    from ctrl.outputs.folder import remove_stale

    (tmp_path / "qick_b.asm").write_text("earlier\n")
    with pytest.raises(RuntimeError):
        with outputs():
            assert remove_stale(tmp_path, {"qick_a.asm"}) == [tmp_path / "qick_b.asm"]
            raise RuntimeError("bad input found late")
    assert (tmp_path / "qick_b.asm").read_text() == "earlier\n"
