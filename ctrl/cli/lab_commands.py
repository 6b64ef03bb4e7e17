"""`ctrl run`, `ctrl serve-board` and `ctrl results`: a program on a QICK board (or the emulated one),
and the results files of older runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ctrl.cli.summaries import _per_accepted
from ctrl.errors import CtrlError


def _cmd_run(args: argparse.Namespace) -> int:
    import time

    from ctrl.lab.client import run

    live = sys.stdout.isatty()

    def show(p) -> None:
        eta = f"{p.eta_s:.0f} s" if p.eta_s == p.eta_s else "?"
        line = (f"{p.shots_done}/{p.shots_total} shots, acceptance {p.acceptance:.4f} "
                f"({p.accepted}/{p.attempts}), {p.elapsed_s:.1f} s, ETA {eta}")  # fmt: skip
        print(("\r" + line + "   ") if live else line, end="" if live else "\n", flush=True)

    from ctrl.lab.auth import read_key

    if not 0 < args.timeout_s <= 86400:
        raise CtrlError(f"--timeout-s must be in (0, 86400] seconds, got {args.timeout_s:g}")
    if args.insecure_board:
        if args.key_file:
            raise CtrlError("--insecure-board and --key-file exclude each other")
        print("ctrl: WARNING: --insecure-board: the board is not authenticated; anything answering at "
              f"{args.board} can run code in this process", file=sys.stderr)  # fmt: skip
        key = None
    else:
        key = read_key(Path(args.key_file) if args.key_file else None)
    t0 = time.monotonic()
    device = Path(args.device) if args.device else None
    try:
        r = run(args.board, Path(args.program), args.shots, Path(args.out), device, show, key=key,
                proxy_name=args.proxy_name, timeout_s=args.timeout_s,
                note=lambda text: print(f"ctrl: note: {text}", file=sys.stderr, flush=True))
    finally:
        if live:
            print()  # end the progress line, also before an error message
    lo, hi = r["acceptance_ci95"]
    lines = [
        f"{r['shots']} attempt slots on {args.board} in {time.monotonic() - t0:.1f} s; results in {args.out}",
        f"  acceptance                 {r['acceptance']:.4g}  95% CI [{lo:.4g}, {hi:.4g}]  ({r['accepted']} accepted)",
    ]
    if "logical_error_rate" in r:
        lines.append(f"  logical error per accepted {_per_accepted(r)}  "
                     f"({r['logical_errors']} errors, Z-type + X-type; emulator ground truth)")  # fmt: skip
    else:
        lines.append("  logical error per accepted: not measured (the board reports no logical readout)")
    lines.append(f"  board decisions differing from the real-time rule on the same readouts: {r['decision_mismatches']}")
    print("\n".join(lines))
    return 0


def _cmd_serve_board(args: argparse.Namespace) -> int:
    import time

    from ctrl.lab.auth import default_key_file, ensure_key
    from ctrl.lab.board import serve

    key_file = Path(args.key_file) if args.key_file else default_key_file()
    key, created = ensure_key(key_file)
    server = serve(Path(args.device), args.board, args.host, args.port, args.allow_remote, args.noise, args.seed,
                   key=key, proxy_name=args.proxy_name)  # fmt: skip
    soc = server.soc
    print(f"emulated board {soc._board} of {args.device} (noise {args.noise}, seed {args.seed}) as "
          f"{server.proxy_name!r}; name server {server.host}:{server.port}; Ctrl-C stops it", flush=True)  # fmt: skip
    print(f"  clients authenticate with the key in {key_file}{' (new)' if created else ''}: `ctrl run` on this "
          f"machine finds it; elsewhere copy it (mode 600) and pass --key-file", flush=True)  # fmt: skip
    import signal

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # a service manager stops it as Ctrl-C does
    seen = 0
    try:
        while not stop:
            time.sleep(0.5)
            if soc.runs != seen:
                seen = soc.runs
                print(f"  acquisition {seen} done for {soc.owner or soc.last_client}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    print("stopped")
    return 0


def _cmd_results_convert(args: argparse.Namespace) -> int:
    from ctrl.lab.dataset import convert

    r = convert(Path(args.source), Path(args.out), args.program, args.device)
    print(f"{r['out']}: {r['batches']} batches, {r['shots']} shots ({r['appended']} batches appended)")
    return 0
