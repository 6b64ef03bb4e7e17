"""Atomic file output: every artifact ctrl writes goes through here, so no reader ever sees half a file."""

from __future__ import annotations

import contextvars
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path

from ctrl.errors import CtrlError

_staged: contextvars.ContextVar[list | None] = contextvars.ContextVar("ctrl_staged_outputs", default=None)


@contextmanager
def outputs():
    """Every file written through this module inside the block appears together when the block ends, or
    none does: each is written to a temporary file beside its place, and all are renamed into place only
    after the last one is complete. An error (a full disk, an unwritable folder, bad input found late)
    removes the temporary files and leaves every earlier output as it was."""
    if _staged.get() is not None:  # nested: the outer block commits
        yield
        return
    staged: list[tuple[str, Path]] = []
    token = _staged.set(staged)
    try:
        yield
        for tmp, path in staged:
            try:
                if tmp is None:  # a stale output of an earlier run (remove_output)
                    path.unlink(missing_ok=True)
                else:
                    os.replace(tmp, path)
            except OSError as e:  # e.g. a folder where the file goes; the rest stay as they were
                raise CtrlError(f"{path}: cannot write ({e.strerror or e})") from None
    except BaseException:
        for tmp, _ in staged:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        _staged.reset(token)


def remove_output(path: Path) -> None:
    """Remove an output file of an earlier run, with the new outputs (inside `outputs()`: when the block
    ends, so a command that fails leaves the folder as it was)."""
    staged = _staged.get()
    if staged is None:
        Path(path).unlink(missing_ok=True)
    else:
        staged.append((None, Path(path)))


def removed_outputs() -> list[Path]:
    """The files `remove_output` was asked to remove in the current `outputs()` block (for the command to
    say so)."""
    return list(dict.fromkeys(path for tmp, path in _staged.get() or () if tmp is None))  # asked twice: once


def _commit(tmp: str, path: Path) -> None:
    staged = _staged.get()
    if staged is None:
        os.replace(tmp, path)
    else:
        staged.append((tmp, path))


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write through a temporary file in the same folder and rename it into place (inside `outputs()`:
    when the block ends)."""
    with atomic_file(path) as f:
        f.write(data if isinstance(data, bytes) else data.encode())


@contextmanager
def atomic_file(path: Path, private: bool = False):
    """A binary file to write into, which replaces `path` when the block ends without an error (inside
    `outputs()`: when that block ends); `write_atomic` is one write into it.

    The file gets the mode any new file would (0666 less the umask: 0644 under the usual 022), so a lab's
    shared folder stays readable by the group; `private`: mode 0600 whatever the umask (the compile cache,
    whose pickles are trusted by whoever holds its key)."""
    path = Path(path)
    # created with 0666 (the kernel takes the umask off, as for any new file) or 0600, never chmod-ed after
    fd, tmp = temporary(path, 0o600 if private else 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        _commit(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise CtrlError(f"{path}: cannot write ({e.strerror or e})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def output_mode() -> int:
    """The mode a new output file gets: what `open` would give it (0o666 under the process's umask)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux: /proc), since
    setting it to read it back is a moment in which another thread's files get the wrong mode."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and put back at once
    os.umask(mask)
    return mask


def temporary(path: Path, mode: int) -> tuple[int, str]:
    """(fd, name) of a new file beside `path`, for writing what will replace it: a random name, created
    exclusively with `mode` (less the umask, as any new file), links not followed; its folders made
    first if missing (asked only then: a folder's files are written one after another, and a mkdir per file
    is a system call and an exception each time)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    made = False
    for _ in range(100):
        tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(4)}")
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue  # another writer's temporary of the same name: draw again
        except FileNotFoundError:
            if made:
                raise CtrlError(f"{path}: cannot write (its folder was removed while writing)") from None
            made = True
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except (NotADirectoryError, FileExistsError):
                break
            except OSError as e:
                raise CtrlError(f"{path}: cannot write ({e.strerror or e})") from None
        except NotADirectoryError:
            break
        except OSError as e:
            raise CtrlError(f"{path}: cannot write ({e.strerror or e})") from None
    else:
        raise CtrlError(f"{path}: cannot write (no free temporary name beside it)")
    raise CtrlError(f"{path.parent}: not a folder (or inside a file), so {path.name} cannot be written there")


MiB = 2**20
MIN_SECRET_BYTES = 16
MAX_SECRET_FILE_BYTES = 4096


def read_limited(path: Path, max_bytes: int, what: str, nofollow: bool = False) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; CtrlError (one line, with the path) otherwise.
    A FIFO or device (`/dev/zero`) is refused before it is read, and a file is never read past the limit;
    `nofollow`: a symbolic link is refused too."""
    return _read_regular(Path(path), max_bytes, what, nofollow)[0]


def _read_regular(path: Path, max_bytes: int, what: str, nofollow: bool = False,
                  missing: str | None = None) -> tuple[bytes, os.stat_result]:  # fmt: skip
    """(bytes, stat) of a regular file; `missing`: what to say when it is absent (None: "no such file")."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | (os.O_NOFOLLOW if nofollow else 0))
    except FileNotFoundError:
        said = "no such file" if missing is None else f"no {what}" + (f"; {missing}" if missing else "")
        raise CtrlError(f"{path}: {said}") from None
    except IsADirectoryError:
        raise CtrlError(f"{path}: is a folder, expected the {what}") from None
    except OSError as e:
        raise CtrlError(f"{path}: cannot read the {what} ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise CtrlError(f"{path}: the {what} must be a regular file, not a {_kind(st.st_mode)}")
        if st.st_size > max_bytes:
            raise CtrlError(f"{path}: the {what} is {st.st_size / MiB:.1f} MiB; at most {max_bytes / MiB:g} MiB is read")
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise CtrlError(f"{path}: cannot read the {what} ({e.strerror})") from None
    if len(data) > max_bytes:  # it grew while we read
        raise CtrlError(f"{path}: the {what} is over {max_bytes / MiB:g} MiB")
    return data, st


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):  # fmt: skip
        if test(mode):
            return name
    return "special file"


def read_secret(path: Path, what: str, missing_hint: str = "") -> bytes:
    """The secret in `path`: a small regular file of its owner's, readable by nobody else (anyone who can
    read a key that authenticates pickles can run code in the process that trusts it)."""
    path = Path(path)
    data, st = _read_regular(path, MAX_SECRET_FILE_BYTES, what, nofollow=True, missing=missing_hint)
    if st.st_mode & 0o077:
        raise CtrlError(f"{path}: the {what} is readable or writable by others "
                        f"(mode {stat.S_IMODE(st.st_mode):o}); run `chmod 600 {path}`")  # fmt: skip
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CtrlError(f"{path}: the {what} belongs to another user")
    key = data.strip()
    if len(key) < MIN_SECRET_BYTES:
        raise CtrlError(f"{path}: the {what} is {len(key)} bytes; at least {MIN_SECRET_BYTES} are needed")
    return key


def ensure_secret(path: Path, what: str) -> tuple[bytes, bool]:
    """(secret, created): the secret in `path`, made first (32 random bytes as hex, mode 600, never
    replacing a file) if missing."""
    path = Path(path)
    created = False
    if not os.path.lexists(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:  # made by another process meanwhile: use that one
            pass
        except OSError as e:
            raise CtrlError(f"{path}: cannot create the {what} ({e.strerror})") from None
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            created = True
    return read_secret(path, what), created
