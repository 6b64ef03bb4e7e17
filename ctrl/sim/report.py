"""`simulate`: the protocol's acceptance and logical error under a noise model, as one result record.

The proxy method samples both Clifford proxies of the protocol IR (`ctrl.sim.lower`) as `ctrl.collect`
tasks, post-selected by the protocol's own decision program (`protocol_decisions`): proxy X scores Z-type
output errors, proxy Z X-type ones, and the logical error per accepted state is the chance that either
fails (the paper's convention adds them: 342 p^2 = 279 p^2 Z-type + 63 p^2 X-type at d=3). Acceptance is
proxy X's.
"""

from __future__ import annotations

from ctrl.codes.color import check_distance
from ctrl.collect.run import collect
from ctrl.collect.stats import protocol_figures
from ctrl.collect.task import Task
from ctrl.errors import CtrlError
from ctrl.noise.models import UniformNoise
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.realtime.decision import protocol_decisions
from ctrl.sim.lower import to_stim
from ctrl.versions import versions


def protocol_task(distance: int, noise: UniformNoise, proxy: str) -> Task:
    """Proxy `proxy` of the protocol IR at distance `distance` under `noise`, as a sampling task."""
    circuit = cn20_protocol(distance)
    meta = {"protocol": "cn20", "d": distance, "noise": noise.name, "family": "uniform", "p": noise.p, "proxy": proxy}
    return Task(to_stim(circuit, proxy, noise), protocol_decisions(circuit), distance, proxy, len(circuit.code.faces), meta)


def simulate(
    distance: int, noise: UniformNoise, shots: int, method: str = "proxy", seed: int = 0, executor=None,
    progress=None, workers: int | None = None,
) -> dict:
    """`progress`, if given: for the proxy method `progress(task index, committed Stats)` per chunk, for the
    statevector method `progress(stage, done, total)` (`sample_exact`). The proxy method runs on `executor`
    (`ctrl.collect.cluster`, this process by default), the statevector method on `workers` local processes."""
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
        tasks = [protocol_task(distance, noise, proxy) for proxy in "XZ"]
        stats = collect(tasks, max_shots=shots, seed=seed, executor=executor, on_commit=progress)
        by_proxy = dict(zip("XZ", stats))
        return base | protocol_figures(by_proxy) | {"discards": by_proxy["X"].prefixed("abort")}
    if method == "statevector":
        from ctrl.sim.statevector import sample_exact

        return base | sample_exact(circuit, noise, shots, seed, workers, progress=progress)
    raise CtrlError(f"unknown method {method!r}: expected proxy or statevector")
