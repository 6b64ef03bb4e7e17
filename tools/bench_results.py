"""Lab results file cost against run length: bytes written and time per batch, the old strategy (the whole
JSON file rewritten through write_atomic after every batch, as ctrl.lab-results/1 did; reimplemented here
as the baseline) against the HDF5 file `ctrl run` writes (`ctrl.lab.results`: a journaled commit per
batch). Bytes written are the process's own count (/proc/self/io wchar): file, journal and fsynced
temporaries alike.

No board: batch records are synthesised with the shape of a d=3 default-device batch of `ctrl run`
(1000 attempt slots; raw accumulated I/Q of 10 readouts with 1 to 9 windows each, the board's and the
rule's verdicts, the emulator's truth and stream), about 220 kB as a JSON line.

    python tools/bench_results.py [--shots 1000 10000 100000] [--dir DIR]

Ends with one JSON line holding every figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from ctrl.files import write_atomic
from ctrl.lab import results as res_file

BATCH_SHOTS = 1000
WINDOWS = {0: 7, 1: 9, 2: 3, 3: 3, 4: 4, 5: 2, 6: 3, 7: 3, 8: 1, 9: 1}  # readout -> windows per slot (d=3)
IDENTITY = {"program_hash": "sha256:" + "0" * 64, "calibration_hash": "sha256:" + "1" * 64,
            "firmware_hash": "sha256:" + "2" * 64, "board": "zcu216", "batch_shots": BATCH_SHOTS}  # fmt: skip
HEADER = {"shots_requested": 0, "program": "prog", "device": "default", "distance": 3,
          "board_address": "127.0.0.1:8888/myqick", "versions": {"python": "3", "ctrl": "0", "qick": "0"}}  # fmt: skip


def templates(n: int = 4, seed: int = 1) -> list[dict]:
    """Batch records as `ctrl run` writes them on the emulated board (numbers drawn, shapes and ranges real)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        raw = {}
        for ro, w in WINDOWS.items():
            iq = np.zeros((BATCH_SHOTS, w, 2), dtype=np.int64)
            iq[:, :, 0] = rng.choice([-64, -59, -55, -45, -44, 60, 66, 71], size=(BATCH_SHOTS, w))
            raw[str(ro)] = {"shape": [BATCH_SHOTS, w, 2], "iq": iq.reshape(-1).tolist()}
        outcomes = rng.choice(18, size=BATCH_SHOTS, p=[0.39] + [0.61 / 17] * 17).tolist()
        out.append({
            "attempts": BATCH_SHOTS, "accepted": outcomes.count(0), "board_outcomes": outcomes,
            "rule_outcomes": outcomes, "decision_mismatches": 0, "raw": raw, "shots": BATCH_SHOTS,
            "logical": {"X-type (proxy Z)": [500, 195, 1], "Z-type (proxy X)": [500, 195, 0]},
            "truth": {"proxy": "XZ" * (BATCH_SHOTS // 2), "logical_error": rng.integers(0, 2, BATCH_SHOTS).tolist(),
                      "note": "emulator ground truth (ideal round of the Stim proxy); no real board reports this"},
        })  # fmt: skip
    return out


def batch(i: int, tpl: list[dict]) -> dict:
    return tpl[i % len(tpl)] | {"batch": i, "first_shot": i * BATCH_SHOTS,
                                "stream": {"seed": 0, "position": i * BATCH_SHOTS}}  # fmt: skip


def _line(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def written_bytes() -> int:
    """Bytes this process has handed to write calls so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def run_old(path: Path, batches: int, tpl: list[dict]) -> dict:
    """The /1 strategy: header and every batch line so far rewritten through write_atomic per batch."""
    header = {"format": "ctrl.lab-results/1", "identity": IDENTITY, **HEADER, "started_utc": "t0",
              "resumed_utc": [], "finished_utc": None}  # fmt: skip
    lines: list[str] = []
    per_batch = []
    start = written_bytes()

    def write() -> None:
        write_atomic(path, "\n".join([_line(header), *lines]) + "\n")

    write()
    for i in range(batches):
        t, w = time.perf_counter(), written_bytes()
        lines.append(_line(batch(i, tpl)))
        write()
        per_batch.append((time.perf_counter() - t, written_bytes() - w))
    header |= {"finished_utc": "t1", "summary": {"shots": batches * BATCH_SHOTS}}
    write()
    return _figures(per_batch, written_bytes() - start, path)


def run_new(path: Path, batches: int, tpl: list[dict]) -> dict:
    """The HDF5 results file, through ctrl.lab.results itself."""
    readouts = ([ro for ro, w in WINDOWS.items() for _ in range(w)], [j for w in WINDOWS.values() for j in range(w)],
                [f"r{ro}/{j}" for ro, w in WINDOWS.items() for j in range(w)],
                [0.0] * sum(WINDOWS.values()))  # fmt: skip
    start = written_bytes()
    per_batch = []
    with res_file.locked(path), res_file.open_run(path, IDENTITY, HEADER, readouts, "t0") as run:
        for i in range(batches):
            t, w = time.perf_counter(), written_bytes()
            run.append(batch(i, tpl))
            per_batch.append((time.perf_counter() - t, written_bytes() - w))
        run.finish("t1", {"shots": run.results.shots})
    return _figures(per_batch, written_bytes() - start, path)


def _figures(per_batch: list[tuple[float, int]], written: int, path: Path) -> dict:
    times = [t for t, _ in per_batch]
    return {
        "bytes_written": written,
        "file_bytes": path.stat().st_size,
        "bytes_last_batch": per_batch[-1][1],
        "ms_per_batch_mean": 1e3 * sum(times) / len(times),
        "ms_last_batch": 1e3 * times[-1],
        "seconds": sum(times),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--dir", type=Path, help="where to write (default: a temporary folder; fsync costs depend on it)")
    args = ap.parse_args()
    tpl = templates()
    line_bytes = len(_line(batch(0, tpl))) + 1
    print(f"batch line {line_bytes / 1e3:.0f} kB ({BATCH_SHOTS} slots, d=3 default device shape)")
    print(f"{'shots':>8} {'batches':>7} | {'old: MB written':>15} {'ms/batch':>9} {'last ms':>8} | "
          f"{'new: MB written':>15} {'ms/batch':>9} {'last ms':>8} | {'old/new bytes':>13}")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for shots in args.shots:
            n = max(1, -(-shots // BATCH_SHOTS))
            old = run_old(Path(tmp) / f"old_{shots}.jsonl", n, tpl)
            new = run_new(Path(tmp) / f"new_{shots}.h5", n, tpl)
            rows.append({"shots": n * BATCH_SHOTS, "batches": n, "old": old, "new": new})
            print(f"{n * BATCH_SHOTS:>8} {n:>7} | {old['bytes_written'] / 1e6:>15.1f} {old['ms_per_batch_mean']:>9.2f} "
                  f"{old['ms_last_batch']:>8.2f} | {new['bytes_written'] / 1e6:>15.1f} "
                  f"{new['ms_per_batch_mean']:>9.2f} {new['ms_last_batch']:>8.2f} | "
                  f"{old['bytes_written'] / new['bytes_written']:>13.1f}")  # fmt: skip
            for p in Path(tmp).iterdir():
                p.unlink()
    a, b = rows[0], rows[-1]
    growth = b["shots"] / a["shots"]
    print(f"shots x{growth:g}: old bytes x{b['old']['bytes_written'] / a['old']['bytes_written']:.0f}, "
          f"new bytes x{b['new']['bytes_written'] / a['new']['bytes_written']:.0f} (linear: x{growth:g}); "
          f"new bytes per batch {min(r['new']['bytes_last_batch'] for r in rows)} to "
          f"{max(r['new']['bytes_last_batch'] for r in rows)}")  # fmt: skip
    print(json.dumps({"bench": "results", "batch_shots": BATCH_SHOTS, "batch_line_bytes": line_bytes, "runs": rows}))


if __name__ == "__main__":
    main()
