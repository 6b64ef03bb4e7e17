"""Does placement matter? ctrl's chosen placement against random fault-tolerant placements, one run.

    python tools/placement_vs_random.py [--device device_configs/heavyhex65_ecr.yaml] [--n 100]

Random candidates: the protocol adapted to the device from a random start with random data
assignment and no optimisation (or random subgraph embeddings where the device contains the layout).
Each is compiled (natives, schedule), then kept only if the compiled program keeps the protocol's
fault distance (d+1)/2 in both proxies: no set of fewer faults, anywhere in the program's Stim circuit
under uniform noise, passes every check and is decoded wrongly (`ctrl.sim.faults.undetected_failures`,
as the tests check compiled programs). ctrl's placement is held to the same check. The rejected count
is printed; a placement that loses fault tolerance is no fair competitor, its low-order failures aside.

Figures, each a probability, predicted with the device's calibration noise (at x1 and x0.1) to leading
order from Stim's error model, no sampling:

- acceptance: the probability that no fault with a check signature fires (X proxy).
- logical error per accepted state: per proxy, the sum over the smallest undetected failing sets of
  the product of p/(1-p) over their faults (1-p only for faults that fire checks: conditioning on
  acceptance means those others stayed silent), `ctrl.sim.faults.leading_order`; the proxies combined
  as 1-(1-e_X)(1-e_Z). Against Monte Carlo of the d=3 protocol under uniform noise (400k shots):
  p=0.003, this 3.6e-3, Monte Carlo 3.7e-3; p=0.02, this 0.149, Monte Carlo 0.165.
  A figure of 1 or more means the expansion does not hold there: null in JSON, "n/a" printed.

The last line is JSON with every figure (null where undefined, never NaN).
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
from ctrl.noise.models import UniformNoise
from ctrl.sim.faults import faults, leading_order, undetected_failures

ROOT = Path(__file__).resolve().parents[1]


def program_for(device, placement: Placement, distance: int) -> TimedProgram:
    return compile_program(device, distance, placement=placement).program


def keeps_fault_distance(program: TimedProgram, p: float = 1e-3) -> bool:
    # Uniform noise puts a fault on every location, so no weak spot hides behind a quiet qubit.
    d = program.distance
    n_faces = len(color_code(d).faces)
    for proxy in "XZ":
        mechanisms = faults(timed_to_stim(program, proxy, UniformNoise(p)), proxy, n_faces)
        if any(undetected_failures(mechanisms, d, size) for size in range(1, (d + 1) // 2)):
            return False
    return True


def predict(device, program: TimedProgram, scale: float) -> tuple[float, float | None]:
    """(acceptance, logical error per accepted state or None where the leading order fails)."""
    noise = CalibrationNoise(device, program.clock_hz, scale)
    n_faces = len(color_code(program.distance).faces)
    acceptance, ok = 1.0, 1.0
    for proxy in "XZ":
        acc, e = leading_order(timed_to_stim(program, proxy, noise), proxy, program.distance, n_faces)
        acceptance = acc if proxy == "X" else acceptance
        if not e < 1:
            return acceptance, None
        ok *= 1 - e
    return acceptance, 1 - ok


def _median(values: list) -> float | None:
    # An undefined error is one whose leading order reached 1: larger than any defined one, so it ranks
    # last rather than being dropped (dropping the worst would flatter the random side's median).
    if not values:
        return None
    ranked = sorted(values, key=lambda v: (v is None, v or 0.0))
    n = len(ranked)
    middle = ranked[(n - 1) // 2 : n // 2 + 1]
    return None if None in middle else statistics.mean(middle)


def _g(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=str(ROOT / "device_configs" / "heavyhex65_ecr.yaml"))
    ap.add_argument("--n", type=int, default=100, help="random candidates drawn, before the fault-tolerance filter")
    ap.add_argument("--distance", type=int, default=3)
    args = ap.parse_args()
    device = load_device(args.device)
    chosen = compile_program(device, args.distance)
    chosen_ft = keeps_fault_distance(chosen.program)
    code = color_code(args.distance)
    graph = device.graph(usable_only=True)
    rng = random.Random(1)
    kept = []
    for _ in range(args.n):
        emb = random_embedding(code, graph, rng)
        placement = Placement("random", emb.layout, tuple(str(v) for v in emb.nodes), 0.0, 1)
        program = program_for(device, placement, args.distance)
        if keeps_fault_distance(program):
            kept.append(program)
    rejected = args.n - len(kept)
    figures = {
        "device": device.name, "distance": args.distance, "random_candidates": args.n,
        "random_rejected_not_fault_tolerant": rejected, "random_fault_tolerant": len(kept),
        "ctrl_keeps_fault_distance": chosen_ft,
    }  # fmt: skip
    print(f"{device.name}, d={args.distance}: ctrl's placement against random placements that keep fault "
          f"distance {(args.distance + 1) // 2}")  # fmt: skip
    print(f"  random candidates {args.n}: {rejected} rejected (compiled program loses fault distance), "
          f"{len(kept)} kept; ctrl's placement {'keeps' if chosen_ft else 'LOSES'} it")  # fmt: skip
    print(f"  {'calibration':<11} | {'acceptance: ctrl':>16} {'random median':>13} | "
          f"{'logical error per accepted: ctrl':>32} {'random median':>13} | {'random worse on both':>20}")
    for scale in (1.0, 0.1):
        ours = predict(device, chosen.program, scale)
        theirs = [predict(device, program, scale) for program in kept]
        med_acc = _median([a for a, _ in theirs])
        med_err = _median([e for _, e in theirs])
        undefined = sum(1 for _, e in theirs if e is None)
        # A random placement whose error is undefined is not counted as worse: that would be a guess.
        better = sum(1 for a, e in theirs if e is not None and ours[1] is not None and ours[0] > a and ours[1] < e)
        print(f"  x{scale:<10g} | {_g(ours[0]):>16} {_g(med_acc):>13} | {_g(ours[1]):>32} {_g(med_err):>13} | "
              f"{better:>9}/{len(theirs)}" + (f"  ({undefined} random undefined)" if undefined else ""))  # fmt: skip
        figures[f"x{scale:g}"] = {
            "ctrl_acceptance": ours[0], "median_random_acceptance": med_acc,
            "ctrl_logical_error": ours[1], "median_random_logical_error": med_err,
            "random_worse_on_both": better, "random_logical_error_undefined": undefined,
        }  # fmt: skip
    print(json.dumps({"placement_vs_random": figures}, sort_keys=True, allow_nan=False))


if __name__ == "__main__":
    main()
