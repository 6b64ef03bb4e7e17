"""The versions of the libraries a result was made with (its provenance), looked up once per process."""

from __future__ import annotations

import functools
import platform
import re
from importlib import metadata

_VERSION = re.compile(r"^Version:[ \t]*(\S+)", re.M)


@functools.cache
def version(package: str) -> str:
    """The installed distribution's version, "unknown" when it is not installed.

    Read from the distribution's metadata header: `importlib.metadata.version` parses the whole file
    with the email parser (long descriptions included), about a millisecond a package, which a
    one-command process pays in full."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return "unknown"
    header = (dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "").split("\n\n", 1)[0]
    found = _VERSION.search(header)
    return found.group(1) if found else str(dist.version)


CORE = ("ctrl", "stim", "numpy")


def versions(*more: str) -> dict[str, str]:
    """Python's version and those of ctrl, stim, numpy and `more` packages, in that order."""
    return {"python": platform.python_version()} | {p: version(p) for p in CORE + more}
