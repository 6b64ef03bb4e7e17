"""Reproduce the CN20 paper's table (its data; docs/protocol.md, "Against the paper") side by side with the paper, in one run.

    python tools/reproduce_cn20.py [--distance 3 5] [--shots-d3 N] [--shots-d5 N] [--exact-runs N] [--cluster SPEC]

For each distance and p: acceptance, logical error per accepted state (Clifford proxies, Z-type + X-type;
for d=3 also the exact state vector), qubits, time steps, expected qubits (qubits / acceptance), and the
fitted coefficient p_L / p^((d+1)/2). The paper's values stand beside ours; the last line is JSON.
The proxies are sampled where `--cluster` says (`ctrl.collect.cluster`: local processes by default, a Dask
scheduler or Slurm for the low-p rows; docs/cluster.md estimates what the full table needs).
"""

from __future__ import annotations

import argparse
import json
import time

from ctrl.collect.cluster import executor
from ctrl.noise.models import UniformNoise
from ctrl.sim.report import simulate

# The paper's data (CN20, npj QI 6, 91, 2020; docs/protocol.md, "Against the paper"). Rows without a printed value use the paper's fit.
PAPER = {
    (3, 1e-4): {"p_L": 3.45e-6, "acceptance": 0.970, "expected_qubits": 16.5},
    (3, 3e-4): {"p_L": 342 * 3e-4**2, "acceptance": None, "expected_qubits": None},
    (3, 1e-3): {"p_L": 3.40e-4, "acceptance": 0.741, "expected_qubits": 21.6},
    (5, 1e-4): {"p_L": 3.6e-8, "acceptance": 0.811, "expected_qubits": 67.8},
    (5, 3e-4): {"p_L": 44964 * 3e-4**3, "acceptance": None, "expected_qubits": None},
    (5, 1e-3): {"p_L": 4.6e-5, "acceptance": 0.124, "expected_qubits": 443},
}
PAPER_QUBITS = {3: 16, 5: 55}
PAPER_STEPS = {3: 36, 5: 76}


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots-d3", type=int, default=1_000_000)
    ap.add_argument("--shots-d5", type=int, default=2_000_000)
    ap.add_argument("--exact-runs", type=int, default=20000, help="state-vector runs per point (d=3)")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--distance", type=int, nargs="+", default=[3, 5], choices=(3, 5), help="rows to run")
    ap.add_argument("--cluster", default="local", help="local, local:N, tcp://HOST:PORT, tls://HOST:PORT, slurm[:N]")
    args = ap.parse_args()
    pool = executor(args.cluster)

    rows = []
    for (d, p), paper in PAPER.items():
        if d not in args.distance:
            continue
        t0 = time.perf_counter()
        shots = args.shots_d3 if d == 3 else args.shots_d5
        r = simulate(d, UniformNoise(p), shots, method="proxy", seed=args.seed, executor=pool)
        row = {
            "d": d,
            "p": p,
            "qubits": r["qubits"],
            "paper_qubits": PAPER_QUBITS[d],
            "time_steps": r["time_steps"],
            "paper_time_steps": PAPER_STEPS[d],
            "shots": r["shots"],
            "acceptance": r["acceptance"],
            "acceptance_ci95": r["acceptance_ci95"],
            "paper_acceptance": paper["acceptance"],
            "p_L": r["logical_error_rate"],
            "p_L_ci95": r["logical_error_rate_ci95"],
            "p_L_Z_type": r["components"]["Z-type (proxy X)"]["logical_error_rate"],
            "p_L_X_type": r["components"]["X-type (proxy Z)"]["logical_error_rate"],
            "paper_p_L": paper["p_L"],
            "coefficient": r["logical_error_rate"] / p ** ((d + 1) // 2),
            "expected_qubits": r["qubits"] / r["acceptance"] if r["acceptance"] else None,
            "paper_expected_qubits": paper["expected_qubits"],
        }
        if d == 3 and args.exact_runs:
            try:
                e = simulate(d, UniformNoise(p), args.exact_runs, method="statevector", seed=args.seed)
                row |= {"exact_acceptance": e["acceptance"], "exact_p_L": e["logical_error_rate"]}
            except ImportError:
                pass
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)

    head = (
        f"{'d':>2} {'p':>7} | {'qubits':>11} {'steps':>9} | {'acceptance':>15} | "
        f"{'p_L proxy (Z+X type)':>31} {'exact p_L':>9} | {'p_L/p^k':>15} | {'E[qubits]':>13}"
    )
    print(head)
    print(f"{'':>2} {'':>7} | {'ours/paper':>11} {'ours/pap':>9} | {'ours / paper':>15} | "
          f"{'ours [95% CI] / paper':>31} {'':>9} | {'ours / paper':>15} | {'ours / paper':>13}")
    print("-" * len(head))
    for r in rows:
        k = (r["d"] + 1) // 2
        paper_coef = r["paper_p_L"] / r["p"] ** k
        print(
            f"{r['d']:>2} {r['p']:>7.0e} | {r['qubits']:>5}/{r['paper_qubits']:<5} "
            f"{r['time_steps']:>4}/{r['paper_time_steps']:<4} | "
            f"{r['acceptance']:>6.3f} / {_fmt(r['paper_acceptance'], '>6.3f')} | "
            f"{r['p_L']:>8.2e} [{r['p_L_ci95'][0]:.1e},{r['p_L_ci95'][1]:.1e}] / {r['paper_p_L']:.2e} "
            f"{_fmt(r.get('exact_p_L'), '>9.2e')} | "
            f"{r['coefficient']:>6.0f} / {paper_coef:<6.0f} | "
            f"{_fmt(r['expected_qubits'], '>5.1f')} / {_fmt(r['paper_expected_qubits'], '<5.1f')}"
        )
    pool.close()
    print(json.dumps({"reproduce_cn20": rows}, sort_keys=True))


if __name__ == "__main__":
    main()
