"""`simulate`: the protocol's acceptance and logical error under a noise model, as one result record.

The proxy method samples both Clifford proxies with the same shot count: proxy X scores Z-type output
errors, proxy Z scores X-type ones, and the logical error rate is their sum (the paper's convention:
342 p^2 = 279 p^2 Z-type + 63 p^2 X-type at d=3). Acceptance is proxy X's.
"""

from __future__ import annotations

from ctrl.codes.color import check_distance
from ctrl.errors import CtrlError
from ctrl.noise.models import UniformNoise
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.sim.sample import per_accepted, sample_proxy, wilson
from ctrl.versions import versions


def simulate(
    distance: int, noise: UniformNoise, shots: int, method: str = "proxy", seed: int = 0, workers: int | None = None,
    progress=None,
) -> dict:
    """`progress(stage, done, total)`, if given, hears the statevector method's work (`sample_exact`)."""
    check_distance(distance)
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise CtrlError(f"shots must be a positive integer, got {shots!r}")
    if seed < 0:
        raise CtrlError(f"seed must be >= 0, got {seed}")
    circuit = cn20_protocol(distance)
    base = {
        "protocol": "cn20",
        "distance": distance,
        "noise": noise.name,
        "method": method,
        "seed": seed,
        "qubits": len(circuit.qubits),
        "time_steps": circuit.n_steps,
        "versions": versions(),
    }
    if method == "proxy":
        tallies = {proxy: sample_proxy(distance, noise, shots, proxy, seed, workers) for proxy in "XZ"}
        main = tallies["X"]
        errors = sum(t.errors for t in tallies.values())
        rate, ci = per_accepted((t.errors, t.accepted) for t in tallies.values())
        components = {
            label: {
                "accepted": t.accepted,
                "logical_errors": t.errors,
                "logical_error_rate": t.errors / t.accepted if t.accepted else None,
                "logical_error_rate_ci95": list(wilson(t.errors, t.accepted)) if t.accepted else None,
            }
            for label, t in (("Z-type (proxy X)", tallies["X"]), ("X-type (proxy Z)", tallies["Z"]))
        }
        return base | {
            "shots": main.shots,
            "accepted": main.accepted,
            "acceptance": main.accepted / main.shots,
            "acceptance_ci95": list(wilson(main.accepted, main.shots)),
            "logical_errors": errors,
            "logical_error_rate": rate,
            "logical_error_rate_ci95": ci,
            "components": components,
            "discards": main.discards,
        }
    if method == "statevector":
        from ctrl.sim.statevector import sample_exact

        return base | sample_exact(circuit, noise, shots, seed, progress=progress)
    raise CtrlError(f"unknown method {method!r}: expected proxy or statevector")
