"""The color code's algebra, checked from scratch (not against stored numbers)."""

import itertools

import numpy as np
import pytest
import stim

from ctrl.codes.color import color_code


def gf2_rank(m: np.ndarray) -> int:
    m = m.copy() % 2
    rank = 0
    for col in range(m.shape[1]):
        pivot = next((r for r in range(rank, m.shape[0]) if m[r, col]), None)
        if pivot is None:
            continue
        m[[rank, pivot]] = m[[pivot, rank]]
        for r in range(m.shape[0]):
            if r != rank and m[r, col]:
                m[r] ^= m[rank]
        rank += 1
    return rank


@pytest.mark.parametrize("d", [3, 5, 7])
def test_code_parameters(d):
    code = color_code(d)
    h = code.check_matrix
    assert code.n == (3 * d * d + 1) // 4
    # Self-dual CSS: X and Z faces commute iff every pair of faces overlaps evenly.
    assert not ((h @ h.T) % 2).any()
    # One logical qubit: n - rank(H_X) - rank(H_Z) = 1.
    assert code.n - 2 * gf2_rank(h) == 1
    weights = sorted(len(f.qubits) for f in code.faces)
    assert set(weights) <= {4, 6}
    # Faces sharing a qubit have different colors (three-colorable).
    for f, g in itertools.combinations(code.faces, 2):
        if set(f.qubits) & set(g.qubits):
            assert f.color != g.color


@pytest.mark.parametrize("d", [3, 5, 7])
def test_logical_sides(d):
    code = color_code(d)
    h = code.check_matrix
    for side in code.sides:
        v = np.zeros(code.n, dtype=np.uint8)
        v[list(side)] = 1
        assert len(side) == d
        assert not (h @ v % 2).any(), "a logical commutes with every stabilizer"
        # ... and is not a stabilizer: odd overlap with another logical representative.
        assert int(v @ code.logical_vector) % 2 == 1 or len(set(side) & set(code.logical)) % 2 == 1


@pytest.mark.parametrize("d", [3, 5])
def test_distance_by_exhaustive_search(d):
    """No X-type error of weight < d commutes with every Z face and anticommutes with Z_L."""
    code = color_code(d)
    h = code.check_matrix
    for w in range(1, d):
        for support in itertools.combinations(range(code.n), w):
            v = np.zeros(code.n, dtype=np.uint8)
            v[list(support)] = 1
            if not (h @ v % 2).any():
                assert int(v @ code.logical_vector) % 2 == 0, support


def _mpp_z(qubits):
    out = []
    for q in qubits:
        out += [stim.target_z(q), stim.target_combiner()]
    return out[:-1]


def test_distance_7_by_stim():
    """|0...0> is a +1 eigenstate of every Z face and of Z_L; after one layer of X errors a perfect round
    reads the faces and the logical. Stim's search finds the lightest undetected logical error."""
    code = color_code(7)
    c = stim.Circuit()
    c.append("X_ERROR", range(code.n), [1e-3])
    for f in code.faces:
        c.append("MPP", _mpp_z(f.qubits))
        c.append("DETECTOR", [stim.target_rec(-1)])
    c.append("MPP", _mpp_z(code.logical))
    c.append("OBSERVABLE_INCLUDE", [stim.target_rec(-1)], [0])
    errs = c.search_for_undetectable_logical_errors(
        dont_explore_detection_event_sets_with_size_above=9999,
        dont_explore_edges_with_degree_above=9999,
        dont_explore_edges_increasing_symptom_degree=False,
    )
    assert len(errs) == 7
