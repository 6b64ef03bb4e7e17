"""Placement: which device qubit plays which protocol qubit.

Where the device's usable coupling graph contains the protocol's own layout, every embedding found by
subgraph matching (rustworkx's VF2, up to `limit`) is scored and the cheapest kept. Otherwise the protocol's ancilla
arrangement is adapted to the device (`ctrl.compile.embed`): a path of ancillas with the data qubits
beside it, so square grids and heavy-hex lattices (no odd cycles) host it without SWAPs.

The score is the expected number of faults in one attempt, from the calibration: gate errors of the
pulses and couplers each protocol operation becomes (with the echo's x180 on an ECR coupler's control),
readout errors, idle decay (T1, echo T2) of every live qubit over every time step, and the dephasing
static ZZ coupling to a placed neighbour adds to an idle step. Lower means more attempts accepted and
fewer accepted states wrong.

Every placement carries a comparison with random placements of the same layout (`random_comparison`),
scored the same way; `place` never returns one that a random draw beats.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import rustworkx as rx

from ctrl.codes.color import color_code
from ctrl.compile.embed import embed_candidates
from ctrl.errors import CtrlError
from ctrl.protocol.cn20 import cn20_protocol, variant_name, variants
from ctrl.protocol.ir import MEASUREMENTS, PREPARATIONS, ProtocolCircuit
from ctrl.protocol.layout import Layout
from ctrl.protocol.tree import Design

if TYPE_CHECKING:
    from ctrl.device import Device
    from ctrl.device.target import QubitTarget


@dataclass(frozen=True)
class Placement:
    method: str  # "subgraph" (the protocol's layout as it is) or "adapted" (a layout found in the device)
    layout: Layout | Design  # the family: a shared-register design ("tree") or an ancilla path ("path")
    qubits: tuple[str, ...]  # device qubit of protocol qubit i
    cost: float  # expected faults per attempt
    considered: int  # embeddings scored
    # random placements of the same layout, for the report; not part of what a placement is
    random: RandomComparison | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        n = len(self.qubits)
        return (f"Placement({self.method}, {self.variant}, {n} qubits, cost={self.cost:.4f}, "
                f"considered={self.considered})")

    @property
    def variant(self) -> str:
        return variant_name(self.layout)


@dataclass(frozen=True)
class RandomComparison:
    """`n` random placements of a layout (seeded, so a compile is reproducible), each scored with `_cost`."""

    n: int
    best: float
    median: float
    best_qubits: tuple[str, ...]

    def doc(self) -> dict:
        return {"n": self.n, "best": round(self.best, 9), "median": round(self.median, 9)}


RANDOM_DRAWS = 100


def place(distance: int, device, limit: int = 5000, exclude: frozenset[str] = frozenset()) -> Placement:
    found = _place(distance, device, limit, exclude)
    compared = random_comparison(distance, device, found.layout, frozenset(exclude))
    if compared is None:
        return found
    # The random draws share the chosen layout, so they pass the fault-tolerance check it passed (a
    # layout's property); asked again all the same, so the rule holds should the draws ever vary it.
    verified = found.method == "subgraph" or distance > 3 or fault_tolerant(distance, found.layout)
    if compared.best < found.cost and verified:
        found = dataclasses.replace(found, qubits=compared.best_qubits, cost=compared.best)
    return dataclasses.replace(found, random=compared)


def _place(distance: int, device, limit: int, exclude: frozenset[str]) -> Placement:
    step_s = typical_step_s(device)
    nodes, edges = _usable(device, exclude)
    fits = []
    for _, layout in variants(distance):
        shape = layout.layout if isinstance(layout, Design) else layout
        found = _embeddings(nodes, edges, shape.couplers, shape.n_qubits, limit)
        if found:
            circuit, counts = _protocol(distance, layout)
            best = _cheapest(found, counts, device, step_s)
            cost = _cost(counts, best, device, step_s)
            placement = Placement("subgraph", layout, best, cost, len(found))
            fits.append((time_per_accepted_s(cost, circuit.n_steps, step_s), len(fits), placement))
    if fits:
        return min(fits)[2]
    graph = device.graph(usable_only=True)
    graph.remove_nodes_from(exclude)
    code = color_code(distance)
    # what one qubit of the protocol costs on each device qubit, for a protocol qubit of average use: its
    # pulses, readouts and idle steps, each at this qubit's calibrated error (readout error too: a qubit
    # that reads 14 % wrong is no ancilla, however long it lives)
    _, counts = _protocol(distance, dict(variants(distance))["path"])
    mean = [sum(c) / len(c) for c in (counts.pulses, counts.readouts, counts.idle_steps)]
    # static ZZ as if every neighbour were placed: the search cannot know yet which ones will be
    zz_near: dict[str, float] = {}
    for (a, b), p in _zz(device, step_s).items():
        zz_near[a] = zz_near.get(a, 0.0) + p
        zz_near[b] = zz_near.get(b, 0.0) + p
    per_qubit = {q.name: sum(m * t for m, t in zip(mean, _qubit_terms(q, step_s))) + mean[2] * zz_near.get(q.name, 0.0)
                 for q in device.target.qubits.values()}  # fmt: skip
    # Each seed's 24 starts are spread over the whole usable graph (`spread_starts`: on a 144-qubit grid
    # none is more than 3 hops from every qubit), so six seeds try every region of a 127-133 qubit
    # device several times; a larger device keeps more of each search's best embeddings (one per 40
    # qubits) for the ranking by expected faults. The shipped devices (25-65 qubits) keep one per seed.
    size = graph.number_of_nodes()
    starts, keep = 24, max(1, size // 40)
    candidates, failed, seen = [], [], set()
    for seed in range(ADAPTED_SEEDS):
        try:
            found = embed_candidates(code, graph, lambda v: 10 * per_qubit.get(v, 0.0), seed, starts, keep=keep)
        except CtrlError as e:  # one seed's search failing says nothing about the others'
            failed.append(str(e))
            continue
        for rank, emb in enumerate(found):
            names = tuple(str(v) for v in emb.nodes)
            if names in seen:
                continue
            seen.add(names)
            cost = _cost(_shape_counts(distance, emb.layout), names, device, step_s)
            candidates.append((cost, seed, rank, emb, names))
    if not candidates:
        raise CtrlError(f"{device.name}: no layout for d={distance} embeds in its usable coupling graph "
                        f"({ADAPTED_SEEDS} searches; first: {failed[0]})")  # fmt: skip
    candidates.sort(key=lambda c: c[:3])
    if distance > 3:  # a fault-distance search at d >= 5 takes minutes: the cheapest, unverified
        cost, _, _, emb, names = candidates[0]
        return Placement("adapted", emb.layout, names, cost, len(candidates))
    for cost, _, _, emb, names in candidates:
        if fault_tolerant(distance, emb.layout):
            return Placement("adapted", emb.layout, names, cost, len(candidates))
    raise CtrlError(
        f"{device.name}: none of the {len(candidates)} layouts adapted to its coupling graph keeps fault distance "
        f"{(distance + 1) // 2} without mid-attempt resets; the device cannot host d={distance} this way"
    )


ADAPTED_SEEDS = 6  # seeds of the adapted search; each spreads its starts over the whole usable graph


@lru_cache(maxsize=64)
def fault_tolerant(distance: int, layout: Layout) -> bool:
    """Whether the protocol on an adapted layout keeps its fault distance in both proxies.

    The protocol's own layout is proved so by the tests. An adapted one is checked one layout at a time.
    Ancillas are reused without a reset, as the hardware does it (`ctrl.sim.lower`). With that reuse, an
    error left on a cleared encoder ancilla can cancel the check that would have caught the data error it
    made. The path family roots its H_L cats on an ancilla the logical fan-out never touched, which closes
    the case seen on grids; whether another opens depends on the fan-out order the path's shape imposes,
    so the check stays.
    """
    from ctrl.noise.models import UniformNoise
    from ctrl.sim.faults import fault_distance
    from ctrl.sim.lower import to_stim

    circuit = cn20_protocol(distance, layout)
    n_faces = len(circuit.code.faces)
    return all(
        fault_distance(to_stim(circuit, proxy, UniformNoise(1e-3)), proxy, distance, n_faces) == (distance + 1) // 2
        for proxy in "XZ"
    )


@lru_cache(maxsize=8)
def _protocol(distance: int, layout: Layout | Design) -> tuple[ProtocolCircuit, _Counts]:
    """A family's circuit and its fault-location counts, built only for families that embed (the path
    family takes 0.1-0.3 s to build, the tree designs milliseconds)."""
    circuit = cn20_protocol(distance, layout)
    return circuit, _counts(circuit)


_SHAPES: dict = {}  # (distance, layout without coordinates) -> (couplers, qubit count, counts)


def _shape(distance: int, layout: Layout | Design) -> tuple[tuple[tuple[int, int], ...], int, _Counts]:
    """A layout's protocol couplers, qubit count and fault-location counts. An adapted layout's ancilla
    coordinates only label the circuit, so layouts of one shape in different places of a device share
    one protocol build (0.1-0.2 s each). The build itself is of the layout as given, so the compile that
    follows finds it in `cn20_protocol`'s cache."""
    key = layout
    if isinstance(layout, Layout):
        key = dataclasses.replace(layout, ancilla_coords=((0.0, 0.0),) * len(layout.slots))
    got = _SHAPES.get((distance, key))
    if got is None:
        circuit = cn20_protocol(distance, layout)
        if len(_SHAPES) >= 512:
            _SHAPES.clear()
        got = _SHAPES[distance, key] = (circuit.couplers, len(circuit.qubits), _counts(circuit))
    return got


