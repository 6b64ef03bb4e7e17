"""The Clifford proxies against the exact state vector at d = 3: logical error and acceptance side by side.

    python tools/proxy_factor.py [--runs 3000] [--proxy-shots 2000000] [--seed 0] [--p 1e-4 3e-4 1e-3]

The proxy figure is the paper's sum of the two proxies' components (Z-type from proxy X, X-type from
proxy Z); the factor is proxy / exact. Ends with one JSON line holding every figure. Run times are wall
clock on this machine, printed for the record only.
"""

from __future__ import annotations

import argparse
import json
import time

from ctrl.collect.cluster import local
from ctrl.noise.models import UniformNoise
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.sim.report import simulate
from ctrl.sim.statevector import sample_exact, single_faults


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000, help="sampled state-vector runs per p")
    parser.add_argument("--proxy-shots", type=int, default=2_000_000, help="Stim shots per proxy per p")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--p", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3])
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)

    circuit = cn20_protocol(3)
    t0 = time.perf_counter()
    singles = single_faults(circuit, args.workers)
    t_singles = time.perf_counter() - t0
    broken = len(singles.failures())
    print(f"single faults: {len(singles.pauli)} runs in {t_singles:.1f} s, {broken} break the protocol")

    rows = []
    for p in args.p:
        noise = UniformNoise(p)
        t0 = time.perf_counter()
        exact = sample_exact(circuit, noise, args.runs, args.seed, args.workers)
        t_exact = time.perf_counter() - t0
        t0 = time.perf_counter()
        proxy = simulate(3, noise, args.proxy_shots, method="proxy", seed=args.seed, executor=local(args.workers))
        t_proxy = time.perf_counter() - t0
        z_type = proxy["components"]["Z-type (proxy X)"]
        x_type = proxy["components"]["X-type (proxy Z)"]
        lo, hi = exact["logical_error_rate_ci95"]
        plo, phi = proxy["logical_error_rate_ci95"]
        rows.append(
            {
                "p": p,
                "exact_logical_error": exact["logical_error_rate"],
                "exact_logical_error_ci95": [lo, hi],
                "exact_acceptance": exact["acceptance"],
                "exact_acceptance_ci95": exact["acceptance_ci95"],
                "exact_runs": args.runs,
                "exact_strata": exact["exact"]["strata"],
                "proxy_logical_error": proxy["logical_error_rate"],
                "proxy_logical_error_ci95": [plo, phi],
                "proxy_z_type": z_type["logical_error_rate"],
                "proxy_x_type": x_type["logical_error_rate"],
                "proxy_acceptance": proxy["acceptance"],
                "proxy_shots": args.proxy_shots,
                "factor": _ratio(proxy["logical_error_rate"], exact["logical_error_rate"]),
                "factor_range95": [_ratio(plo, hi), _ratio(phi, lo)],
                "exact_over_p2": exact["logical_error_rate"] / p**2,
                "proxy_over_p2": proxy["logical_error_rate"] / p**2,
                "seconds_exact": round(t_exact, 1),
                "seconds_proxy": round(t_proxy, 1),
            }
        )

    def f(x: float | None) -> str:
        return "   n/a  " if x is None else f"{x:8.2e}"

    print()
    print("       p  exact p_L [95% CI]              proxy p_L (Z-type + X-type)       factor [95% range]  "
          "exact acc  proxy acc  exact s")
    for r in rows:
        lo, hi = r["exact_logical_error_ci95"]
        flo, fhi = r["factor_range95"]
        factor = "n/a" if r["factor"] is None else f"{r['factor']:.2f}"
        flo = "n/a" if flo is None else f"{flo:.2f}"
        fhi = "inf" if fhi is None else f"{fhi:.2f}"
        print(
            f"{r['p']:8.0e}  {f(r['exact_logical_error'])} [{f(lo)}, {f(hi)}]  {f(r['proxy_logical_error'])} "
            f"({f(r['proxy_z_type'])} + {f(r['proxy_x_type'])})  {factor:>6} [{flo}, {fhi}]  "
            f"{r['exact_acceptance']:.4f}     {r['proxy_acceptance']:.4f}     {r['seconds_exact']:.0f}"
        )
    print(json.dumps({"distance": 3, "seed": args.seed, "single_fault_runs": len(singles.pauli),
                      "single_fault_failures": len(singles.failures()),
                      "seconds_single_faults": round(t_singles, 1), "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
