"""Batch post-selection speed: ctrl's decision program on bit-packed records against a straightforward
numpy evaluation of the same parities on unpacked bits, 10^6 noisy shots, d=3 and d=5, in one run.

    python tools/bench_realtime.py [--shots N]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ctrl.noise.models import UniformNoise
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.realtime.decision import decision_program, evaluate_batch, reference_accepts
from ctrl.sim.lower import to_stim


def best_of(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=int, default=1_000_000)
    ap.add_argument("--p", type=float, default=1e-3)
    args = ap.parse_args()
    figures = {}
    print(f"{'d':>2} {'shots':>9} {'results':>8} | {'ctrl batch':>14} {'numpy unpacked':>15} | {'speed-up':>8}")
    for d in (3, 5):
        c = cn20_protocol(d)
        prog = decision_program(c, latency=4)
        n = len(prog.record)
        rec = to_stim(c, "X", UniformNoise(args.p)).compile_sampler(seed=1).sample(args.shots, bit_packed=True)
        packed = np.ascontiguousarray(rec[:, : prog.n_bytes])
        if n % 8:  # clear the ideal round's bits that share the last byte
            packed[:, -1] &= np.uint8((1 << (n % 8)) - 1)
        unpacked = np.unpackbits(packed, axis=1, bitorder="little")[:, :n]
        t_ctrl, aborts = best_of(lambda: evaluate_batch(prog, packed))
        t_ref, accepted = best_of(lambda: reference_accepts(prog, unpacked))
        assert ((aborts < 0) == accepted).all()
        rate_ctrl, rate_ref = args.shots / t_ctrl, args.shots / t_ref
        print(
            f"{d:>2} {args.shots:>9} {n:>8} | {rate_ctrl:>10.3g} /s {rate_ref:>11.3g} /s | {rate_ctrl / rate_ref:>7.1f}x"
        )
        figures[f"d{d}"] = {
            "shots": args.shots,
            "results_per_shot": n,
            "ctrl_decisions_per_s": rate_ctrl,
            "numpy_unpacked_decisions_per_s": rate_ref,
            "speedup": rate_ctrl / rate_ref,
            "acceptance": float((aborts < 0).mean()),
        }
    print(json.dumps({"bench_realtime": figures}, sort_keys=True))


if __name__ == "__main__":
    main()
