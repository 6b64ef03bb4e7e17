"""The Clifford proxies against the exact state vector on the compiled program of the default device.

    python tools/proxy_factor_device.py [--runs 3000] [--proxy-shots 1000000] [--seed 0] [--scales 1 0.3 0.1]

For each scale s, calibration noise times s (`calibration*s`): exact acceptance and logical error per
accepted state (`ctrl.emulate.exact.exact_compiled`: every pulse at its real angle, single faults all run,
`--runs` sampled configurations of two or more faults) beside the emulator's proxy figures (Z-type from
proxy X plus X-type from proxy Z), and the factor proxy / exact with the range the two 95% intervals
allow. Ends with one JSON line holding every figure. Run times are wall clock on this machine, printed
for the record only.
"""

from __future__ import annotations

import argparse
import json
import time

from ctrl.compile.pipeline import compile_program
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.emulate.exact import exact_compiled, exact_target
from ctrl.noise.calibration import CalibrationNoise
from ctrl.sim.statevector import single_faults


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000, help="sampled state-vector runs per scale")
    parser.add_argument("--proxy-shots", type=int, default=1_000_000, help="Stim shots per proxy per scale")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.3, 0.1])
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)

    device = load_device(DEFAULT_DEVICE)
    program = compile_program(device, 3).program
    print(f"{program!r}")
    # Every scale shares one single-fault table (the outcomes do not depend on the strengths): once.
    t0 = time.perf_counter()
    singles = single_faults(exact_target(program, CalibrationNoise(device, program.clock_hz)), args.workers)
    t_singles = time.perf_counter() - t0
    print(f"single faults: {len(singles.pauli)} runs in {t_singles:.1f} s, {len(singles.failures())} break the program")

    rows = []
    for scale in args.scales:
        spec = "calibration" if scale == 1 else f"calibration*{scale:g}"
        t0 = time.perf_counter()
        r = exact_compiled(device, program, spec, args.runs, args.seed, args.proxy_shots, args.workers)
        seconds = time.perf_counter() - t0
        exact, proxy = r["exact"], r["proxy"]
        rows.append(
            {
                "noise": r["noise"],
                "scale": scale,
                "exact_acceptance": exact["acceptance"],
                "exact_acceptance_ci95": exact["acceptance_ci95"],
                "exact_logical_error": exact["logical_error_rate"],
                "exact_logical_error_ci95": exact["logical_error_rate_ci95"],
                "exact_runs": args.runs,
                "exact_sampled_runs": exact["exact"]["sampled_runs"],
                "exact_p_faults": exact["exact"]["p_faults"],
                "exact_strata": exact["exact"]["strata"],
                "exact_single_fault_logical_error": exact["exact"]["single_fault_logical_error"],
                "exact_single_fault_failures": len(exact["exact"]["single_fault_failures"]),
                "proxy_acceptance": proxy["acceptance"],
                "proxy_acceptance_ci95": proxy["acceptance_ci95"],
                "proxy_acceptance_by_proxy": proxy["acceptance_by_proxy"],
                "proxy_logical_error": proxy["logical_error_rate"],
                "proxy_logical_error_ci95": proxy["logical_error_rate_ci95"],
                "proxy_components": proxy["components"],
                "proxy_shots": args.proxy_shots,
                "factor": r["factor"],
                "factor_range95": r["factor_range95"],
                "seconds": round(seconds, 1),
            }
        )

    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2e}"

    def g(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    columns = [("noise", 17), ("exact acc [95% CI]", 24), ("proxy acc X / Z", 16), ("exact p_L [95% CI]", 30),
               ("proxy p_L [95% CI]", 30), ("factor [95% range]", 20), ("s", 5)]  # fmt: skip
    print()
    print("  ".join(f"{name:<{width}}" for name, width in columns).rstrip())
    for r in rows:
        alo, ahi = r["exact_acceptance_ci95"]
        lo, hi = r["exact_logical_error_ci95"]
        plo, phi = r["proxy_logical_error_ci95"]
        flo, fhi = r["factor_range95"]
        byp = r["proxy_acceptance_by_proxy"]
        cells = [
            r["noise"],
            f"{r['exact_acceptance']:.4f} [{alo:.4f}, {ahi:.4f}]",
            f"{byp['X']:.4f} / {byp['Z']:.4f}",
            f"{f(r['exact_logical_error'])} [{f(lo)}, {f(hi)}]",
            f"{f(r['proxy_logical_error'])} [{f(plo)}, {f(phi)}]",
            f"{g(r['factor'])} [{g(flo)}, {'inf' if fhi is None else g(fhi)}]",
            f"{r['seconds']:.0f}",
        ]
        print("  ".join(f"{cell:<{width}}" for cell, (_, width) in zip(cells, columns)).rstrip())
    print(json.dumps({"device": program.device, "distance": 3, "seed": args.seed, "qubits": list(program.qubits),
                      "single_fault_runs": len(singles.pauli), "single_fault_failures": len(singles.failures()),
                      "seconds_single_faults": round(t_singles, 1), "rows": rows}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
