"""The page journal that makes each commit of a results file kill-safe (`ctrl.lab.results` writes
through it).

HDF5 updates its metadata in place, so a process killed while writing can leave a file no library opens
(killed at each of the 44 writes of a resume and one batch, written in place, 6 left a file h5py could not
open and 22 one whose arrays did not add up). `ctrl run` therefore writes through `JournaledFile`: between
commits, bytes past the committed length go to the file at once and changes to committed bytes are held in
memory; the commit after each batch saves the old bytes of every 4 KiB page it will change to a journal
beside the file (`.NAME.journal`) and fsyncs it, writes the pages, fsyncs the file and empties the journal.
Whatever moment a kill comes, `recover` (run by the next `ctrl.lab.results.open_run`) finds an empty journal
or none, and the file is the last commit, or one with a header, and puts the old pages back and cuts the
file to its committed length: the batch in flight is lost, nothing else. A reader that opens the file during
a commit may fail; it reads it again.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from ctrl.errors import CtrlError

PAGE = 4096

MAGIC = b"ctrl-results-journal/1\n"
_HEAD = struct.Struct("<QI")  # committed size, crc32 of it
_REC = struct.Struct("<QII")  # offset, length, crc32 of offset, length and the old bytes


def journal_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.journal")


class JournaledFile:
    """The results file as h5py writes it (h5py's file-object driver). Between two commits, writes past
    the committed length go to the file at once (nothing there to lose), writes into the committed
    bytes are held here, page by page; `commit` saves the old bytes of every page it will change to the
    journal, fsyncs it, writes the held pages, fsyncs the file and empties the journal: three fsyncs a
    batch, whatever it changed. See the module docstring."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.journal = journal_path(self.path)
        self.fd = os.open(self.path, os.O_RDWR)
        self.base = os.fstat(self.fd).st_size  # the committed length
        self.size = self.base  # the length h5py sees
        self.cut = self.base  # the shortest length h5py truncated to (below base: applied at the commit)
        self.held: dict[int, bytearray] = {}  # page -> its new bytes (of the committed part of the page)
        self.jfd: int | None = None
        self.began = False  # written since the last commit
        self.pos = 0

    def __repr__(self) -> str:
        return f"JournaledFile({self.path.name}, committed {self.base} bytes, {len(self.held)} pages held)"

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else self.size + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buf) -> int:
        data = self._read(self.pos, len(buf))
        buf[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def read(self, n: int = -1) -> bytes:
        data = self._read(self.pos, max(0, self.size - self.pos) if n < 0 else n)
        self.pos += len(data)
        return bytes(data)

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        n, at = len(view), self.pos
        self._begin()
        held = min(n, max(0, self.base - at))  # the part over committed bytes: held until the commit
        for k in range(at // PAGE, -(-(at + held) // PAGE)) if held else ():
            page = self._page(k)
            lo, hi = max(at, k * PAGE), min(at + held, k * PAGE + len(page))
            page[lo - k * PAGE : hi - k * PAGE] = view[lo - at : hi - at]
        done = held
        while done < n:
            done += os.pwrite(self.fd, view[done:], at + done)
        self.pos += n
        self.size = max(self.size, at + n)
        return n

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else size
        self._begin()
        self.size = size
        self.cut = min(self.cut, size)
        os.ftruncate(self.fd, max(size, self.base))  # the committed bytes are cut at the commit
        return size

    def flush(self) -> None:
        pass  # commit() is where the file reaches the disk

    def commit(self) -> None:
        if not self.began:
            return
        pages = sorted(set(self.held) | set(range(self.cut // PAGE, -(-self.base // PAGE))))
        if pages:
            records = []
            for k in pages:
                old = os.pread(self.fd, min(PAGE, self.base - k * PAGE), k * PAGE)
                records.append(_REC.pack(k * PAGE, len(old), zlib.crc32(struct.pack("<QI", k * PAGE, len(old)) + old))
                               + old)  # fmt: skip
            _write_all(self.jfd, b"".join(records))
        os.fsync(self.jfd)  # the old bytes are safe before any of them changes
        for k, page in sorted(self.held.items()):
            os.pwrite(self.fd, page, k * PAGE)
        os.ftruncate(self.fd, self.size)
        os.fsync(self.fd)
        os.ftruncate(self.jfd, 0)  # an empty journal: nothing to roll back
        os.fsync(self.jfd)
        os.lseek(self.jfd, 0, os.SEEK_SET)
        self.base = self.size = self.cut = os.fstat(self.fd).st_size
        self.held.clear()
        self.began = False

    def close(self) -> None:
        """Close without committing: a journal holding anything stays, for recover(); an empty one goes."""
        if self.jfd is not None:
            empty = os.fstat(self.jfd).st_size == 0
            os.close(self.jfd)
            self.jfd = None
            if empty:
                self.journal.unlink(missing_ok=True)
        os.close(self.fd)

    def _begin(self) -> None:
        """The first write since the commit: the journal's header, the committed length (fsynced with the
        records; a kill before then leaves at most bytes past the committed length, which HDF5 ignores)."""
        if self.began:
            return
        if self.jfd is None:
            self.jfd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            fsync_dir(self.path.parent)
        _write_all(self.jfd, MAGIC + _HEAD.pack(self.base, zlib.crc32(struct.pack("<Q", self.base))))
        self.began = True

    def _page(self, k: int) -> bytearray:
        if k not in self.held:
            self.held[k] = bytearray(os.pread(self.fd, min(PAGE, self.base - k * PAGE), k * PAGE))
        return self.held[k]

    def _read(self, at: int, n: int) -> bytearray:
        n = max(0, min(n, self.size - at))
        data = bytearray(os.pread(self.fd, n, at))
        data.extend(bytes(n - len(data)))
        for k in range(at // PAGE, -(-min(at + n, self.base) // PAGE)) if at < self.base else ():
            page = self.held.get(k)
            if page is not None:
                lo, hi = max(at, k * PAGE), min(at + n, k * PAGE + len(page))
                data[lo - at : hi - at] = page[lo - k * PAGE : hi - k * PAGE]
        return data


def recover(path: Path) -> bool:
    """Undo what a killed run wrote after its last commit (see the module docstring). True if the journal
    says a batch was being written (now undone), False if the file is as its last commit left it."""
    path = Path(path)
    journal = journal_path(path)
    try:
        data = journal.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise CtrlError(f"{journal}: cannot read the results journal ({e.strerror})") from None
    start = len(MAGIC) + _HEAD.size
    began = data[: len(MAGIC)] == MAGIC and len(data) >= start
    if began:
        base, crc = _HEAD.unpack_from(data, len(MAGIC))
        began = crc == zlib.crc32(struct.pack("<Q", base))
    if began:  # else: an empty or torn header, so nothing but bytes past the committed length was written
        records, at = [], start
        while at + _REC.size <= len(data):  # a torn last record: the commit never wrote a page
            offset, length, crc = _REC.unpack_from(data, at)
            old = data[at + _REC.size : at + _REC.size + length]
            if len(old) != length or crc != zlib.crc32(struct.pack("<QI", offset, length) + old):
                break
            records.append((offset, old))
            at += _REC.size + length
        try:
            fd = os.open(path, os.O_RDWR)
            try:
                for offset, old in records:
                    os.pwrite(fd, old, offset)
                os.ftruncate(fd, base)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise CtrlError(f"{path}: cannot roll back the unfinished batch ({e.strerror})") from None
    journal.unlink()
    fsync_dir(path.parent)
    return began


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
