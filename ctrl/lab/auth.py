"""The shared secret that authenticates every Pyro message between `ctrl run` and `ctrl serve-board`.

qick's remote interface ships pickles, and unpickling runs code, so an unauthenticated message must be
refused before it is deserialised. Pyro4 does exactly that when both ends hold the same HMAC key: each
message carries an HMAC of its bytes, checked on receipt before the payload is unpickled, and a message
without one (or with a wrong one) is a `SecurityError`.

The key lives in a file readable by its owner only: `$CTRL_BOARD_KEY_FILE`, else
`~/.config/ctrl/board.key`. `ctrl serve-board` creates it (32 random bytes, hex) when it is missing; a
client on another machine needs a copy. A key file that others can read, or that is not a small regular
file, is refused: anyone who can read the key can run code in both processes.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from ctrl.errors import CtrlError

MIN_KEY_BYTES = 16
MAX_KEY_FILE_BYTES = 4096


def default_key_file() -> Path:
    env = os.environ.get("CTRL_BOARD_KEY_FILE")
    return Path(env) if env else Path.home() / ".config" / "ctrl" / "board.key"


def read_key(path: Path | None = None) -> bytes:
    """The key in `path` (default `default_key_file()`); CtrlError if it is missing, unsafe or too short."""
    path = Path(path) if path is not None else default_key_file()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise CtrlError(
            f"{path}: no board key; the board's `ctrl serve-board` creates one: copy it here, or pass --key-file"
        ) from None
    except OSError as e:
        raise CtrlError(f"{path}: cannot open the board key ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise CtrlError(f"{path}: the board key must be a regular file")
        if st.st_mode & 0o077:
            raise CtrlError(
                f"{path}: the board key is readable or writable by others (mode {stat.S_IMODE(st.st_mode):o}); "
                f"run `chmod 600 {path}`"
            )
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise CtrlError(f"{path}: the board key belongs to another user")
        data = f.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise CtrlError(f"{path}: a board key file holds at most {MAX_KEY_FILE_BYTES} bytes")
    key = data.strip()
    if len(key) < MIN_KEY_BYTES:
        raise CtrlError(f"{path}: the board key is {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
    return key


def ensure_key(path: Path | None = None) -> tuple[bytes, bool]:
    """(key, created): the key in `path`, made first (mode 600, never replacing a file) if missing."""
    path = Path(path) if path is not None else default_key_file()
    if not os.path.lexists(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:  # made by another process meanwhile: use that one
            return read_key(path), False
        except OSError as e:
            raise CtrlError(f"{path}: cannot create the board key ({e.strerror})") from None
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        return read_key(path), True
    return read_key(path), False
