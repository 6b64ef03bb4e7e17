"""The shared secret that authenticates every Pyro message between `ctrl run` and `ctrl serve-board`.

qick's remote interface ships pickles, and unpickling runs code, so an unauthenticated message must be
refused before it is deserialised. Pyro4 does exactly that when both ends hold the same HMAC key: each
message carries an HMAC of its bytes, checked on receipt before the payload is unpickled, and a message
without one (or with a wrong one) is a `SecurityError`.

The key lives in a file readable by its owner only: `$CTRL_BOARD_KEY_FILE`, else
`~/.config/ctrl/board.key`. `ctrl serve-board` creates it (32 random bytes, hex) when it is missing; a
client on another machine needs a copy. A key file that others can read, or that is not a small regular
file, is refused (`ctrl.files.read_secret`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ctrl.files import ensure_secret, read_secret

WHAT = "board key"


def default_key_file() -> Path:
    env = os.environ.get("CTRL_BOARD_KEY_FILE")
    return Path(env) if env else Path.home() / ".config" / "ctrl" / "board.key"


def read_key(path: Path | None = None) -> bytes:
    """The key in `path` (default `default_key_file()`); CtrlError if it is missing, unsafe or too short."""
    return read_secret(path if path is not None else default_key_file(), WHAT,
                       "the board's `ctrl serve-board` creates one: copy it here, or pass --key-file")  # fmt: skip


def ensure_key(path: Path | None = None) -> tuple[bytes, bool]:
    """(key, created): the key in `path`, made first (mode 600, never replacing a file) if missing."""
    return ensure_secret(path if path is not None else default_key_file(), WHAT)
