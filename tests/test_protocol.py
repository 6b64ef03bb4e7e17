"""The CN20 protocol IR: layout constraints, well-formed schedule, noiseless determinism, fault distance."""

import collections
import dataclasses

import networkx as nx
import numpy as np
import pytest
import stim

from ctrl.noise.models import UniformNoise
from ctrl.protocol.cn20 import cn20_protocol, variants
from ctrl.protocol.ir import CHECK_KINDS, GATES, MEASUREMENTS
from ctrl.sim.faults import fault_distance, faults, undetected_failures
from ctrl.sim.lower import IDEAL, to_stim

BUDGET = {3: 16, 5: 55, 7: 118}  # the paper's qubit counts


@pytest.mark.parametrize("d, family", [(d, name) for d in (3, 5, 7) for name, _ in variants(d)])
def test_layout_is_planar_within_its_degree_limit_and_budget(d, family):
    layout = dict(variants(d))[family]
    c = cn20_protocol(d, layout)
    assert len(c.qubits) <= BUDGET[d]
    assert sum(q.role == "data" for q in c.qubits) == (3 * d * d + 1) // 4
    g = nx.Graph(c.couplers)
    assert max(dict(g.degree).values()) <= getattr(layout, "degree", 3)
    assert nx.check_planarity(g)[0]
    assert nx.is_connected(g)
    ancillas = [q.index for q in c.qubits if q.role == "ancilla"]
    assert nx.is_connected(g.subgraph(ancillas)), "the cat register needs a connected ancilla graph"


@pytest.mark.parametrize("d", [3, 5])
def test_schedule_is_well_formed(d):
    c = cn20_protocol(d)
    couplers = {tuple(sorted(e)) for e in c.couplers}
    for step, ops in c.steps():
        used = [q for op in ops for q in op.targets]
        assert len(used) == len(set(used)), f"step {step}: a qubit does two things"
        for op in ops:
            assert len(op.targets) == GATES[op.name]
            if len(op.targets) == 2:
                assert tuple(sorted(op.targets)) in couplers, f"{op} is not nearest-neighbour"
    keys = [op.key for op in c.measurements]
    assert len(keys) == len(set(keys)) and all(keys)
    step_of = {op.key: op.step for op in c.measurements}
    for check in c.checks:
        assert check.kind in CHECK_KINDS
        assert check.step == max(step_of[k] for k in check.measurements)
    kinds = collections.Counter(ch.kind for ch in c.checks)
    assert kinds["logical-H"] == c.rounds == (d - 1) // 2
    assert kinds["syndrome"] == 2 * len(c.code.faces) * c.rounds
    # Every measured qubit is prepared again before it is used again.
    state = {}
    for op in c.ops:
        for q in op.targets:
            if op.name in ("R", "RX", "RH"):
                state[q] = "live"
            else:
                assert state.get(q) == "live", f"{op} acts on a qubit that is not prepared"
                if op.name in MEASUREMENTS:
                    state[q] = "measured"


@pytest.mark.parametrize("d", [3, 5, 7])
@pytest.mark.parametrize("proxy", ["X", "Z"])
def test_noiseless_checks_read_zero_and_logical_is_plus_one(d, proxy):
    c = cn20_protocol(d)
    circuit = to_stim(c, proxy)
    # Stim reports detectors relative to a noiseless reference; the checks must be 0 in absolute terms.
    assert not circuit.reference_sample().any()
    # With noise the detector error model only exists if every detector is deterministic.
    to_stim(c, proxy, UniformNoise(1e-3)).detector_error_model(approximate_disjoint_errors=True)
    tags = [i.tag for i in circuit.flattened() if i.name == "DETECTOR"]
    assert sorted(t for t in tags if t != IDEAL) == sorted(ch.name for ch in c.checks)


@pytest.mark.parametrize("d, family", [(d, name) for d in (3, 5) for name, _ in variants(d)])
@pytest.mark.parametrize("proxy", ["X", "Z"])
def test_fault_distance(d, family, proxy):
    """(d+1)/2 in every layout family: every set of up to (d-1)/2 faults that passes the checks is decoded
    correctly, and some set of (d+1)/2 faults passes every check, the ideal round included, with the
    logical flipped."""
    c = cn20_protocol(d, dict(variants(d))[family])
    circuit = to_stim(c, proxy, UniformNoise(1e-3))
    assert fault_distance(circuit, proxy, d, len(c.code.faces)) == (d + 1) // 2


def test_stim_search_gives_a_real_upper_bound():
    c = cn20_protocol(3)
    circuit = to_stim(c, "X", UniformNoise(1e-3))
    errs = circuit.search_for_undetectable_logical_errors(
        dont_explore_detection_event_sets_with_size_above=4,
        dont_explore_edges_with_degree_above=9999,
        dont_explore_edges_increasing_symptom_degree=False,
    )
    assert len(errs) == 2


def test_flags_matter():
    """Remove one flag of the last round and a single fault gets through unflagged."""
    c = cn20_protocol(3)
    dropped = []
    for check in c.checks:
        if check.kind != "flag" or check.round != c.rounds - 1:
            continue
        fewer = dataclasses.replace(c, checks=tuple(x for x in c.checks if x is not check))
        for proxy in "XZ":
            m = faults(to_stim(fewer, proxy, UniformNoise(1e-3)), proxy, len(c.code.faces))
            if undetected_failures(m, 3, 1):
                dropped.append(check.name)
    assert dropped, "no flag is needed: the flags are not doing their job or the test is wrong"


def test_protocol_json_is_deterministic_and_complete():
    a = cn20_protocol(3).to_json()
    cn20_protocol.cache_clear()
    b = cn20_protocol(3).to_json()
    assert a == b
    assert '"checks"' in a and '"couplers"' in a


@pytest.mark.parametrize("proxy", ["X", "Z"])
def test_fault_distance_d7_is_four(proxy):
    """No set of one, two or three faults passes every check and is decoded wrongly at d=7; four idle
    faults on data at the very end always can be, so the fault distance is exactly 4."""
    c = cn20_protocol(7)
    mechanisms = faults(to_stim(c, proxy, UniformNoise(1e-3)), proxy, len(c.code.faces))
    for size in (1, 2, 3):
        assert not undetected_failures(mechanisms, 7, size), size


@pytest.mark.parametrize("p", [1e-3, 3e-3, 2e-2])
def test_leading_order_agrees_with_sampling(p):
    """The leading-order logical error per accepted state against Monte Carlo of the same circuit (d=3,
    X proxy, 4e5 shots): within 25 % where faults are rare, and a probability (below 1, within a factor
    1.5) even at p = 0.02, where dividing the failing sets' probability by the acceptance gave 36."""
    from ctrl.sim.faults import leading_order
    from ctrl.sim.lower import to_stim
    from ctrl.collect.run import collect
    from ctrl.collect.stats import binomial_ci
    from ctrl.sim.report import protocol_task

    _, predicted = leading_order(to_stim(cn20_protocol(3), "X", UniformNoise(p)), "X", 3, 3)
    (t,) = collect([protocol_task(3, UniformNoise(p), "X")], max_shots=400_000, seed=7)
    lo, hi = binomial_ci(t.errors, t.accepted, 0.999)
    assert t.errors > 100
    slack = 1.25 if p < 1e-2 else 1.5
    assert lo / slack < predicted < hi * slack, (predicted, t.errors / t.accepted, lo, hi)
