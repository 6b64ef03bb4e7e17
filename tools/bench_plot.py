"""Time `ctrl plot`'s drawing (figure and PNG, in-process, imports excluded) for compiled programs, full
and with a window, for the current plot code and, with --before REV, the plot code of that git revision.

    python tools/bench_plot.py /tmp/ux3/program.json /tmp/ux5/program.json --before 82b6fda

Prints one line per program and mode (seconds and image size) and ends with one JSON line of them all.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _module(rev: str | None):
    if rev is None:
        from ctrl.backends import plot

        return plot
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:ctrl/backends/plot.py"], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "plot_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("plot_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("programs", nargs="+", help="program.json files (ctrl compile's)")
    ap.add_argument("--before", metavar="REV", help="also time the plot code of this git revision")
    ap.add_argument("--window-us", type=float, nargs=2, default=(0.0, 5.0), help="the window timed (default: 0 5)")
    args = ap.parse_args()
    from PIL import Image

    versions = [("after", None)] + ([("before", args.before)] if args.before else [])
    rows = []
    out = Path(tempfile.mkdtemp())
    for label, rev in versions:
        mod = _module(rev)
        for prog in args.programs:
            d = json.loads(Path(prog).read_text())["protocol"]["distance"]
            for mode, window in (("full", None), ("window", tuple(args.window_us))):
                png = out / f"{label}_d{d}_{mode}.png"
                t0 = time.perf_counter()
                mod.plot_timeline(Path(prog), png, window)
                s = time.perf_counter() - t0
                size = Image.open(png).size
                rows.append({"code": label, "d": d, "mode": mode, "seconds": round(s, 2), "px": list(size)})
                print(f"{label:<6} d={d} {mode:<6} {s:6.2f} s  {size[0]}x{size[1]} px", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
