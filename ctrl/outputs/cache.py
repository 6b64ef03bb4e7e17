"""A compile cache keyed by content hashes: an unchanged input never recompiles, a changed one never
reuses a stale result.

The key of a compile is the sha256 of everything its bytes depend on:
- the protocol and its parameters (name, distance, scheduling policy, excluded qubits);
- the calibration: its canonical hash, and the order of its qubits and couplers in the file (the
  compiler's graph follows the file's order, which the canonical hash deliberately ignores);
- the wiring hash (which covers the firmware descriptions) and the device name;
- the placement when it was fixed rather than searched (a placement kept by `ctrl recompile`);
- the versions of ctrl, qick, stim, numpy, rustworkx, networkx, pydantic and Python, and the size and
  modification time of each of ctrl's own source files (so editing the compiler invalidates the cache
  without a version bump, by the test Python applies to its .pyc files).

An entry holds the `Compiled` result and, once written, the bytes of its output files, which a
pulse-only recompile reuses. Default folder: `$CTRL_CACHE_DIR`, else `~/.cache/ctrl`.

Entries are pickles, so nothing is unpickled unless it is authenticated: each file starts with an
HMAC-SHA256 of its payload under a key that only the cache's owner can read (`root/key`, mode 600, made
on first use). A file whose HMAC does not match (a flipped byte, a truncated write, a pickle planted by
someone without the key) is a miss, with a warning, and is compiled again; it is never unpickled. A
cache folder that is not owned by the user or that others can write is not used at all (a warning says
why): whoever can replace the key file could sign entries.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import os
import pickle
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ctrl.compile.pipeline import Compiled, compile_program
from ctrl.compile.placement import Placement
from ctrl.compile.timed import TimedProgram
from ctrl.errors import CtrlError
from ctrl.files import atomic_file, ensure_secret, read_limited
from ctrl.protocol.tree import Design
from ctrl.versions import versions

FORMAT = 2
MAGIC = b"ctrl-compile-cache/2\n"  # then the payload's HMAC-SHA256 (32 bytes), then the payload
MAX_ENTRY_BYTES = 2**30  # a d=7 entry with its QICK files is tens of MB


def default_cache_dir() -> Path:
    env = os.environ.get("CTRL_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "ctrl"


@functools.cache
def source_hash() -> str:
    """sha256 of ctrl's Python sources as the file system describes them: relative path, size and
    modification time of each, in path order. This is the test Python itself applies before it runs a
    cached .pyc; reading and hashing the sources' contents instead costs a one-command process 2-3 ms."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = sorted(os.path.join(top, name)[len(root) + 1:]
                   for top, _, names in os.walk(root) for name in names if name.endswith(".py"))  # fmt: skip
    h = hashlib.sha256()
    for rel in files:
        st = os.stat(os.path.join(root, rel))
        h.update(f"{rel.replace(os.sep, '/')}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return "sha256:" + h.hexdigest()


def placement_doc(p: Placement) -> dict:
    """A placement as JSON, complete enough to rebuild it (`placement_from_doc`) bit for bit."""
    lay = p.layout
    head = {"method": p.method, "qubits": list(p.qubits), "expected_faults": p.cost, "embeddings_scored": p.considered}
    if isinstance(lay, Design):
        return head | {"design": lay.to_doc()}
    return head | {
        "layout": {
            "n_data": lay.n_data,
            "slots": list(lay.slots),
            "tour": list(lay.tour),
            "segments": [list(s) for s in lay.segments],
            "ancilla_coords": [list(c) for c in lay.ancilla_coords],
        },
    }


def placement_from_doc(doc: Mapping) -> Placement:
    from ctrl.protocol.layout import Layout

    try:
        if "design" in doc:
            return Placement(str(doc["method"]), Design.from_doc(doc["design"]), tuple(str(q) for q in doc["qubits"]),
                             float(doc["expected_faults"]), int(doc["embeddings_scored"]))  # fmt: skip
        lay = doc["layout"]
        layout = Layout(
            int(lay["n_data"]),
            tuple(None if s is None else int(s) for s in lay["slots"]),
            tuple(int(t) for t in lay["tour"]),
            tuple((int(a), int(b)) for a, b in lay["segments"]),
            tuple((float(x), float(y)) for x, y in lay["ancilla_coords"]),
        )
        return Placement(str(doc["method"]), layout, tuple(str(q) for q in doc["qubits"]),
                         float(doc["expected_faults"]), int(doc["embeddings_scored"]))  # fmt: skip
    except (KeyError, TypeError, ValueError) as e:
        raise CtrlError(f"placement record is incomplete or malformed ({type(e).__name__}: {e})") from None


def order_hash(calibration) -> str:
    """sha256 of what the canonical calibration hash leaves out on purpose: the order of the qubits,
    couplers and crosstalk exclusions in the file, and of the two qubits of each coupler (the compiler's
    coupling graph, and so an adapted placement, follows the file)."""
    doc = [[q.name for q in calibration.qubits], [list(c.qubits) for c in calibration.couplers],
           [[list(p) for p in ex.couplers] for ex in calibration.crosstalk_exclusions]]  # fmt: skip
    return "sha256:" + hashlib.sha256(json.dumps(doc).encode()).hexdigest()


@dataclass(frozen=True)
class CompileKey:
    """What a compile depends on; `digest` names its cache entry."""

    device: str
    calibration_hash: str
    calibration_order: str
    wiring_hash: str
    distance: int
    policy: str
    exclude: tuple[str, ...]
    placement: str | None  # sha256 of the fixed placement's record; None: searched
    dd: str | None = None  # the dynamical decoupling sequence, if any

    def __repr__(self) -> str:
        return f"CompileKey({self.device}, d={self.distance}, {self.policy}, {self.digest[:19]})"

    @functools.cached_property
    def digest(self) -> str:
        doc = {
            "format": FORMAT,
            "protocol": {"name": "cn20", "distance": self.distance, "policy": self.policy,
                         "exclude": list(self.exclude), "dd": self.dd},
            "device": self.device,
            "calibration_hash": self.calibration_hash,
            "calibration_order": self.calibration_order,
            "wiring_hash": self.wiring_hash,
            "placement": self.placement,
            "versions": versions("qick", "rustworkx", "networkx", "pydantic"),
            "source": source_hash(),
        }  # fmt: skip
        return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def compile_key(device, distance: int, policy: str = "asap", exclude=frozenset(),
                placement: Placement | None = None, dd: str | None = None) -> CompileKey:  # fmt: skip
    """The key of `compile_program(device, distance, policy, exclude, placement, dd=dd)`."""
    fixed = None
    if placement is not None:
        text = json.dumps(placement_doc(placement), sort_keys=True)
        fixed = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return CompileKey(device.name, device.calibration_hash, order_hash(device.calibration), device.wiring_hash,
                      distance, policy, tuple(sorted(exclude)), fixed, dd)  # fmt: skip


_PROGRAM_FIELDS = tuple(f.name for f in dataclasses.fields(TimedProgram) if f.name != "ops")


class Entry:
    """A compile result as the cache keeps it. The timed program's operations stay one pickled blob until
    something reads them: a recompile that keeps them (a pulse-only change) copies bytes instead of
    rebuilding thousands of objects, and `files` are the outputs written for it. A change of the couplers'
    virtual-Z corrections, the only calibration values inside the operations, is kept beside the blob
    (`phases`: operation index -> corrections) and applied when the operations are read; `cz` lists the
    blob's CZ operations (index, qubits, corrections), so that no recompile unpickles them to find them."""

    def __init__(self, header: Mapping, placement: Placement, native_counts: Mapping, report: Mapping,
                 passes: tuple = (), files: Mapping[str, bytes] | None = None, ops_blob: bytes | None = None,
                 compiled: Compiled | None = None, qick=None, cz: tuple | None = None,
                 phases: Mapping[int, tuple] | None = None):  # fmt: skip
        if ops_blob is None and compiled is None:
            raise ValueError("an Entry needs its operations: ops_blob or compiled")
        if phases and ops_blob is None:
            raise ValueError("corrections beside the operations need their blob")
        self.header = dict(header)  # every TimedProgram field but `ops`
        self.placement = placement
        self.native_counts = dict(native_counts)
        self.report = dict(report)
        self.passes = tuple(passes)
        self.files = dict(files or {})
        self._blob = ops_blob
        self._compiled = compiled
        self.qick = qick  # the QICK emission's sheet (ctrl.backends.qick.sheet.QickSheet) for `files`, if any
        self._cz = cz
        self.phases = dict(phases or {})

    @classmethod
    def of(cls, compiled: Compiled, files: Mapping[str, bytes] | None = None, qick=None) -> Entry:
        p = compiled.program
        return cls({name: getattr(p, name) for name in _PROGRAM_FIELDS}, compiled.placement, compiled.native_counts,
                   compiled.report, compiled.passes, files, compiled=compiled, qick=qick)  # fmt: skip

    def __repr__(self) -> str:
        h = self.header
        return f"Entry({h['device']}, d={h['distance']}, {h['calibration_hash'][:19]}, files={sorted(self.files)})"

    @property
    def ops_blob(self) -> bytes:
        if self._blob is None:
            self._blob = pickle.dumps(self._compiled.program.ops, protocol=pickle.HIGHEST_PROTOCOL)
        return self._blob

    @property
    def cz(self) -> tuple | None:
        """(index, qubits, corrections) of every CZ operation in the blob; None if unknown."""
        if self._cz is None and self._compiled is not None and not self.phases:  # then its operations are the blob's
            self._cz = tuple((i, t.op.qubits, t.op.phases) for i, t in enumerate(self._compiled.program.ops)
                             if t.op.name == "CZ")  # fmt: skip
        return self._cz

    @property
    def compiled(self) -> Compiled:
        if self._compiled is None:
            ops = pickle.loads(self._blob)
            if self.phases:
                ops = list(ops)
                for i, phases in self.phases.items():
                    t = ops[i]
                    ops[i] = dataclasses.replace(t, op=dataclasses.replace(t.op, phases=phases))
                ops = tuple(ops)
            program = TimedProgram(**self.header, ops=ops)
            self._compiled = Compiled(program, self.placement, dict(self.native_counts), dict(self.report), self.passes)
        return self._compiled

    def same_ops(self, other: Entry) -> bool:
        """Known without unpickling: both carry the very same blob and corrections."""
        return self._blob is not None and self._blob is other._blob and self.phases == other.phases

    def derived(self, **changes) -> Entry:
        """A copy with some of header, placement, report, passes, files, qick, phases replaced (the same
        operations; files and the QICK sheet, which belong to one calibration, are not carried over unless
        given)."""
        header = dict(self.header, **changes.pop("header", {}))
        args = {"placement": self.placement, "native_counts": self.native_counts, "report": self.report,
                "passes": self.passes, "files": None, "qick": None, "phases": self.phases} | changes  # fmt: skip
        compiled = None
        if self._blob is None:  # share the program's operations, not a copy of them
            c = self.compiled
            program = dataclasses.replace(c.program, **{k: v for k, v in header.items() if getattr(c.program, k) != v})
            compiled = Compiled(program, args["placement"], dict(args["native_counts"]), dict(args["report"]),
                                tuple(args["passes"]))  # fmt: skip
        return Entry(header, ops_blob=self._blob, compiled=compiled, cz=self._cz, **args)

    def __reduce__(self):
        return (_entry, (self.header, self.placement, self.native_counts, self.report, self.files, self.ops_blob,
                         self.qick, self.cz, self.phases))  # fmt: skip


def _entry(header, placement, native_counts, report, files, ops_blob, qick=None, cz=None, phases=None) -> Entry:
    return Entry(header, placement, native_counts, report, (), files, ops_blob, qick=qick, cz=cz, phases=phases)


def _sign(secret: bytes, payload) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()


class CompileCache:
    """Compile results by `CompileKey`, one authenticated pickle per entry under `root/compiled/`."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self._key: bytes | None = None
        self._refused: str | None = None

    def __repr__(self) -> str:
        return f"CompileCache({str(self.root)!r})"

    def _path(self, key: CompileKey) -> Path:
        hexd = key.digest.split(":", 1)[1]
        return self.root / "compiled" / hexd[:2] / f"{hexd}.pickle"

    def _secret(self) -> bytes | None:
        """The HMAC key, or None (once warned) when the folder is not safely the user's."""
        if self._key is not None or self._refused is not None:
            return self._key
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            st = os.lstat(self.root)
        except OSError as e:
            raise CtrlError(f"compile cache {self.root}: cannot create or read the folder ({e.strerror})") from None
        problem = None
        if not stat.S_ISDIR(st.st_mode):
            problem = "it is not a folder"
        elif hasattr(os, "getuid") and st.st_uid != os.getuid():
            problem = "it belongs to another user"
        elif st.st_mode & 0o022:
            problem = f"others can write to it (mode {stat.S_IMODE(st.st_mode):o}; `chmod go-w` it)"
        if problem is None:
            try:
                self._key = ensure_secret(self.root / "key", "compile cache key")[0]
            except CtrlError as e:
                problem = str(e)
        if problem is not None:
            self._refused = problem
            print(f"ctrl: warning: compile cache {self.root} not used: {problem}", file=sys.stderr)
        return self._key

    def get(self, key: CompileKey) -> Entry | None:
        secret = self._secret()
        if secret is None:
            return None
        path = self._path(key)
        if not os.path.lexists(path):
            return None
        try:
            data = read_limited(path, MAX_ENTRY_BYTES, "cache entry", nofollow=True)
        except CtrlError as e:
            return self._miss(path, str(e).removeprefix(f"{path}: "))
        head = len(MAGIC) + 32
        if not data.startswith(MAGIC) or len(data) < head:
            return self._miss(path, "not an entry of this cache format")
        payload = memoryview(data)[head:]
        if not hmac.compare_digest(data[len(MAGIC):head], _sign(secret, payload)):
            return self._miss(path, "its HMAC does not match (corrupted, or not written with this cache's key)")
        try:
            entry = pickle.loads(payload)
        except Exception:  # noqa: BLE001 - authentic but unreadable (another ctrl's classes): a miss
            return None
        return entry if isinstance(entry, Entry) else None

    @staticmethod
    def _miss(path: Path, why: str) -> None:
        print(f"ctrl: warning: compile cache entry {path.name} ignored: {why}; compiling again", file=sys.stderr)
        return None

    def put(self, key: CompileKey, entry: Entry | Compiled) -> None:
        secret = self._secret()
        if secret is None:
            return
        if isinstance(entry, Compiled):
            entry = Entry.of(entry)
        payload = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        with atomic_file(self._path(key), private=True) as f:  # a write error is atomic_file's one-line CtrlError
            f.write(MAGIC + _sign(secret, payload))
            f.write(payload)

    def compile(self, device, distance: int, policy: str = "asap", exclude=frozenset(),
                placement: Placement | None = None, dd: str | None = None) -> tuple[Compiled, Entry | None]:  # fmt: skip
        """`compile_program(...)`, or its cached result (then with `passes` empty, and the entry)."""
        key = compile_key(device, distance, policy, exclude, placement, dd)
        entry = self.get(key)
        if entry is not None:
            return entry.compiled, entry
        compiled = compile_program(device, distance, policy, frozenset(exclude), placement, dd=dd)
        self.put(key, compiled)
        return compiled, None
