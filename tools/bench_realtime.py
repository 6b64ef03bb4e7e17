"""Batch post-selection speed: ctrl's decision program against the best plain numpy on the same
bit-packed records, 10^6 noisy shots, d=3 and d=5, in one run.

    python tools/bench_realtime.py [--shots N]

Both sides get the same (shots, bytes) uint8 records, bit-packed little-endian as Stim samples them,
and must give the same answer ctrl gives: for each shot the index of the decision point that aborts
it, or -1. Several plain numpy evaluations are timed and the fastest is the baseline (each is checked
to agree with ctrl on every shot first; one that disagrees is reported and never the baseline):

- `table`: per record byte, a 256-entry table of the earliest decision point among its checked bits;
  the minimum over the bytes (a loop over bytes, never over checks or shots).
- `argmax_lut`: mask the bytes, the first nonzero byte by argmax, its lowest set bit from a 256-entry
  table, that bit's decision point.
- `u64_views` (records of 8 bytes or more): the record as two overlapping unaligned uint64 views (no
  copy, no padding), masked, the lowest set bit from the float exponent of its isolated power of two.

Every check of the protocol is a single result, so acceptance alone is one masked OR over the bytes.
That answers less (accepted or not, not where the attempt would have stopped), so it is printed in a
column of its own, the fastest of `bytes_or` (OR of masked byte columns) and `u64_views`, not as the
baseline. Both sides are checked against the plain definition (`reference_accepts`, every check's
parity on unpacked bits), outside the clock.

The last line is JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ctrl.noise.models import UniformNoise
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.realtime.decision import DecisionProgram, check_bits, evaluate_batch, protocol_decisions, reference_accepts
from ctrl.sim.lower import to_stim


def best_of(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _low_bit_index(w: np.ndarray) -> np.ndarray:
    # The isolated lowest bit is an exact power of two, so its index is the float64 exponent; zero
    # gives a very negative index, which the callers clip to -1.
    low = w & (~w + np.uint64(1))
    return (low.astype(np.float64).view(np.int64) >> 52) - 1023


def numpy_candidates(prog: DecisionProgram) -> tuple[dict, dict]:
    """Plain numpy evaluations of `prog` on packed records: (same answer as ctrl, acceptance only).
    Everything that depends only on the program is built here, outside the clock, as ctrl's is at
    import or in `protocol_decisions`."""
    nb = prog.n_bytes
    n_points = len(prog.points)
    point_of = {}
    for p in prog.points:
        for r in p.rules:
            bits = prog.rules[r].bits
            if len(bits) != 1:
                raise SystemExit("a check over several results: these baselines assume single-result checks")
            point_of[bits[0]] = min(point_of.get(bits[0], n_points), p.index)
    mask = np.zeros(nb, dtype=np.uint8)
    for b in point_of:
        mask[b // 8] |= np.uint8(1 << (b % 8))
    # The record's point of each bit position, -1 where no check looks; padded so that a clipped -1
    # index and the second view's offsets stay inside.
    point_of_bit = np.full(nb * 8 + 1, -1, dtype=np.int32)
    for b, p in point_of.items():
        point_of_bit[b] = p
    sentinel = n_points  # "no check fired in this byte"; mapped to -1 at the end
    table = np.full((nb, 256), sentinel, dtype=np.int32)
    for b, p in point_of.items():
        v = np.arange(256)
        hit = (v >> (b % 8)) & 1 == 1
        table[b // 8, hit] = np.minimum(table[b // 8, hit], p)
    small = table.astype(np.uint8) if sentinel < 256 else table
    lowest = np.array([(v & -v).bit_length() - 1 if v else 0 for v in range(256)], dtype=np.int64)

    def by_table(packed):
        out = small[0][packed[:, 0]]
        for j in range(1, nb):
            np.minimum(out, small[j][packed[:, j]], out=out)
        out = out.astype(np.int32)
        out[out == sentinel] = -1
        return out

    def by_argmax(packed):
        m = packed & mask
        first = np.argmax(m != 0, axis=1)
        val = m[np.arange(m.shape[0]), first]
        out = point_of_bit[8 * first + lowest[val]]
        out[val == 0] = -1
        return out

    def accept_bytes_or(packed):
        hit = packed[:, 0] & mask[0]
        for j in range(1, nb):
            hit |= packed[:, j] & mask[j]
        return hit == 0

    same = {"table": by_table, "argmax_lut": by_argmax}
    accept = {"bytes_or": accept_bytes_or}
    if nb >= 8:
        high = mask[nb - 8 :].copy()
        high[: 16 - nb] = 0  # those bytes are the first view's
        m0, m1 = mask[:8].copy().view("<u8")[0], high.view("<u8")[0]
        offset = 8 * (nb - 8)

        def words(packed):
            return packed[:, :8].view("<u8")[:, 0] & m0, packed[:, nb - 8 :].view("<u8")[:, 0] & m1

        def by_words(packed):
            w0, w1 = words(packed)
            index = np.where(w0 != 0, _low_bit_index(w0), offset + _low_bit_index(w1))
            return point_of_bit[np.maximum(index, -1)]

        def accept_words(packed):
            w0, w1 = words(packed)
            return (w0 | w1) == 0

        same["u64_views"] = by_words
        accept["u64_views"] = accept_words
    return same, accept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=int, default=1_000_000)
    ap.add_argument("--p", type=float, default=1e-3)
    args = ap.parse_args()
    figures = {}
    rows = []
    for d in (3, 5):
        c = cn20_protocol(d)
        prog = protocol_decisions(c, latency=4)
        n = len(prog.record)
        rec = to_stim(c, "X", UniformNoise(args.p)).compile_sampler(seed=1).sample(args.shots)
        checks = check_bits(prog, {k: rec[:, i] for i, k in enumerate(c.record)})
        packed = np.ascontiguousarray(np.packbits(checks, axis=1, bitorder="little"))
        same, accept = numpy_candidates(prog)
        t_ctrl, aborts = best_of(lambda prog=prog, packed=packed: evaluate_batch(prog, packed))
        unpacked = np.unpackbits(packed, axis=1, bitorder="little")[:, :n]
        assert ((aborts < 0) == reference_accepts(prog, unpacked)).all(), "ctrl disagrees with the definition"
        timed, wrong = {}, []
        for name, fn in same.items():
            t, out = best_of(lambda fn=fn, packed=packed: fn(packed))
            if np.array_equal(out, aborts):
                timed[name] = t
            else:
                wrong.append(name)
        timed_accept = {}
        for name, fn in accept.items():
            t, out = best_of(lambda fn=fn, packed=packed: fn(packed))
            if np.array_equal(out, aborts < 0):
                timed_accept[name] = t
            else:
                wrong.append(f"accept:{name}")
        best = min(timed, key=timed.get)
        best_accept = min(timed_accept, key=timed_accept.get)
        rate_ctrl = args.shots / t_ctrl
        rate_np = args.shots / timed[best]
        rate_acc = args.shots / timed_accept[best_accept]
        rows.append((d, n, rate_ctrl, best, rate_np, best_accept, rate_acc, wrong))
        figures[f"d{d}"] = {
            "shots": args.shots,
            "results_per_shot": n,
            "record_bytes": prog.n_bytes,
            "ctrl_decisions_per_s": rate_ctrl,
            "numpy_best": best,
            "numpy_best_decisions_per_s": rate_np,
            "numpy_candidates_decisions_per_s": {k: args.shots / t for k, t in timed.items()},
            "ctrl_over_numpy": rate_ctrl / rate_np,
            "numpy_accept_only_best": best_accept,
            "numpy_accept_only_per_s": rate_acc,
            "numpy_accept_only_candidates_per_s": {k: args.shots / t for k, t in timed_accept.items()},
            "ctrl_over_numpy_accept_only": rate_ctrl / rate_acc,
            "numpy_candidates_disagreeing": wrong,
            "acceptance": float((aborts < 0).mean()),
        }
    print("shots per second, same packed records; ratio = ctrl/numpy (> 1: ctrl is faster)")
    print(f"{'d':>2} {'shots':>9} {'results':>7} | {'ctrl':>9} | {'best numpy, same answer':>34} {'ratio':>6} | "
          f"{'numpy, accept only':>30} {'ratio':>6}")  # fmt: skip
    for d, n, rate_ctrl, best, rate_np, best_accept, rate_acc, wrong in rows:
        print(
            f"{d:>2} {args.shots:>9} {n:>7} | {rate_ctrl:9.3g} | {best:>22} {rate_np:11.3g} "
            f"{rate_ctrl / rate_np:5.2f}x | {best_accept:>18} {rate_acc:11.3g} {rate_ctrl / rate_acc:5.2f}x"
            + (f"  (disagreed with ctrl, not timed as baseline: {', '.join(wrong)})" if wrong else "")
        )
    for d, _, rate_ctrl, best, rate_np, *_ in rows:
        if rate_ctrl < rate_np:
            print(f"d={d}: ctrl is SLOWER than plain numpy ({best}) on the same packed records: "
                  f"{rate_ctrl / rate_np:.2f}x its rate")
    print(json.dumps({"bench_realtime": figures}, sort_keys=True, allow_nan=False))


if __name__ == "__main__":
    main()
