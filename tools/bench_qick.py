"""QICK emission figures: per device and board, the tProc v2 program's size against the firmware's limits,
and the time to emit it next to the time to compile the timed program (and to replay one slot offline).

    .venv/bin/python tools/bench_qick.py [--repeat N]

Prints a table and ends with one JSON line holding every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from ctrl.backends.qick import emit_qick, interpret
from ctrl.compile.pipeline import compile_program
from ctrl.device import load_device

ROOT = Path(__file__).resolve().parents[1]
CASES = [("planar16_d3", 3), ("grid55_d5", 3), ("heavyhex65_ecr", 3), ("grid25_cz", 3), ("grid55_d5", 5)]


def timed(fn, repeat: int, first: bool = False):
    """(result, median seconds), or the first call's seconds (`first`: later calls may hit a cache)."""
    out, times = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, times[0] if first else statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    figures = []
    print(f"{'device':<16}{'d':>2} {'compile s':>10} {'emit s':>8} {'replay s':>9}  board      "
          f"{'pmem':>11} {'wmem':>10} {'env %':>6} {'plays':>6} {'trig':>5} {'rt dec':>6} {'slack':>6}")  # fmt: skip
    for name, d in CASES:
        device = load_device(ROOT / "device_configs" / f"{name}.yaml")
        compiled, t_compile = timed(lambda: compile_program(device, d), 1, first=True)
        program = compiled.program
        programs, t_emit = timed(lambda: emit_qick(device, program), args.repeat)
        one, _ = timed(lambda: emit_qick(device, program, attempts=1), 1)
        t_replay, slack = 0.0, []
        for bp in one.boards:
            trace, t = timed(lambda: interpret(bp.dump_dict(), bp.firmware_dict(), lambda ro, t: -1e9), 1)
            t_replay += t
            slack.append(min(e.scheduled - e.issued for e in trace.events if e.kind in ("pulse", "trigger", "config")))
        rt = len(programs.report["realtime_decisions"])
        for i, bp in enumerate(programs.boards):
            u = bp.usage
            env = max((v["used"] / v["maxlen"] for v in u["envelope_samples"].values() if v["maxlen"]), default=0.0)
            head = f"{name:<16}{d:>2} {t_compile:>10.3f} {t_emit:>8.3f} {t_replay:>9.3f}" if i == 0 else " " * 48
            print(f"{head}  {bp.board:<10} {u['pmem_words']:>5}/{u['pmem_size']:<5} "
                  f"{u['wmem_words']:>4}/{u['wmem_size']:<5}"
                  f" {100 * env:>5.1f} {u['waveform_plays']:>6} {u['triggers']:>5} {rt:>6} {slack[i]:>6}")  # fmt: skip
            figures.append({
                "device": name, "distance": d, "board": bp.board, "pmem_words": u["pmem_words"],
                "pmem_size": u["pmem_size"], "wmem_words": u["wmem_words"], "wmem_size": u["wmem_size"],
                "envelope_fraction_max": round(env, 4), "waveform_plays": u["waveform_plays"],
                "triggers": u["triggers"], "realtime_decisions": rt, "compile_s": round(t_compile, 4),
                "emit_s": round(t_emit, 4), "replay_one_slot_s": round(t_replay, 4),
                "reset_cycles": programs.report["reset_cycles"], "attempt_cycles": program.duration,
                "abort_duration_cycles": program.abort_duration, "min_issue_slack_cycles": slack[i],
            })  # fmt: skip
    print("emit s: emit_qick (all boards, 1000 attempt slots, median) next to compile s: compile_program "
          "(placement to timed program, first call in the process);")
    print("replay s: the interpreter on a one-slot program, all results passing; slack: fewest timing cycles by "
          "which the tProc issues a timed instruction ahead of its time in that replay")
    print(json.dumps({"qick_emission": figures}, sort_keys=True))


if __name__ == "__main__":
    main()