def _shape_counts(distance: int, layout: Layout) -> _Counts:
    return _shape(distance, layout)[2]


@lru_cache(maxsize=16)
def random_comparison(
    distance: int, device, layout: Layout | Design, exclude: frozenset[str] = frozenset(), n: int = RANDOM_DRAWS,
    seed: int = 0,
) -> RandomComparison | None:
    """`n` random placements of `layout` in the usable graph, scored with `_cost`; None if none was found.
    No compile: the protocol's counts are the layout's, the draws only move it around the device."""
    couplers, n_qubits, counts = _shape(distance, layout)
    nodes, edges = _usable(device, exclude)
    draws = random_embeddings(nodes, edges, couplers, n_qubits, n, seed)
    if not draws:
        return None
    step_s = typical_step_s(device)
    scored = sorted((_cost(counts, d, device, step_s), d) for d in draws)
    return RandomComparison(len(scored), scored[0][0], statistics.median(c for c, _ in scored), scored[0][1])


def random_embeddings(
    nodes: tuple[str, ...], edges: tuple[tuple[str, str], ...], couplers, n: int, count: int, seed: int
) -> list[tuple[str, ...]]:
    """Up to `count` embeddings of a protocol coupling graph, each at a random place and orientation: a
    random device node is made to play a random protocol qubit (a VF2 search within the hops that qubit
    can reach, the node order shuffled). Enumerating VF2's matches instead would give one corner of the
    device; a draw with no match there is redrawn, up to 20 times the count in all."""
    graph = nx.Graph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    pattern = nx.Graph()
    pattern.add_nodes_from(range(n))
    pattern.add_edges_from(couplers)
    if n == 0 or not nx.is_connected(pattern):
        return []
    reach = nx.eccentricity(pattern)
    hosts = sorted((v for c in nx.connected_components(graph) if len(c) >= n for v in c), key=str)
    rng = random.Random(seed)
    out: list[tuple[str, ...]] = []
    for _ in range(20 * count):
        if len(out) >= count or not hosts:
            break
        centre, anchor = rng.choice(hosts), rng.randrange(n)
        if graph.degree(centre) < pattern.degree(anchor):
            continue
        ball = sorted(nx.single_source_shortest_path_length(graph, centre, cutoff=reach[anchor]), key=str)
        if len(ball) < n:
            continue
        rng.shuffle(ball)
        index = {v: i for i, v in enumerate(ball)}
        big = rx.PyGraph()
        big.add_nodes_from([v == centre for v in ball])
        big.add_edges_from_no_data([(index[a], index[b]) for a, b in graph.subgraph(ball).edges])
        small = rx.PyGraph()
        small.add_nodes_from([i == anchor for i in range(n)])
        small.add_edges_from_no_data(list(couplers))
        mapping = next(iter(rx.vf2_mapping(big, small, node_matcher=lambda x, y: x == y, subgraph=True,
                                           induced=False, id_order=False)), None)  # fmt: skip
        if mapping is None:
            continue
        inverse = {p: g for g, p in mapping.items()}
        out.append(tuple(ball[inverse[i]] for i in range(n)))
    return out


