"""The planar, degree-3 qubit layout shared by every gadget of the protocol (redundant ancilla encoding).

The ancillas form one path. Each ancilla is coupled to exactly one data qubit (its "slot"), so every qubit
has degree <= 3 and the whole graph is a subdivided tree with pendant data: planar and heavy-hex-like.
The path visits the faces one after another (a face tour); the ancillas of one face are a contiguous
segment of the path, one per data qubit of the face, and consecutive faces share one or two ancillas at
their junction. So:

- the whole path is the cat register for the transversal logical-Hadamard measurement;
- each face segment is the cat (syndrome qubit plus flags) for that face's X and Z stabilizers;
- a segment also carries the encoder's fan-outs.

The tour is found by a depth-first search that prefers the largest junction overlaps (fewest ancillas)
and keeps the graph planar; the ancilla budget is the paper's count, 3 per weight-4 and 6 per weight-6 face.
"""

from __future__ import annotations

from dataclasses import dataclass

import itertools

import networkx as nx

from ctrl.codes.color import ColorCode
from ctrl.errors import CtrlError


@dataclass(frozen=True)
class Layout:
    """Ancilla `k` (qubit index n + k) sits on the path at position k and is coupled to data `slots[k]`
    (None: a spacer ancilla, coupled to no data qubit, as a device's own graph may need)."""

    n_data: int
    slots: tuple[int | None, ...]
    tour: tuple[int, ...]
    segments: tuple[tuple[int, int], ...]  # per face index: first and last path position (inclusive)
    ancilla_coords: tuple[tuple[float, float], ...]

    def __repr__(self) -> str:
        return f"Layout(data={self.n_data}, ancillas={len(self.slots)}, tour={self.tour})"

    @property
    def n_qubits(self) -> int:
        return self.n_data + len(self.slots)

    def ancilla(self, position: int) -> int:
        return self.n_data + position

    def segment(self, face: int) -> tuple[int, ...]:
        """The ancilla qubits of a face, in path order."""
        lo, hi = self.segments[face]
        return tuple(self.ancilla(k) for k in range(lo, hi + 1))

    def slot_of(self, ancilla: int) -> int | None:
        return self.slots[ancilla - self.n_data]

    @property
    def couplers(self) -> tuple[tuple[int, int], ...]:
        path = [(self.ancilla(k), self.ancilla(k + 1)) for k in range(len(self.slots) - 1)]
        pendant = [(d, self.ancilla(k)) for k, d in enumerate(self.slots) if d is not None]
        return tuple(sorted(path + pendant))

    @classmethod
    def from_slots(
        cls, code: ColorCode, slots: tuple[int | None, ...], ancilla_coords: tuple[tuple[float, float], ...]
    ) -> Layout:
        """A layout from any ancilla path: each face gets the shortest stretch of the path that is
        coupled to every one of its qubits."""
        segments = tuple(min_window(slots, f.qubits) for f in code.faces)
        if any(s is None for s in segments):
            raise CtrlError("some face has a qubit that no ancilla of the path is coupled to")
        tour = tuple(sorted(range(len(code.faces)), key=lambda f: segments[f]))
        return cls(code.n, tuple(slots), tour, segments, tuple(ancilla_coords))


def min_window(slots: tuple[int | None, ...], support: tuple[int, ...]) -> tuple[int, int] | None:
    """The shortest stretch (first, last position) of the path coupled to every qubit of `support`."""
    need = set(support)
    best = None
    for lo in range(len(slots)):
        if slots[lo] not in need:
            continue
        seen: set[int] = set()
        for hi in range(lo, len(slots)):
            if slots[hi] in need:
                seen.add(slots[hi])
                if len(seen) == len(need):
                    if best is None or hi - lo < best[1] - best[0]:
                        best = (lo, hi)
                    break
    return best


def ancilla_budget(code: ColorCode) -> int:
    return sum(3 if len(f.qubits) == 4 else 6 for f in code.faces)


