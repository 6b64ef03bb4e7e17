"""QICK emission figures: per device and board, the tProc v2 program's size against the firmware's limits,
the time to emit it next to the time to compile the timed program, the time to patch it for a pulse-only
recalibration instead (and to replay one slot offline).

    .venv/bin/python tools/bench_qick.py [--repeat N]

Prints a table and ends with one JSON line holding every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from ctrl.backends.qick import emit_qick, interpret, patch_qick
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


def recalibrated(folder: Path, name: str):
    """The device with every x90 amplitude +1 %, every readout threshold +0.5 and every gate's virtual-Z
    correction +0.01 rad: a pulse-only recalibration that reaches amplitudes, thresholds and every frame."""
    doc = yaml.safe_load((ROOT / "device_configs" / f"{name}.yaml").read_text())
    for q in doc["calibration"]["qubits"]:
        q["x90"]["pulse"]["amplitude"] = round(q["x90"]["pulse"]["amplitude"] * 1.01, 6)
        q["readout"]["threshold"] = q["readout"]["threshold"] + 0.5
    for c in doc["calibration"]["couplers"]:
        c["phase_corrections_rad"] = {k: round(v + 0.01, 9) for k, v in c.get("phase_corrections_rad", {}).items()}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_device(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    figures = []
    print(f"{'device':<16}{'d':>2} {'compile s':>10} {'emit s':>8} {'patch s':>8} {'replay s':>9}  board      "
          f"{'pmem':>11} {'wmem':>10} {'env %':>6} {'plays':>6} {'trig':>5} {'rt dec':>6} {'slack':>6}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "firmware").symlink_to(ROOT / "device_configs" / "firmware")
        for name, d in CASES:
            device = load_device(ROOT / "device_configs" / f"{name}.yaml")
            compiled, t_compile = timed(lambda: compile_program(device, d), 1, first=True)
            program = compiled.program
            programs, t_emit = timed(lambda: emit_qick(device, program), args.repeat)
            new = recalibrated(folder, name)
            new_program = compile_program(new, d, placement=compiled.placement).program
            patched, t_patch = timed(lambda: patch_qick(programs, new), max(args.repeat, 5))
            full = emit_qick(new, new_program)
            same = all(a.dump == b.dump and a.asm == b.asm for a, b in zip(patched.boards, full.boards))
            one, _ = timed(lambda: emit_qick(device, program, attempts=1), 1)
            t_replay, slack = 0.0, []
            for bp in one.boards:
                trace, t = timed(lambda: interpret(bp.dump_dict(), bp.firmware_dict(), lambda ro, t: -1e9), 1)
                t_replay += t
                slack.append(min(e.scheduled - e.issued for e in trace.events
                                 if e.kind in ("pulse", "trigger", "config")))  # fmt: skip
            rt = len(programs.report["realtime_decisions"])
            for i, bp in enumerate(programs.boards):
                u = bp.usage
                env = max((v["used"] / v["maxlen"] for v in u["envelope_samples"].values() if v["maxlen"]),
                          default=0.0)  # fmt: skip
                head = (f"{name:<16}{d:>2} {t_compile:>10.3f} {t_emit:>8.3f} {t_patch:>8.4f} {t_replay:>9.3f}"
                        if i == 0 else " " * 57)  # fmt: skip
                print(f"{head}  {bp.board:<10} {u['pmem_words']:>5}/{u['pmem_size']:<5} "
                      f"{u['wmem_words']:>4}/{u['wmem_size']:<5}"
                      f" {100 * env:>5.1f} {u['waveform_plays']:>6} {u['triggers']:>5} {rt:>6} "
                      f"{slack[i]:>6}")  # fmt: skip
                figures.append({
                    "device": name, "distance": d, "board": bp.board, "pmem_words": u["pmem_words"],
                    "pmem_size": u["pmem_size"], "wmem_words": u["wmem_words"], "wmem_size": u["wmem_size"],
                    "envelope_fraction_max": round(env, 4), "waveform_plays": u["waveform_plays"],
                    "triggers": u["triggers"], "realtime_decisions": rt, "compile_s": round(t_compile, 4),
                    "emit_s": round(t_emit, 4), "patch_s": round(t_patch, 5), "patch_equals_emission": same,
                    "replay_one_slot_s": round(t_replay, 4), "reset_cycles": programs.report["reset_cycles"],
                    "attempt_cycles": program.duration, "abort_duration_cycles": program.abort_duration,
                    "min_issue_slack_cycles": slack[i],
                })  # fmt: skip
    print("emit s: emit_qick (all boards, 1000 attempt slots, median) next to compile s: compile_program "
          "(placement to timed program, first call in the process);")
    print("patch s: patch_qick of those programs for a pulse-only recalibration (every x90 amplitude +1 %, every "
          "threshold +0.5, every virtual-Z correction +0.01 rad), median; byte-equal to emit_qick of it: "
          + ("yes" if all(f["patch_equals_emission"] for f in figures) else "NO"))
    print("replay s: the interpreter on a one-slot program, all results passing; slack: fewest timing cycles by "
          "which the tProc issues a timed instruction ahead of its time in that replay")
    print(json.dumps({"qick_emission": figures}, sort_keys=True))


if __name__ == "__main__":
    main()
