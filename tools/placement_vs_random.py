"""Does placement matter? ctrl's chosen placement against 100 random valid placements, one run.

    python tools/placement_vs_random.py [--device device_configs/heavyhex65_ecr.yaml] [--n 100]

Random valid placements: the protocol adapted to the device from a random start with random data
assignment and no optimisation (or random subgraph embeddings where the device contains the layout).
Each is compiled (natives, schedule) and predicted with the device's calibration noise to leading order
from Stim's error model (`ctrl.sim.faults.leading_order`), both proxies: acceptance, and logical error
per accepted state. The last line is JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

from ctrl.backends.stim import timed_to_stim
from ctrl.codes.color import color_code
from ctrl.compile.embed import random_embedding
from ctrl.compile.pipeline import compile_program
from ctrl.compile.placement import Placement
from ctrl.compile.timed import TimedProgram
from ctrl.device import load_device
from ctrl.noise.calibration import CalibrationNoise
from ctrl.sim.faults import leading_order

ROOT = Path(__file__).resolve().parents[1]


def program_for(device, placement: Placement, distance: int) -> TimedProgram:
    return compile_program(device, distance, placement=placement).program


def predict(device, program: TimedProgram, scale: float) -> tuple[float, float]:
    noise = CalibrationNoise(device, program.clock_hz, scale)
    d = program.distance
    faces = len(color_code(d).faces)
    acc, err = 1.0, 0.0
    for proxy in "XZ":
        a, e = leading_order(timed_to_stim(program, proxy, noise), proxy, d, faces)
        acc = a if proxy == "X" else acc
        err += e
    return acc, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=str(ROOT / "device_configs" / "heavyhex65_ecr.yaml"))
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--distance", type=int, default=3)
    args = ap.parse_args()
    device = load_device(args.device)
    chosen = compile_program(device, args.distance)
    code = color_code(args.distance)
    graph = device.graph(usable_only=True)
    rng = random.Random(1)
    randoms = []
    for _ in range(args.n):
        emb = random_embedding(code, graph, rng)
        randoms.append(Placement("random", emb.layout, tuple(str(v) for v in emb.nodes), 0.0, 1))
    figures = {"device": device.name, "distance": args.distance, "random_placements": len(randoms)}
    print(f"{device.name}, d={args.distance}: ctrl's placement against {len(randoms)} random valid placements")
    for scale in (1.0, 0.1):
        ours = predict(device, chosen.program, scale)
        theirs = [predict(device, program_for(device, p, args.distance), scale) for p in randoms]
        med_acc = statistics.median(a for a, _ in theirs)
        med_err = statistics.median(e for _, e in theirs)
        better = sum(1 for a, e in theirs if ours[0] > a and ours[1] < e)
        print(f"  calibration x{scale:g}: acceptance {ours[0]:.3g} vs median {med_acc:.3g};"
              f" logical error per accepted {ours[1]:.3g} vs median {med_err:.3g};"
              f" better on both than {better}/{len(theirs)}")  # fmt: skip
        figures[f"x{scale:g}"] = {
            "ctrl_acceptance": ours[0], "median_random_acceptance": med_acc,
            "ctrl_logical_error": ours[1], "median_random_logical_error": med_err,
            "random_worse_on_both": better,
        }  # fmt: skip
    print(json.dumps({"placement_vs_random": figures}, sort_keys=True))


if __name__ == "__main__":
    main()
