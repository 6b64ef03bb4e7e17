"""The compile cache never turns a damaged or planted entry into an output: a file that fails its HMAC
is a miss (compiled again, with a warning), never unpickled; a folder others can write is not used."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from ctrl.cli import main
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.outputs.cache import MAGIC, CompileCache, compile_key


@pytest.fixture(scope="module")
def device():
    return load_device(DEFAULT_DEVICE)


@pytest.fixture(scope="module")
def warm(device, tmp_path_factory):
    """A cache holding the default device's d=3 compile, the entry's bytes, and the compile's program."""
    root = tmp_path_factory.mktemp("cache")
    cache = CompileCache(root)
    compiled, _ = cache.compile(device, 3)
    path = cache._path(compile_key(device, 3))
    return root, path, path.read_bytes(), compiled.program.to_json()


def test_every_flipped_byte_is_a_miss_never_another_program(device, warm, capsys):
    root, path, good, program = warm
    cache = CompileCache(root)
    key = compile_key(device, 3)
    assert cache.get(key).compiled.program.to_json() == program  # the intact entry is a hit
    # every byte of the header and HMAC, and 300 positions spread over the whole payload
    positions = sorted(set(range(len(MAGIC) + 32)) | set(range(len(MAGIC) + 32, len(good), len(good) // 300)))
    try:
        for i in positions:
            bad = bytearray(good)
            bad[i] ^= 0x5A
            path.write_bytes(bad)
            assert cache.get(key) is None, i
        path.write_bytes(good[: len(good) // 2])  # a torn write
        assert cache.get(key) is None
        err = capsys.readouterr().err
        assert err.count("ignored") == len(positions) + 1 and "HMAC does not match" in err
        # and a compile through the damaged cache gives the program, and heals the entry
        path.write_bytes(bytes(b ^ 0xFF if j == len(good) - 7 else b for j, b in enumerate(good)))
        compiled, hit = cache.compile(device, 3)
        assert hit is None and compiled.program.to_json() == program
        assert cache.get(key) is not None
    finally:
        path.write_bytes(good)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_pickle_is_never_unpickled(device, warm, tmp_path, capsys):
    root, path, good, program = warm
    marker = tmp_path / "ran"
    planted = pickle.dumps(_Payload(marker))
    try:
        for data in (planted, MAGIC + bytes(32) + planted, MAGIC + good[len(MAGIC):len(MAGIC) + 32] + planted):
            path.write_bytes(data)
            assert CompileCache(root).get(compile_key(device, 3)) is None
        assert not marker.exists()
        # the same pickle signed with the cache's key is unpickled: the refusals were the HMAC's doing
        import hashlib
        import hmac

        secret = (root / "key").read_bytes().strip()
        path.write_bytes(MAGIC + hmac.new(secret, planted, hashlib.sha256).digest() + planted)
        assert CompileCache(root).get(compile_key(device, 3)) is None and marker.exists()
    finally:
        path.write_bytes(good)
    capsys.readouterr()


def test_a_cache_others_can_write_is_not_used(device, tmp_path, capsys):
    root = tmp_path / "shared"
    root.mkdir()
    os.chmod(root, 0o777)
    compiled, hit = CompileCache(root).compile(device, 3)
    assert hit is None and not (root / "compiled").exists() and not (root / "key").exists()
    assert "not used" in capsys.readouterr().err
    os.chmod(root, 0o700)
    CompileCache(root).compile(device, 3)
    assert (root / "key").stat().st_mode & 0o777 == 0o600 and any((root / "compiled").rglob("*.pickle"))


def test_an_edited_compile_inputs_record_is_refused(tmp_path, capsys):
    cache = tmp_path / "cache"
    out = tmp_path / "c"
    assert main(["compile", "--device", str(DEFAULT_DEVICE), "-d", "3", "--out", str(out), "--cache", str(cache)]) == 0
    inputs = out / "compile_inputs.json"
    text = inputs.read_text()
    doc = json.loads(text)
    qubits = doc["placement"]["qubits"]
    edited = text.replace(json.dumps(qubits), json.dumps(qubits[1:] + qubits[:1]), 1)
    assert edited != text
    inputs.write_text(edited)
    capsys.readouterr()
    code = main(["recompile", "--from", str(out), "--device", str(DEFAULT_DEVICE), "--out", str(tmp_path / "re"),
                 "--cache", str(cache)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "inputs_sha256 does not match" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "re").exists()
