"""The protocol adapted to device graphs that do not contain its default layout."""

import networkx as nx
import pytest

from ctrl.codes.color import color_code
from ctrl.compile.embed import embed_layout
from ctrl.errors import CtrlError
from ctrl.noise.models import UniformNoise
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.sim.faults import fault_distance
from ctrl.sim.lower import to_stim

HEAVY_HEX_27 = [
    (0, 1), (1, 2), (1, 4), (2, 3), (3, 5), (4, 7), (5, 8), (6, 7), (7, 10), (8, 9), (8, 11), (10, 12), (11, 14),
    (12, 13), (12, 15), (13, 14), (14, 16), (15, 18), (16, 19), (17, 18), (18, 21), (19, 20), (19, 22), (21, 23),
    (22, 25), (23, 24), (24, 25), (25, 26),
]  # fmt: skip


@pytest.mark.parametrize("graph", [nx.grid_2d_graph(5, 5), nx.Graph(HEAVY_HEX_27)], ids=["grid5x5", "heavyhex27"])
def test_embedded_protocol_is_nearest_neighbour_and_fault_tolerant(graph):
    e = embed_layout(color_code(3), graph)
    c = cn20_protocol(3, e.layout)
    assert len(set(e.nodes)) == len(c.qubits), "one device qubit per protocol qubit"
    for a, b in c.couplers:
        assert graph.has_edge(e.nodes[a], e.nodes[b])
    assert not to_stim(c, "X").reference_sample().any()


@pytest.mark.parametrize("name", ["grid25_cz", "heavyhex65_ecr"])
def test_adapted_placements_are_fault_tolerant(name):
    """Placement keeps only adapted layouts that pass the fault-distance check (an error left on a cleared
    encoder ancilla could get through: there are no mid-attempt resets)."""
    from pathlib import Path

    from ctrl.compile.placement import fault_tolerant, place
    from ctrl.device import DEFAULT_DEVICE, load_device

    dev = load_device(Path(DEFAULT_DEVICE).parent / f"{name}.yaml")
    p = place(3, dev)
    assert p.method == "adapted"
    c = cn20_protocol(3, p.layout)
    for proxy in "XZ":
        assert fault_distance(to_stim(c, proxy, UniformNoise(1e-3)), proxy, 3, len(c.code.faces)) == 2
    # Some embeddings of a square grid used to fail it: the logical fan-out's leftover X became, through
    # the next RX, a Z on the H_L root and hid the error it made. With the root on an ancilla the fan-out
    # never touched, every one passes. (That the check can fail at all: test_protocol.test_flags_matter.)
    verdicts = [fault_tolerant(3, embed_layout(color_code(3), nx.grid_2d_graph(5, 5), seed=s).layout) for s in range(3)]
    assert all(verdicts)


def test_embedding_avoids_expensive_qubits():
    graph = nx.grid_2d_graph(5, 5)
    bad = {(2, 2), (1, 2)}
    e = embed_layout(color_code(3), graph, node_cost=lambda v: 100.0 if v in bad else 0.0)
    assert not bad & set(e.nodes)


def test_too_small_a_device_is_refused_with_a_reason():
    with pytest.raises(CtrlError, match="needs at least"):
        embed_layout(color_code(3), nx.path_graph(10))


def test_chosen_placement_beats_naive_ones_on_heavy_hex():
    """Predicted (leading order, calibration scaled to 0.1 so that order holds) acceptance and logical
    error of ctrl's placement against the median of random valid placements that keep the fault
    distance, as tools/placement_vs_random.py filters them (it runs the full 100)."""
    import random
    import statistics
    import sys
    from pathlib import Path

    from ctrl.compile.embed import random_embedding
    from ctrl.compile.pipeline import compile_program
    from ctrl.compile.placement import Placement
    from ctrl.device import load_device

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "tools"))
    from placement_vs_random import keeps_fault_distance, predict, program_for

    device = load_device(root / "device_configs" / "heavyhex65_ecr.yaml")
    chosen = compile_program(device, 3)
    ours = predict(device, chosen.program, 0.1)
    rng = random.Random(7)
    graph = device.graph(usable_only=True)
    theirs = []
    for _ in range(6):
        emb = random_embedding(color_code(3), graph, rng)
        p = Placement("random", emb.layout, tuple(str(v) for v in emb.nodes), 0.0, 1)
        program = program_for(device, p, 3)
        if keeps_fault_distance(program):
            theirs.append(predict(device, program, 0.1))
    assert len(theirs) >= 3
    assert ours[0] > statistics.median(a for a, _ in theirs)
    assert ours[1] < statistics.median(e for _, e in theirs)


def test_a_fragmented_graph_is_searched_where_the_layout_fits():
    """Thirty loose pairs (degree 1, so first in the low-degree start order) beside a 6x6 grid: the
    embedding is found in the grid, and a graph with no part big enough is refused with the reason."""
    g = nx.convert_node_labels_to_integers(nx.grid_2d_graph(6, 6))
    for k in range(30):
        g.add_edge(100 + 2 * k, 101 + 2 * k)
    grid = set(range(36))
    for seed in range(3):
        emb = embed_layout(color_code(3), g, seed=seed)
        assert set(emb.nodes) <= grid
    small = nx.Graph([(2 * k, 2 * k + 1) for k in range(40)])
    with pytest.raises(CtrlError, match="no connected part"):
        embed_layout(color_code(3), small)


def test_adapted_placement_avoids_qubits_that_read_badly():
    """Four qubits of the heavy-hex device's chosen placement made to read 14 % wrong (their T1, T2 and
    gates untouched): the new placement uses none of them. The embedding search weighed T1 and T2 only,
    and kept all four."""
    from ctrl.compile.pipeline import compile_program
    from ctrl.device import DEFAULT_DEVICE, Device, load_device
    from ctrl.device.model import DeviceFile

    dev = load_device(DEFAULT_DEVICE.parent / "heavyhex65_ecr.yaml")
    before = compile_program(dev, 3).placement
    assert before.method == "adapted"
    bad = set(before.qubits[len(before.qubits) // 2:][:4])
    doc = dev.spec.model_dump()
    for q in doc["calibration"]["qubits"]:
        if q["name"] in bad:
            q["readout"]["error_0to1"] = q["readout"]["error_1to0"] = 0.14
    worse = Device(dev.path, DeviceFile.model_validate(doc), dev.firmware)
    after = compile_program(worse, 3).placement
    assert not bad & set(after.qubits), bad & set(after.qubits)
