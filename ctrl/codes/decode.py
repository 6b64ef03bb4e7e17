"""The ideal round's decoder: minimum-weight correction by lookup over the color code's syndromes.

The code is CSS and self-dual, so one table serves both X- and Z-type errors. The table is built by a
breadth-first search in syndrome space (weight 0, then 1, ...), so each syndrome maps to a correction of
least weight; ties go to the first qubit order found. Entry = parity of that correction with the logical.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ctrl.codes.color import color_code


@lru_cache(maxsize=8)
def logical_flip_table(distance: int) -> np.ndarray:
    """table[s] = 1 if the minimum-weight correction for syndrome s (bit f = face f) flips the logical."""
    code = color_code(distance)
    n_faces = len(code.faces)
    if n_faces > 24:
        raise ValueError(f"lookup decoder supports distance <= 7, got {distance}")
    cols = [sum(1 << f for f in code.faces_of(q)) for q in range(code.n)]
    flips = [int(code.logical_vector[q]) for q in range(code.n)]
    size = 1 << n_faces
    table = np.full(size, 255, dtype=np.uint8)
    table[0] = 0
    frontier = np.array([0], dtype=np.int64)
    while frontier.size:
        nxt = []
        for col, flip in zip(cols, flips):
            cand = frontier ^ col
            new = cand[table[cand] == 255]
            if new.size:
                new = np.unique(new)
                table[new] = table[new ^ col] ^ flip
                nxt.append(new)
        frontier = np.unique(np.concatenate(nxt)) if nxt else np.array([], dtype=np.int64)
    assert (table != 255).all()
    return table


def decode_flips(distance: int, syndromes: np.ndarray) -> np.ndarray:
    """Predicted logical flips for an array of face syndromes (bool, shots x faces)."""
    weights = (1 << np.arange(syndromes.shape[1], dtype=np.int64))
    index = syndromes.astype(np.int64) @ weights
    return logical_flip_table(distance)[index].astype(bool)
