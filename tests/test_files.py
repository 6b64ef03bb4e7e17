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
