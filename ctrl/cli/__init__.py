"""`ctrl`: thin subcommands over the library. Only this package prints or exits.

Bad input of any kind becomes one line on stderr and exit code 2: a bad argument in the parser, every
other error (a `CtrlError`, an `OSError`) here in `main`, the one place that catches them.

`parser.py` builds the options; the commands are grouped by what they drive: `protocol_commands.py`
(protocol, simulate), `compile_commands.py` (compile, emulate, dry-run, recompile, plot, sweep),
`device_commands.py` (validate, import, schema, diff-device) and `lab_commands.py` (run, serve-board,
results); `progress.py` draws their bars and `summaries.py` writes their result summaries. Heavy
libraries are imported inside the commands, so that `ctrl --help` starts fast.
"""

from __future__ import annotations

import gc
import importlib
import sys
import typing
from contextlib import contextmanager

from ctrl.cli.parser import build_parser
from ctrl.errors import CtrlError

__all__ = ["build_parser", "console", "main", "settled_heap"]


# commands whose files must appear as they are made (a lab run's results, batch by batch), not at the end
_STREAMING = ("run", "serve-board")


@contextmanager
def settled_heap(modules=()):
    """The block runs with the libraries it uses imported first and everything alive then frozen out of the
    cyclic collector's reach (`gc.freeze`). What the imports make lives as long as the process, yet every
    full collection walks it: about 45 ms for the 64k objects of a grid55 recompile's process, a collection
    that falls in or out of a command by chance (a recompile whose phases moved took twice as long as one
    whose amplitudes did, all of it that one collection). Garbage the command makes is still collected.
    Unfrozen afterwards, for callers that run many commands in one process (the tests)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:  # the command says so itself, in its own words
            break
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered for the closed pipe is dropped, so the
    interpreter's flush at exit has nowhere to fail."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (pytest's capture): nothing is flushed at exit either
        pass


class _PipeGuard:
    """stdout that, once the reader has closed the pipe (`ctrl ... | head`), drops what is printed instead of
    raising: the command goes on and its files are written, as if nobody had been reading."""

    def __init__(self, inner: typing.TextIO) -> None:
        self.inner, self.broken = inner, False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.inner.write(text)
            except BrokenPipeError:
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.inner.flush()
            except BrokenPipeError:
                self.broken = True

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code. `ctrl ... | head` ends quietly, with the command's files written, and
    code 141 (as a shell reports a SIGPIPE) wherever the pipe closed: in a command, in --help, or in the
    last flush."""
    guard = _PipeGuard(sys.stdout)
    sys.stdout = guard
    try:
        code = _main(argv)
        guard.flush()  # here, where a closed pipe is caught, not in the interpreter's flush at exit
    finally:
        sys.stdout = guard.inner
    if guard.broken:  # the reader has what it wanted
        _quiet_stdout()
        return 141
    return code


def console() -> typing.NoReturn:
    """The `ctrl` program: `main()` on the command line, then exit. The heap is frozen again first, so that
    the interpreter's last collection at exit does not walk all of it once more (50-90 ms on a grid55
    recompile's process)."""
    code = main()
    gc.freeze()
    sys.exit(code)


def _main(argv: list[str] | None) -> int:
    from ctrl.files import outputs

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # a bad argument (said in one line) or --help: a code, as for any other input
        return e.code if isinstance(e.code, int) else 2
    from ctrl.device import device_warnings

    try:
        with device_warnings(args.strict) as heard:
            try:
                with settled_heap(getattr(args, "uses", ())):
                    if args.command in _STREAMING:
                        return args.func(args)
                    with outputs():  # a command that fails leaves no output of its own, and none half-written
                        return args.func(args)
            finally:
                for w in heard:
                    print(f"ctrl: warning: {w}", file=sys.stderr)
    except CtrlError as e:
        print(f"ctrl: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the disk, not the input: a full disk, an unwritable or missing folder
        where = f"{e.filename}: " if e.filename else ""
        print(f"ctrl: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ctrl: interrupted", file=sys.stderr)
        return 130