def time_per_accepted_s(expected_faults: float, n_steps: int, step_s: float) -> float:
    """Predicted device time per accepted state: an attempt's length over its acceptance, taking every
    expected fault as a discard (first order; it ranks layout families, it does not predict p_L)."""
    return n_steps * step_s / math.exp(-expected_faults)


def _usable(device, exclude: frozenset[str]) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The usable coupling graph as sorted node names and sorted edges (a hashable cache key)."""
    nodes = {q.name for q in device.qubits if q.usable} - exclude
    edges = {tuple(sorted(pair)) for pair in device.usable_gates if pair <= nodes}
    return tuple(sorted(nodes)), tuple(sorted(edges))


@lru_cache(maxsize=32)
def _embeddings(
    nodes: tuple[str, ...],
    edges: tuple[tuple[str, str], ...],
    couplers: tuple[tuple[int, int], ...],
    n: int,
    limit: int,
) -> tuple[tuple[str, ...], ...]:
    """Every embedding (up to `limit`) of the protocol's coupling graph in the device's usable graph.
    It depends on the graph's shape only, not on calibrated numbers, so one search serves every
    compile of a device and distance (VF2 over 55 qubits takes tens of milliseconds)."""
    graph = nx.Graph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    return tuple(_vf2(graph, couplers, n, limit))


def _cheapest(found: tuple[tuple[str, ...], ...], counts: _Counts, device: Device, step_s: float) -> tuple[str, ...]:
    """The first embedding of least `_cost`. Costs of all of them at once with numpy; near-ties are
    settled with `_cost` itself, so the choice is the one scanning them in order would make."""
    if len(found) == 1:
        return found[0]
    names = sorted({v for e in found for v in e})
    index = {v: i for i, v in enumerate(names)}
    target = device.target
    per_qubit = np.array([_qubit_terms(target.qubit(v), step_s) for v in names])  # (device qubit, 3)
    emb = np.array([[index[v] for v in e] for e in found])  # (embedding, protocol qubit)
    weights = np.array([counts.pulses, counts.readouts, counts.idle_steps], dtype=float).T  # (protocol qubit, 3)
    total = (per_qubit[emb] * weights).sum(axis=(1, 2))
    for a, b, k in counts.couplers:
        pair_error = {}
        for e in found:
            key = (e[a], e[b])
            if key not in pair_error:
                pair_error[key] = _pair_error(device, *key)
        total += k * np.array([pair_error[e[a], e[b]] for e in found])
    zz = _zz(device, step_s)
    if zz:
        # where[e, device qubit]: the protocol qubit it plays in embedding e, or -1
        where = np.full((len(found), len(names)), -1)
        where[np.arange(len(found))[:, None], emb] = np.arange(emb.shape[1])
        idle = np.array(counts.idle_steps + (0,), dtype=float)  # index -1: not placed, no idle steps
        for (u, v), p in zz.items():
            if u in index and v in index:
                pu, pv = where[:, index[u]], where[:, index[v]]
                total += np.where((pu >= 0) & (pv >= 0), p * (idle[pu] + idle[pv]), 0.0)
    close = np.flatnonzero(total <= total.min() * (1 + 1e-9) + 1e-15)
    best = None
    for i in close:
        cost = _cost(counts, found[i], device, step_s)
        if best is None or cost < best[0]:
            best = (cost, found[i])
    return best[1]


def _pair_error(device: Device, a: str, b: str) -> float:
    """One protocol two-qubit op on a coupler: its gate error, and on an ECR coupler the x180 echo pulse
    the native CX puts on the ECR's control (`ctrl.compile.natives`, in either direction of the op)."""
    target = device.target
    c = target.gate(a, b)
    if c.kind == "ecr":
        return c.error + target.qubit(c.control).x180_error
    return c.error


