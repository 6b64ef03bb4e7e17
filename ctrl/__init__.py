"""ctrl: fault-tolerant |H> magic-state preparation, from the protocol down to QICK FPGA programs.

The command is `ctrl` (start with `ctrl dry-run`); the library is its subpackages (`ctrl.device`,
`ctrl.compile`, `ctrl.emulate`, ...), see docs/architecture.md. `ctrl.__version__` is the installed
distribution's version.
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # looked up on first use: every `import ctrl.x` runs this module, and most never ask for the version
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("ctrl")
        except PackageNotFoundError:  # a source tree on sys.path that was never installed
            return "unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
