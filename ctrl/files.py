"""Atomic file output: every artifact ctrl writes goes through here, so no reader ever sees half a file."""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ctrl.errors import CtrlError


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write through a temporary file in the same folder and rename it into place."""
    path = Path(path)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_file(path: Path):
    """A binary file to write into (a stream: a large pickle need not be built in memory first); it replaces
    `path` when the block ends without an error, as write_atomic does."""
    path = Path(path)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _temporary(path: Path) -> tuple[int, str]:
    """A new file beside `path`, its folders made first if missing (asked only then: a folder's files are
    written one after another, and a mkdir per file is a system call and an exception each time)."""
    try:
        return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")


MIN_SECRET_BYTES = 16
MAX_SECRET_FILE_BYTES = 4096


def read_secret(path: Path, what: str, missing_hint: str = "") -> bytes:
    """The secret in `path`: a small regular file of its owner's, readable by nobody else (anyone who can
    read a key that authenticates pickles can run code in the process that trusts it)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise CtrlError(f"{path}: no {what}{'; ' + missing_hint if missing_hint else ''}") from None
    except OSError as e:
        raise CtrlError(f"{path}: cannot open the {what} ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise CtrlError(f"{path}: the {what} must be a regular file")
        if st.st_mode & 0o077:
            raise CtrlError(f"{path}: the {what} is readable or writable by others "
                            f"(mode {stat.S_IMODE(st.st_mode):o}); run `chmod 600 {path}`")  # fmt: skip
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise CtrlError(f"{path}: the {what} belongs to another user")
        data = f.read(MAX_SECRET_FILE_BYTES + 1)
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise CtrlError(f"{path}: a {what} file holds at most {MAX_SECRET_FILE_BYTES} bytes")
    key = data.strip()
    if len(key) < MIN_SECRET_BYTES:
        raise CtrlError(f"{path}: the {what} is {len(key)} bytes; at least {MIN_SECRET_BYTES} are needed")
    return key


def ensure_secret(path: Path, what: str) -> tuple[bytes, bool]:
    """(secret, created): the secret in `path`, made first (32 random bytes as hex, mode 600, never
    replacing a file) if missing."""
    path = Path(path)
    if not os.path.lexists(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:  # made by another process meanwhile: use that one
            return read_secret(path, what), False
        except OSError as e:
            raise CtrlError(f"{path}: cannot create the {what} ({e.strerror})") from None
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        return read_secret(path, what), True
    return read_secret(path, what), False