def _zz(device: Device, step_s: float) -> dict[tuple[str, str], float]:
    """Static ZZ as a dephasing probability per idle step, by qubit pair: an always-on ZZ of zz_hz turns
    a qubit's phase by pi * zz_hz * t either way with its neighbour's state, so a Z error with
    sin^2(pi * zz_hz * t / 2). `static_zz` is new in the device schema: a device without it has none."""
    out: dict[tuple[str, str], float] = {}
    for (a, b), zz_hz in device.target.static_zz:
        out[a, b] = out.get((a, b), 0.0) + math.sin(math.pi * zz_hz * step_s / 2) ** 2
    return out


def _qubit_terms(q: QubitTarget, step_s: float) -> tuple[float, float, float]:
    """Per pulse, per readout, per idle step: a qubit's fault probabilities (as `_cost` sums them)."""
    return (
        q.x90_error, (q.readout_error_0to1 + q.readout_error_1to0) / 2,
        1 - math.exp(-step_s / q.t1_s) / 2 - math.exp(-step_s / q.t2_s(echo=True)) / 2,
    )  # fmt: skip


def _subgraph_embeddings(graph: nx.Graph, circuit: ProtocolCircuit, limit: int):
    """Device qubit names for each protocol qubit, for every embedding of the protocol's coupling graph
    into the device graph (rustworkx VF2, in a deterministic order)."""
    yield from _vf2(graph, circuit.couplers, len(circuit.qubits), limit)


