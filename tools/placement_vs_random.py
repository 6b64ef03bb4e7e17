"""Does placement matter? ctrl's chosen placement against random fault-tolerant placements, one run.

    python tools/placement_vs_random.py [--device FILE [--device FILE ...]] [--n 100] [--distance 3]

Any device file `ctrl validate` accepts works (a shipped one, an imported lab snapshot); each is
compared in turn. Per device it prints ctrl's expected faults per attempt (the placement's first-order
score) against the best and the median of the random placements that keep fault distance, then the
predictions below.

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

The last line is JSON with every figure of every device (null where undefined, never NaN).
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
from ctrl.compile.placement import Placement, _cost, _shape, _usable, random_embeddings, typical_step_s
from ctrl.errors import CtrlError
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


def compare(path: str, n: int, distance: int) -> dict:
    """One device: ctrl's placement against `n` random ones (printed); every figure, for the JSON line."""
    device = load_device(path)
    chosen = compile_program(device, distance)
    chosen_ft = keeps_fault_distance(chosen.program)
    code = color_code(distance)
    graph = device.graph(usable_only=True)
    step_s = typical_step_s(device)
    draws = []
    if chosen.placement.method == "subgraph":
        # the device holds the protocol's own layout: random places of that layout are the naive choice
        layout = chosen.placement.layout
        couplers, n_qubits, _ = _shape(distance, layout)
        nodes, edges = _usable(device, frozenset())
        draws = [(layout, q) for q in random_embeddings(nodes, edges, couplers, n_qubits, n, seed=1)]
    else:
        rng = random.Random(1)
        for _ in range(n):
            try:
                emb = random_embedding(code, graph, rng)
            except CtrlError:  # counted as not drawn, not as rejected
                continue
            draws.append((emb.layout, tuple(str(v) for v in emb.nodes)))
    kept, kept_costs = [], []
    for layout, names in draws:
        cost = _cost(_shape(distance, layout)[2], names, device, step_s)
        placement = Placement("random", layout, names, cost, 1)
        program = program_for(device, placement, distance)
        if keeps_fault_distance(program):
            kept.append(program)
            kept_costs.append(cost)
    rejected = len(draws) - len(kept)
    ours_cost = chosen.placement.cost
    best_cost = min(kept_costs) if kept_costs else None
    median_cost = statistics.median(kept_costs) if kept_costs else None
    figures = {
        "device": device.name, "device_file": str(path), "distance": distance, "random_candidates": len(draws),
        "random_rejected_not_fault_tolerant": rejected, "random_fault_tolerant": len(kept),
        "ctrl_keeps_fault_distance": chosen_ft, "ctrl_placement_method": chosen.placement.method,
        "ctrl_expected_faults": ours_cost, "best_random_expected_faults": best_cost,
        "median_random_expected_faults": median_cost,
        "random_cheaper_than_ctrl": sum(1 for c in kept_costs if c < ours_cost),
    }  # fmt: skip
    print(f"{device.name} ({path}), d={distance}: ctrl's placement against random placements that keep fault "
          f"distance {(distance + 1) // 2}")  # fmt: skip
    print(f"  random candidates {len(draws)} of {n} drawn: {rejected} rejected (compiled program loses fault distance), "
          f"{len(kept)} kept; ctrl's placement {'keeps' if chosen_ft else 'LOSES'} it")  # fmt: skip
    print(f"  expected faults per attempt: ctrl {_g(ours_cost)}, random best {_g(best_cost)}, "
          f"random median {_g(median_cost)} ({figures['random_cheaper_than_ctrl']}/{len(kept)} random cheaper)")
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
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", action="append", help="a device file; repeat for several (default: heavyhex65_ecr)")
    ap.add_argument("--n", type=int, default=100, help="random candidates drawn, before the fault-tolerance filter")
    ap.add_argument("--distance", type=int, default=3)
    args = ap.parse_args()
    paths = args.device or [str(ROOT / "device_configs" / "heavyhex65_ecr.yaml")]
    every = [compare(path, args.n, args.distance) for path in paths]
    print(json.dumps({"placement_vs_random": every}, sort_keys=True, allow_nan=False))


if __name__ == "__main__":
    main()