def build_layout(code: ColorCode) -> Layout:
    budget = ancilla_budget(code)
    faces = [f.qubits for f in code.faces]
    shared = {
        (i, j): set(faces[i]) & set(faces[j])
        for i in range(len(faces))
        for j in range(len(faces))
        if i != j and set(faces[i]) & set(faces[j])
    }
    neighbours = {i: [j for j in range(len(faces)) if (i, j) in shared] for i in range(len(faces))}
    min_new = {i: len(faces[i]) - 2 for i in range(len(faces))}
    # Depth-first search is exponential in the worst case; the bound keeps a failed search from hanging.
    budget_nodes = [200_000]

    def orders(face: int, path: list[int], overlap: int) -> list[list[int]]:
        """Orders of the face's remaining qubits: walks around the face first, then any other order."""
        ring = list(faces[face])
        w = len(ring)
        start = path[-overlap:]
        rest = [q for q in ring if q not in start]
        j = ring.index(start[-1])
        walks = [[ring[(j + s * k) % w] for k in range(1, w)] for s in (1, -1)]
        walks = [[q for q in walk if q not in start] for walk in walks]
        others = [list(p) for p in itertools.permutations(rest) if list(p) not in walks]
        return walks + others

    def planar(path: list[int]) -> bool:
        g = nx.Graph()
        g.add_edges_from((("a", k), ("a", k + 1)) for k in range(len(path) - 1))
        g.add_edges_from((("a", k), ("d", q)) for k, q in enumerate(path))
        return nx.check_planarity(g)[0]

    def search(path: list[int], tour: list[int], segs: dict[int, tuple[int, int]]):
        budget_nodes[0] -= 1
        if budget_nodes[0] < 0:
            return None
        if len(tour) == len(faces):
            return path, tour, segs
        unvisited = [j for j in range(len(faces)) if j not in segs]
        if len(path) + sum(min_new[j] for j in unvisited) > budget:
            return None
        cur = tour[-1]
        cands = [j for j in neighbours[cur] if j not in segs]
        # Warnsdorff: faces with the fewest unvisited neighbours first, so the tour does not strand one.
        cands.sort(key=lambda j: (sum(1 for k in neighbours[j] if k not in segs), j))
        for overlap in (2, 1):
            for nxt in cands:
                if not set(path[-overlap:]) <= set(faces[nxt]):
                    continue
                for order in orders(nxt, path, overlap):
                    new_path = path + order
                    if not planar(new_path):
                        continue
                    new_segs = dict(segs)
                    new_segs[nxt] = (len(path) - overlap, len(new_path) - 1)
                    found = search(new_path, tour + [nxt], new_segs)
                    if found:
                        return found
        return None

    for start in sorted(range(len(faces)), key=lambda i: (len(neighbours[i]), i)):
        ring = list(faces[start])
        for rot in range(len(ring)):
            for direction in (1, -1):
                first = [ring[(rot + direction * k) % len(ring)] for k in range(len(ring))]
                found = search(first, [start], {start: (0, len(first) - 1)})
                if found:
                    return _finish(code, *found)
    raise CtrlError(
        f"no planar degree-3 layout with at most {budget} ancillas found for distance {code.distance}"
    )


def _finish(code: ColorCode, path: list[int], tour: list[int], segs: dict[int, tuple[int, int]]) -> Layout:
    coords = []
    for k, q in enumerate(path):
        owners = [f for f, (lo, hi) in segs.items() if lo <= k <= hi]
        qx, qy = code.coords[q]
        pts = []
        for f in owners:
            cx, cy = code.faces[f].center
            pts.append((qx + 0.4 * (cx - qx), qy + 0.4 * (cy - qy)))
        coords.append(
            (round(sum(p[0] for p in pts) / len(pts), 6), round(sum(p[1] for p in pts) / len(pts), 6))
        )
    return Layout(
        n_data=code.n,
        slots=tuple(path),
        tour=tuple(tour),
        segments=tuple(segs[f] for f in range(len(code.faces))),
        ancilla_coords=tuple(coords),
    )
