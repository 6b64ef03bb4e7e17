"""Placement: which device qubit plays which protocol qubit.

Where the device's usable coupling graph contains the protocol's own layout, every embedding found by
subgraph matching (rustworkx's VF2, up to `limit`) is scored and the cheapest kept. Otherwise the protocol's ancilla
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
import rustworkx as rx

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


def place(distance: int, device, limit: int = 5000, exclude: frozenset[str] = frozenset()) -> Placement:
    graph = device.graph(usable_only=True)
    graph.remove_nodes_from(exclude)
    code = color_code(distance)
    layout = build_layout(code)
    circuit = cn20_protocol(distance, layout)
    step_s = typical_step_s(device)
    counts = _counts(circuit)
    best: tuple[float, tuple[str, ...]] | None = None
    considered = 0
    for names in _subgraph_embeddings(graph, circuit, limit):
        cost = _cost(counts, names, device, step_s)
        considered += 1
        if best is None or cost < best[0]:
            best = (cost, names)
    if best is not None:
        return Placement("subgraph", layout, best[1], best[0], considered)
    rate = {q.name: step_s * (1 / q.t1_s + 1 / q.t2_echo_s) for q in device.qubits}
    candidates = []
    for seed in range(4):
        emb = embed_layout(code, graph, node_cost=lambda v: 10 * rate.get(v, 0.0), seed=seed)
        names = tuple(str(v) for v in emb.nodes)
        adapted = cn20_protocol(distance, emb.layout)
        candidates.append((expected_faults(adapted, names, device, step_s), seed, emb, names))
    cost, _, emb, names = min(candidates, key=lambda c: (c[0], c[1]))
    return Placement("adapted", emb.layout, names, cost, len(candidates))


def _subgraph_embeddings(graph: nx.Graph, circuit: ProtocolCircuit, limit: int):
    """Device qubit names for each protocol qubit, for every embedding of the protocol's coupling graph
    into the device graph (rustworkx VF2, in a deterministic order)."""
    nodes = sorted(graph.nodes, key=str)
    if len(circuit.qubits) > len(nodes):
        return
    index = {v: i for i, v in enumerate(nodes)}
    big = rx.PyGraph()
    big.add_nodes_from(nodes)
    big.add_edges_from_no_data(sorted(tuple(sorted((index[a], index[b]))) for a, b in graph.edges))
    small = rx.PyGraph()
    small.add_nodes_from(range(len(circuit.qubits)))
    small.add_edges_from_no_data(list(circuit.couplers))
    for n, mapping in enumerate(rx.vf2_mapping(big, small, subgraph=True, induced=False, id_order=True)):
        if n >= limit:
            return
        inverse = {p: g for g, p in mapping.items()}
        yield tuple(nodes[inverse[i]] for i in range(len(circuit.qubits)))


def typical_step_s(device) -> float:
    """A protocol time step on this device: the median two-qubit gate duration."""
    durations = sorted(c.duration_s for c in device.couplers if c.usable)
    if not durations:
        raise CtrlError(f"device {device.name} has no usable coupler")
    return durations[len(durations) // 2]


@dataclass(frozen=True)
class _Counts:
    """Per protocol qubit and coupler, how many of each fault location one attempt has."""

    pulses: tuple[int, ...]
    readouts: tuple[int, ...]
    idle_steps: tuple[int, ...]
    couplers: tuple[tuple[int, int, int], ...]  # (a, b, two-qubit ops)


def _counts(circuit: ProtocolCircuit) -> _Counts:
    n = len(circuit.qubits)
    pulses, readouts, idle = [0] * n, [0] * n, [0] * n
    pairs: dict[tuple[int, int], int] = {}
    live: set[int] = set()
    for step, ops in circuit.steps():
        busy = set()
        for op in ops:
            busy.update(op.targets)
            if op.name in PREPARATIONS:
                live.update(op.targets)
                pulses[op.targets[0]] += op.name != "R"
            elif op.name in ("RY_P4", "RY_M4"):
                pulses[op.targets[0]] += 1
            elif op.name in ("CX", "CZ"):
                key = tuple(sorted(op.targets))
                pairs[key] = pairs.get(key, 0) + 1
                pulses[op.targets[1]] += 2
            elif op.name in MEASUREMENTS:
                readouts[op.targets[0]] += 1
                pulses[op.targets[0]] += op.name == "MX"
        for q in live - busy:
            idle[q] += 1
        for op in ops:
            if op.name in MEASUREMENTS:
                live.difference_update(op.targets)
    return _Counts(tuple(pulses), tuple(readouts), tuple(idle), tuple((a, b, k) for (a, b), k in sorted(pairs.items())))


def _cost(counts: _Counts, names: tuple[str, ...], device, step_s: float) -> float:
    total = 0.0
    for i, name in enumerate(names):
        q = device.qubit(name)
        ro = q.readout
        total += counts.pulses[i] * q.x90.error + counts.readouts[i] * (ro.error_0to1 + ro.error_1to0) / 2
        total += counts.idle_steps[i] * (1 - math.exp(-step_s / q.t1_s) / 2 - math.exp(-step_s / q.t2_echo_s) / 2)
    for a, b, k in counts.couplers:
        total += k * device.coupler(names[a], names[b]).error
    return total


def expected_faults(circuit: ProtocolCircuit, names: tuple[str, ...], device, step_s: float) -> float:
    """First-order fault count of one attempt under the calibration (see the module docstring)."""
    return _cost(_counts(circuit), names, device, step_s)
