"""Adapting the protocol's ancilla arrangement to a device graph that does not contain its own layout.

The protocol needs only this (see `ctrl.protocol.layout`): a simple path of ancillas, and every data
qubit coupled to at least one ancilla of the path; each face then uses the shortest stretch of the path
that reaches all its qubits. A square grid or a heavy-hex lattice has no odd cycles, so the default
face-tour layout does not embed, but such a path with pendant data qubits is easy to find there.

Search: long simple paths from starts spread over every component that can hold the layout (randomised
depth-first, seeded), then an assignment of
the code's data qubits to the path's free neighbours by local search, minimising the total length of
the face stretches (shorter cats, fewer conflicts) plus the node costs the caller supplies.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Hashable

import networkx as nx

from ctrl.codes.color import ColorCode
from ctrl.errors import CtrlError
from ctrl.protocol.layout import Layout, min_window

Node = Hashable


@dataclass(frozen=True)
class Embedding:
    layout: Layout
    nodes: tuple[Node, ...]  # device node of protocol qubit i (data 0..n-1, then the ancilla path)
    cost: float


def embed_layout(
    code: ColorCode,
    graph: nx.Graph,
    node_cost: Callable[[Node], float] = lambda v: 0.0,
    seed: int = 0,
    starts: int = 24,
    sweeps: int = 400,
) -> Embedding:
    return embed_candidates(code, graph, node_cost, seed, starts, sweeps)[0]


def embed_candidates(
    code: ColorCode,
    graph: nx.Graph,
    node_cost: Callable[[Node], float] = lambda v: 0.0,
    seed: int = 0,
    starts: int = 24,
    sweeps: int = 400,
    keep: int = 1,
) -> list[Embedding]:
    """The `keep` cheapest distinct embeddings (by their search cost) of one seeded search, cheapest first."""
    rng = random.Random(seed)
    if graph.number_of_nodes() < 2 * code.n:
        raise CtrlError(
            f"the device has {graph.number_of_nodes()} usable qubits; distance {code.distance} needs at least "
            f"{2 * code.n}"
        )
    # only components that can hold the layout: on a fragmented graph a start elsewhere is wasted
    big = [c for c in nx.connected_components(graph) if len(c) >= 2 * code.n]
    if not big:
        raise CtrlError(
            f"no connected part of the device's usable coupling graph has the {2 * code.n} qubits distance "
            f"{code.distance} needs (largest: {max(len(c) for c in nx.connected_components(graph))})"
        )
    nodes = sorted(set().union(*big), key=str)
    found: dict[tuple, Embedding] = {}
    for start in spread_starts(graph, big, starts, seed):
        path = _long_path(graph, start, rng, PATH_CAP * code.n)
        emb = _assign(code, graph, path, node_cost, rng, sweeps)
        if emb is not None and (emb.nodes not in found or emb.cost < found[emb.nodes].cost):
            found[emb.nodes] = emb
    if not found:
        raise CtrlError(
            f"no ancilla path with every one of the {code.n} data qubits of distance {code.distance} "
            f"coupled to it fits in the device graph ({len(nodes)} usable qubits)"
        )
    # stable sort: among equal costs the first found wins, as a scan in start order would choose
    return sorted(found.values(), key=lambda e: e.cost)[:keep]


def spread_starts(graph: nx.Graph, components, starts: int, seed: int) -> list[Node]:
    """Path starts over every component, in proportion to its size (at least one each), each component's
    spread by farthest-point sampling in hops. The first start of a component is a low-degree node (a
    path end leaves the most of the path's neighbours free for data), one per seed, so seeds begin in
    different places; farthest-point sampling then reaches every region before it revisits one."""
    comps = sorted((sorted(c, key=str) for c in components), key=lambda c: (-len(c), str(c[0])))
    total = sum(len(c) for c in comps)
    rng = random.Random(seed)
    out: list[Node] = []
    for comp in comps:
        k = min(len(comp), max(1, round(starts * len(comp) / total)))
        ends = sorted(comp, key=lambda v: (graph.degree(v), str(v)))
        chosen = [ends[seed % len(ends)]]
        near = nx.single_source_shortest_path_length(graph, chosen[0])
        while len(chosen) < k:
            far = max(near.values())
            # ties are broken at random (seeded): on a regular lattice many nodes are equally far
            nxt = rng.choice([v for v in comp if near[v] == far])
            chosen.append(nxt)
            for v, dist in nx.single_source_shortest_path_length(graph, nxt).items():
                if dist < near[v]:
                    near[v] = dist
        out.extend(chosen)
    return out


PATH_CAP = 6  # path length cap per data qubit, for the searched paths (see `_long_path`)


def _long_path(graph: nx.Graph, start: Node, rng: random.Random, cap: int | None = None) -> list[Node]:
    """A long simple path: depth-first, preferring neighbours that keep free nodes beside the path. `cap`
    stops it: a layout uses a window of a few ancillas per data qubit, and on a large device an uncapped
    path wanders over all of it, which makes every step of the assignment search slower (its cost grows
    with the path) and the search less local, which is what starts spread over the device are for."""
    path = [start]
    on = {start}
    while cap is None or len(path) < cap:
        options = [v for v in graph.neighbors(path[-1]) if v not in on]
        if not options:
            return path
        rng.shuffle(options)
        # Leave room for data: prefer next nodes that still have neighbours off the path.
        options.sort(key=lambda v: -sum(1 for w in graph.neighbors(v) if w not in on))
        nxt = options[0] if rng.random() < 0.8 else options[-1]
        path.append(nxt)
        on.add(nxt)
    return path


def random_embedding(code: ColorCode, graph: nx.Graph, rng: random.Random, tries: int = 1000) -> Embedding:
    """A valid but unoptimised embedding: random start, random data assignment (a naive placement)."""
    nodes = sorted(graph.nodes, key=str)
    for _ in range(tries):
        path = _long_path(graph, rng.choice(nodes), rng)
        found = _assign(code, graph, path, lambda v: 0.0, rng, sweeps=0, shuffle=True)
        if found is not None:
            return found
    raise CtrlError(f"no random embedding of distance {code.distance} found in {tries} tries")


def _assign(code, graph, path, node_cost, rng, sweeps, shuffle=False) -> Embedding | None:
    on_path = {v: k for k, v in enumerate(path)}
    free = sorted({w for v in path for w in graph.neighbors(v) if w not in on_path}, key=str)
    if len(free) < code.n:
        return None
    positions = {w: sorted(on_path[v] for v in graph.neighbors(w) if v in on_path) for w in free}
    free.sort(key=lambda w: (positions[w][0], str(w)))
    # Start from the code's own geometry: data sorted along one side, candidates along the path.
    data_order = sorted(range(code.n), key=lambda q: (code.coords[q][1], code.coords[q][0]))
    step = len(free) / code.n
    assign = {q: free[int(i * step)] for i, q in enumerate(data_order)}
    if shuffle:
        assign = dict(zip(range(code.n), rng.sample(free, code.n)))

    def evaluate(a: dict[int, Node]) -> tuple[float, tuple | None]:
        slots: list[int | None] = [None] * len(path)
        taken = {w: q for q, w in a.items()}
        for k, v in enumerate(path):
            near = [taken[w] for w in graph.neighbors(v) if w in taken]
            if near:
                # A path node next to two data qubits serves the one with fewer other couplings.
                slots[k] = min(near, key=lambda q: (len(positions[a[q]]), q))
        total = 0.0
        for f in code.faces:
            win = min_window(tuple(slots), f.qubits)
            if win is None:
                return float("inf"), None
            total += win[1] - win[0] + 1
        everything = min_window(tuple(slots), tuple(range(code.n)))
        if everything is None:
            return float("inf"), None
        lo, hi = everything
        total += 2 * (hi - lo + 1)
        total += sum(node_cost(w) for w in a.values()) + sum(node_cost(path[k]) for k in range(lo, hi + 1))
        return total, (tuple(slots[lo : hi + 1]), lo, hi)

    cost, shape = evaluate(assign)
    unused = [w for w in free if w not in assign.values()]
    for _ in range(sweeps):
        trial = dict(assign)
        q = rng.randrange(code.n)
        if unused and rng.random() < 0.5:
            j = rng.randrange(len(unused))
            trial[q], new_unused = unused[j], unused[:j] + [assign[q]] + unused[j + 1 :]
        else:
            r = rng.randrange(code.n)
            trial[q], trial[r] = assign[r], assign[q]
            new_unused = unused
        c, s = evaluate(trial)
        if c <= cost:
            assign, cost, shape, unused = trial, c, s, new_unused
    if shape is None:
        return None
    slots, lo, hi = shape
    ancillas = path[lo : hi + 1]
    coords = tuple(_xy(graph, v) for v in ancillas)
    layout = Layout.from_slots(code, slots, coords)
    return Embedding(layout, tuple(assign[q] for q in range(code.n)) + tuple(ancillas), cost)


def _xy(graph: nx.Graph, v: Node) -> tuple[float, float]:
    pos = graph.nodes[v].get("position")
    if pos is not None:
        return (float(pos[0]), float(pos[1]))
    if isinstance(v, tuple) and len(v) == 2:
        return (float(v[0]), float(v[1]))
    return (0.0, 0.0)
