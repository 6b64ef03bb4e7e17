"""Emulator throughput: shots per second through ctrl's emulator (sampling, real-time post-selection,
ideal-round decoding) against raw Stim detector sampling of the same circuit (the limit), one run.

    python tools/bench_emulator.py [--shots N]
"""

from __future__ import annotations

import argparse
import json
import time

from ctrl.collect.task import sample
from ctrl.compile.pipeline import compile_program
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.emulate.run import emulation_task, noise_for

CASES = [(DEFAULT_DEVICE, 3), (DEFAULT_DEVICE.parent / "grid55_d5.yaml", 5)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=int, default=200_000)
    ap.add_argument("--noise", default="calibration*0.1")
    args = ap.parse_args()
    rows = []
    print(f"{'device':<14} {'d':>2} | {'ctrl emulator':>14} {'raw stim':>14} | {'ratio':>5} | accepted")
    for path, d in CASES:
        device = load_device(path)
        program = compile_program(device, d).program
        task = emulation_task(device, program, "X", noise_for(args.noise, device, program))
        circuit = task.circuit
        best_raw = best_ctrl = float("inf")
        for rep in range(3):
            t0 = time.perf_counter()
            circuit.compile_detector_sampler(seed=rep).sample(args.shots, separate_observables=True, bit_packed=True)
            best_raw = min(best_raw, time.perf_counter() - t0)
            t0 = time.perf_counter()
            accepted = sample(task, args.shots, rep).accepted
            best_ctrl = min(best_ctrl, time.perf_counter() - t0)
        row = {
            "device": device.name, "distance": d, "noise": args.noise, "shots": args.shots,
            "ctrl_shots_per_s": args.shots / best_ctrl, "raw_stim_shots_per_s": args.shots / best_raw,
            "ratio": best_raw / best_ctrl, "accepted_fraction": accepted / args.shots,
            "ctrl_accepted_per_s": accepted / best_ctrl,
        }  # fmt: skip
        rows.append(row)
        print(f"{device.name:<14} {d:>2} | {row['ctrl_shots_per_s']:>10.3g} /s {row['raw_stim_shots_per_s']:>10.3g} /s | "
              f"{row['ratio']:>5.2f} | {row['accepted_fraction']:.3f}")  # fmt: skip
    print(json.dumps({"bench_emulator": rows}, sort_keys=True))


if __name__ == "__main__":
    main()
