"""Placement: which device qubit plays which protocol qubit.

Where the device's usable coupling graph contains the protocol's own layout, every embedding found by
subgraph matching (VF2, up to `limit`) is scored and the cheapest kept. Otherwise the protocol's ancilla
arrangement is adapted to the device (`ctrl.compile.embed`): a path of ancillas with the data qubits
beside it, so square grids and heavy-hex lattices (no odd cycles) host it without SWAPs.

The score is the expected number of faults in one attempt, from the calibration: gate errors of the
pulses and couplers each protocol operation becomes, readout errors, and idle decay (T1, T2) of every
live qubit over every time step. Lower means more attempts accepted and fewer accepted states wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
from networkx.algorithms import isomorphism

from ctrl.codes.color import color_code
from ctrl.compile.embed import embed_layout
from ctrl.errors import CtrlError
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.protocol.ir import MEASUREMENTS, PREPARATIONS, ProtocolCircuit
from ctrl.protocol.layout import Layout, build_layout


@dataclass(frozen=True)
class Placement:
    method: str  # "subgraph" (the protocol's layout as it is) or "adapted" (a layout found in the device)
    layout: Layout
    qubits: tuple[str, ...]  # device qubit of protocol qubit i
    cost: float  # expected faults per attempt
    considered: int  # embeddings scored

    def __repr__(self) -> str:
        return f"Placement({self.method}, {len(self.qubits)} qubits, cost={self.cost:.4f}, considered={self.considered})"


def place(distance: int, device, limit: int = 2000, exclude: frozenset[str] = frozenset()) -> Placement:
    graph = device.graph(usable_only=True)
    graph.remove_nodes_from(exclude)
    code = color_code(distance)
    layout = build_layout(code)
    circuit = cn20_protocol(distance, layout)
    pattern = nx.Graph(circuit.couplers)
    step_s = typical_step_s(device)
    best: tuple[float, tuple[str, ...]] | None = None
    considered = 0
    if pattern.number_of_nodes() <= graph.number_of_nodes():
        matcher = isomorphism.GraphMatcher(graph, pattern)
        for mapping in matcher.subgraph_monomorphisms_iter():
            inverse = {p: g for g, p in mapping.items()}
            names = tuple(inverse[i] for i in range(len(circuit.qubits)))
            cost = expected_faults(circuit, names, device, step_s)
            considered += 1
            if best is None or cost < best[0]:
                best = (cost, names)
            if considered >= limit:
                break
    if best is not None:
        return Placement("subgraph", layout, best[1], best[0], considered)
    rate = {q.name: step_s * (1 / q.t1_s + 1 / q.t2_echo_s) for q in device.qubits}
    emb = embed_layout(code, graph, node_cost=lambda v: 10 * rate.get(v, 0.0))
    circuit = cn20_protocol(distance, emb.layout)
    names = tuple(str(v) for v in emb.nodes)
    return Placement("adapted", emb.layout, names, expected_faults(circuit, names, device, step_s), 1)


def typical_step_s(device) -> float:
    """A protocol time step on this device: the median two-qubit gate duration."""
    durations = sorted(c.duration_s for c in device.couplers if c.usable)
    if not durations:
        raise CtrlError(f"device {device.name} has no usable coupler")
    return durations[len(durations) // 2]


def expected_faults(circuit: ProtocolCircuit, names: tuple[str, ...], device, step_s: float) -> float:
    """First-order fault count of one attempt under the calibration (see the module docstring)."""
    total = 0.0
    live: set[int] = set()
    busy_by_step: dict[int, set[int]] = {}
    for op in circuit.ops:
        busy_by_step.setdefault(op.step, set()).update(op.targets)
        qs = [device.qubit(names[i]) for i in op.targets]
        if op.name in PREPARATIONS:
            total += qs[0].x90.error if op.name != "R" else 0.0
        elif op.name in ("RY_P4", "RY_M4"):
            total += qs[0].x90.error
        elif op.name in ("CX", "CZ"):
            total += device.coupler(names[op.targets[0]], names[op.targets[1]]).error + 2 * qs[1].x90.error
        elif op.name in MEASUREMENTS:
            ro = qs[0].readout
            total += (ro.error_0to1 + ro.error_1to0) / 2 + (qs[0].x90.error if op.name == "MX" else 0.0)
    # Idling: every live qubit not acted on in a step decays for one step.
    for step, ops in circuit.steps():
        for op in ops:
            if op.name in PREPARATIONS:
                live.update(op.targets)
        for i in live - busy_by_step.get(step, set()):
            q = device.qubit(names[i])
            total += 1 - math.exp(-step_s / q.t1_s) / 2 - math.exp(-step_s / q.t2_echo_s) / 2
        for op in ops:
            if op.name in MEASUREMENTS:
                live.difference_update(op.targets)
    return total