def _vf2(graph: nx.Graph, couplers, n: int, limit: int) -> list[tuple[str, ...]]:
    nodes = sorted(graph.nodes, key=str)
    if n > len(nodes):
        return []
    index = {v: i for i, v in enumerate(nodes)}
    big = rx.PyGraph()
    big.add_nodes_from(nodes)
    big.add_edges_from_no_data(sorted(tuple(sorted((index[a], index[b]))) for a, b in graph.edges))
    small = rx.PyGraph()
    small.add_nodes_from(range(n))
    small.add_edges_from_no_data(list(couplers))
    # VF2's own node ordering (id_order=False): with the ids' order, proving that the 47-qubit path family
    # has no place in grid55_d5 took 3 s; with its ordering, 7 ms. The result is sorted, so the choice
    # among embeddings does not depend on the order VF2 finds them in.
    found = []
    for k, mapping in enumerate(rx.vf2_mapping(big, small, subgraph=True, induced=False, id_order=False)):
        if k >= limit:
            break
        inverse = {p: g for g, p in mapping.items()}
        found.append(tuple(nodes[inverse[i]] for i in range(n)))
    return sorted(found)


def typical_step_s(device: Device) -> float:
    """A protocol time step on this device: the median two-qubit gate duration."""
    durations = device.target.two_qubit_durations_s
    if not durations:
        raise CtrlError(f"device {device.name} has no usable coupler")
    return durations[len(durations) // 2]


@dataclass(frozen=True)
class _Counts:
    """Per protocol qubit and coupler, how many of each fault location one attempt has."""

    # x90 pulses: each protocol pulse turns by 90 degrees or less (a hadamard, the |+> preparation, the
    # CX's target turns, MX, the controlled-Hadamard's 45 degrees), and the native translation plays any
    # such turn with the x90 pulse; the one x180 of the protocol's natives, the ECR echo, is `_pair_error`'s
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


def _cost(counts: _Counts, names: tuple[str, ...], device: Device, step_s: float) -> float:
    total = 0.0
    target = device.target
    for i, name in enumerate(names):
        q = target.qubit(name)
        total += counts.pulses[i] * q.x90_error + counts.readouts[i] * (q.readout_error_0to1 + q.readout_error_1to0) / 2
        total += counts.idle_steps[i] * (1 - math.exp(-step_s / q.t1_s) / 2 - math.exp(-step_s / q.t2_s(echo=True)) / 2)
    for a, b, k in counts.couplers:
        total += k * _pair_error(device, names[a], names[b])
    where = {name: i for i, name in enumerate(names)}
    for (u, v), p in _zz(device, step_s).items():
        if u in where and v in where:
            total += p * (counts.idle_steps[where[u]] + counts.idle_steps[where[v]])
    return total


def expected_faults(circuit: ProtocolCircuit, names: tuple[str, ...], device: Device, step_s: float) -> float:
    """First-order fault count of one attempt under the calibration (see the module docstring)."""
    return _cost(_counts(circuit), names, device, step_s)
