"""The shared-register layout: an ancilla tree with data qubits hanging off it (redundant ancilla encoding).

The ancillas form a tree; each data qubit is coupled to one or more ancillas. Every gadget of the protocol
is a *register* on that tree: some ancillas are roots, each prepared in |+> and holding one fresh bit (a
face's, or the logical's), CXs along tree edges spread the bits so that each ancilla holds an XOR of them,
each ancilla then acts on data qubits it is coupled to (CX, CZ or controlled-Hadamard), the spread is undone,
roots are measured in X and every other register ancilla in Z (it must read 0: a flag).

- The logical-Hadamard measurement is a register with one root (a cat over a subtree): every data qubit gets
  exactly one controlled-Hadamard from an ancilla holding the root's bit.
- All X (or all Z) stabilizers are measured in one block: one root per face, and for every data qubit the
  XOR of what its acting ancillas hold is the set of faces it belongs to. Root f's X result is face f's
  stabilizer.

Why that is fault-tolerant: a Z fault on a register ancilla only flips root results. An X fault on an
ancilla during the action phase reaches that ancilla's later data actions and, through the unspread, lands
on register ancillas that are measured in Z (flags). The fault-distance enumeration checks every layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import networkx as nx
import numpy as np

from ctrl.codes.color import ColorCode
from ctrl.errors import CtrlError
from ctrl.protocol.ir import ProtocolCircuit
from ctrl.protocol.program import Program, as_late_as_possible, schedule


@dataclass(frozen=True)
class TreeLayout:
    """Ancilla `k` is qubit n_data + k. `edges`: ancilla-ancilla couplers (positions, a tree);
    `pendant`: (ancilla position, data qubit) couplers."""

    n_data: int
    edges: tuple[tuple[int, int], ...]
    pendant: tuple[tuple[int, int], ...]
    ancilla_coords: tuple[tuple[float, float], ...]

    def __repr__(self) -> str:
        return f"TreeLayout(data={self.n_data}, ancillas={self.n_ancillas}, data couplers={len(self.pendant)})"

    @property
    def n_ancillas(self) -> int:
        return len(self.ancilla_coords)

    @property
    def n_qubits(self) -> int:
        return self.n_data + self.n_ancillas

    def ancilla(self, position: int) -> int:
        return self.n_data + position

    @property
    def couplers(self) -> tuple[tuple[int, int], ...]:
        tree = [tuple(sorted((self.ancilla(a), self.ancilla(b)))) for a, b in self.edges]
        return tuple(sorted(tree + [(d, self.ancilla(k)) for k, d in self.pendant]))

    @cached_property
    def tree(self) -> nx.Graph:
        """The ancilla tree over qubit indices."""
        g = nx.Graph()
        g.add_nodes_from(self.ancilla(k) for k in range(self.n_ancillas))
        g.add_edges_from((self.ancilla(a), self.ancilla(b)) for a, b in self.edges)
        return g

    def coupled(self, data: int) -> tuple[int, ...]:
        """The ancilla qubits coupled to a data qubit."""
        return tuple(sorted(self.ancilla(k) for k, d in self.pendant if d == data))


@dataclass(frozen=True)
class Register:
    """One register gadget: `roots` (ancilla qubit, label of its fresh bit), the spread as CX(u -> v) in
    program order (undone in reverse), and the data actions (ancilla, data) in program order."""

    roots: tuple[tuple[int, str], ...]
    spread: tuple[tuple[int, int], ...]
    actions: tuple[tuple[int, int], ...]

    @cached_property
    def qubits(self) -> tuple[int, ...]:
        qs = {a for a, _ in self.roots} | {q for e in self.spread for q in e} | {a for a, _ in self.actions}
        return tuple(sorted(qs))

    def contents(self) -> dict[int, frozenset[str]]:
        """What each register ancilla holds between spread and unspread: a set of root labels (XOR)."""
        held = {q: frozenset() for q in self.qubits}
        for a, label in self.roots:
            held[a] = frozenset({label})
        for u, v in self.spread:
            held[v] = held[v] ^ held[u]
        return held

    def applied(self) -> dict[int, frozenset[str]]:
        """What each data qubit receives: the XOR of its acting ancillas' contents."""
        held = self.contents()
        out: dict[int, frozenset[str]] = {}
        for a, d in self.actions:
            out[d] = out.get(d, frozenset()) ^ held[a]
        return out


def cat(tree: nx.Graph, root: int, actions: list[tuple[int, int]]) -> Register:
    """A one-root register over the smallest subtree holding the root and every acting ancilla.

    The spread sends, at every ancilla, the largest remaining subtree first (optimal broadcast in a tree),
    and actions run nearest-root first, so near ancillas act while far ones are still being reached."""
    need = {a for a, _ in actions} | {root}
    sub = nx.Graph()
    sub.add_node(root)
    for a in need:
        nx.add_path(sub, nx.shortest_path(tree, root, a))
    depth = nx.single_source_shortest_path_length(sub, root)
    parent = {v: u for u, v in nx.bfs_edges(sub, root)}
    children: dict[int, list[int]] = {v: [] for v in sub}
    for v, u in parent.items():
        children[u].append(v)
    span: dict[int, int] = {}

    def broadcast(v: int) -> int:
        """Steps for v to reach its whole subtree, its own actions included."""
        own = sum(1 for a, _ in actions if a == v)
        times = sorted((broadcast(c) for c in children[v]), reverse=True)
        span[v] = max([i + 1 + t for i, t in enumerate(times)] + [len(times) + own])
        return span[v]

    broadcast(root)
    spread: list[tuple[int, int]] = []
    frontier = [root]
    while frontier:
        nxt = []
        for v in frontier:
            for c in sorted(children[v], key=lambda c: (-span[c], c)):
                spread.append((v, c))
                nxt.append(c)
        frontier = nxt
    ordered = sorted(actions, key=lambda x: (depth[x[0]], x))
    return Register(((root, "L"),), tuple(spread), tuple(ordered))


@dataclass(frozen=True)
class Encoder:
    """A CX circuit that encodes: `pivots` maps each qubit that starts with a fresh bit to its label
    ("L" for the |H> input, a face label for a |+>); a pivot may be an ancilla (e.g. a stabilizer block's
    root, prepared in |+>), every other qubit starts in |0>. `layers` are CX(c, t)
    sets run one after another; at the end every ancilla is back in |0>."""

    pivots: tuple[tuple[int, str], ...]
    layers: tuple[tuple[tuple[int, int], ...], ...]


@dataclass(frozen=True)
class Gadget:
    """One gadget of a round: "HL" (the logical-Hadamard cat), "X" or "Z" (a stabilizer block).

    `late_readout`: the gadget's measurements may move as late as the next operation on their qubits
    allows, like its gates, so its unspread and data actions move later too. Worth it in the last round:
    the data then wait less between their last check and the end of the attempt. Elsewhere it only lets
    ancillas idle longer before their readout (fewer attempts accepted, nothing gained)."""

    kind: str
    register: Register
    late_readout: bool = False


@dataclass(frozen=True)
class Design:
    """Everything a shared-register protocol needs: the layout, the encoder and, per round, its gadgets in
    program order. Stored as JSON in `ctrl/protocol/designs/` (`to_doc`, `from_doc`, `stored_design`)."""

    distance: int
    degree: int
    layout: TreeLayout
    encoder: Encoder
    rounds: tuple[tuple[Gadget, ...], ...]

    def __repr__(self) -> str:
        order = " | ".join(" ".join(g.kind for g in r) for r in self.rounds)
        return f"Design(d={self.distance}, degree<={self.degree}, {self.layout!r}, rounds: {order})"

    def to_doc(self) -> dict:
        def reg(r: Register) -> dict:
            return {
                "roots": [[a, label] for a, label in r.roots],
                "spread": [list(e) for e in r.spread],
                "actions": [list(e) for e in r.actions],
            }

        lay = self.layout
        return {
            "format": DESIGN_FORMAT,
            "distance": self.distance,
            "degree": self.degree,
            "layout": {
                "n_data": lay.n_data,
                "edges": [list(e) for e in lay.edges],
                "pendant": [list(e) for e in lay.pendant],
                "ancilla_coords": [list(c) for c in lay.ancilla_coords],
            },
            "encoder": {
                "pivots": [[q, label] for q, label in self.encoder.pivots],
                "layers": [[list(g) for g in layer] for layer in self.encoder.layers],
            },
            "rounds": [
                [{"kind": g.kind} | reg(g.register) | ({"late_readout": True} if g.late_readout else {}) for g in r]
                for r in self.rounds
            ],
        }

    @classmethod
    def from_doc(cls, doc: dict) -> Design:
        def pairs(xs) -> tuple[tuple[int, int], ...]:
            return tuple((int(a), int(b)) for a, b in xs)

        def reg(g: dict) -> Register:
            roots = tuple((int(a), str(label)) for a, label in g["roots"])
            return Register(roots, pairs(g["spread"]), pairs(g["actions"]))

        if doc.get("format") != DESIGN_FORMAT:
            raise CtrlError(f"design record has format {doc.get('format')!r}, expected {DESIGN_FORMAT!r}")
        lay = doc["layout"]
        layout = TreeLayout(
            int(lay["n_data"]),
            pairs(lay["edges"]),
            pairs(lay["pendant"]),
            tuple((float(x), float(y)) for x, y in lay["ancilla_coords"]),
        )
        enc = Encoder(
            tuple((int(q), str(label)) for q, label in doc["encoder"]["pivots"]),
            tuple(pairs(layer) for layer in doc["encoder"]["layers"]),
        )
        rounds = tuple(
            tuple(Gadget(str(g["kind"]), reg(g), bool(g.get("late_readout", False))) for g in r) for r in doc["rounds"]
        )
        return cls(int(doc["distance"]), int(doc["degree"]), layout, enc, rounds)


DESIGN_FORMAT = "ctrl.design/1"
DESIGNS = Path(__file__).parent / "designs"


def design_path(distance: int, degree: int) -> Path:
    return DESIGNS / f"d{distance}_degree{degree}.json"


@lru_cache(maxsize=16)
def stored_design(distance: int, degree: int = 3) -> Design | None:
    """The stored design for (distance, degree), or None when the search has not produced one."""
    path = design_path(distance, degree)
    if not path.exists():
        return None
    return Design.from_doc(json.loads(path.read_text(encoding="utf-8")))


def build(code: ColorCode, design: Design) -> ProtocolCircuit:
    """The protocol circuit of a design: encoder, then every round's gadgets, list-scheduled together."""
    layout = design.layout
    check_design(code, design)
    prog = Program()
    pivots = dict(design.encoder.pivots)
    for q in range(code.n):
        label = pivots.get(q)
        prog.add("RH" if label == "L" else "RX" if label else "R", (q,), "enc")
    prepared: set[int] = set()
    for layer in design.encoder.layers:
        for c, t in layer:
            for a in (c, t):
                if a >= code.n and a not in prepared:
                    prepared.add(a)
                    label = pivots.get(a)
                    prog.add("RH" if label == "L" else "RX" if label else "R", (a,), "enc")
            prog.add("CX", (c, t), "enc")
    # An X block followed by a Z block (or the reverse) hands over the non-root ancillas both use without
    # measuring them in between: one readout instead of two, and no gap in which the data wait.
    seq = [(r, g) for r, gadgets in enumerate(design.rounds) for g in gadgets]
    late = {f"r{r}.{g.kind}" for r, g in seq if g.late_readout}
    kept: frozenset[int] = frozenset()
    for i, (r, g) in enumerate(seq):
        tag = f"r{r}.{g.kind}"
        keep: frozenset[int] = frozenset()
        if g.kind != "HL" and i + 1 < len(seq) and seq[i + 1][1].kind not in ("HL", g.kind):
            roots = {a for a, _ in g.register.roots}
            keep = frozenset(a for a in g.register.qubits if a not in roots and a in seq[i + 1][1].register.qubits)
        if g.kind == "HL":
            prog.register(g.register, "CH", tag, {"L": tag}, ("logical-H", "cat-parity"), r, keep=keep, kept=kept)
        else:
            names = {label: f"{tag}.{label}" for _, label in g.register.roots}
            gate = "CX" if g.kind == "X" else "CZ"
            prog.register(g.register, gate, tag, names, ("syndrome", "flag"), r, keep=keep, kept=kept)
        kept = keep
    # Register gates as late as they can go: data wait less after their last check of each type. A gadget
    # with a late readout moves its measurements too, and with them its unspread and its data actions.
    movable = [
        tag != "enc" and (name not in ("M", "MX", "RH") or (name in ("M", "MX") and tag in late))
        for name, _, tag, _ in prog.ops
    ]
    steps = as_late_as_possible(prog.ops, schedule(prog.ops, prog.phases), movable.__getitem__)
    return prog.circuit(code, steps, layout.ancilla_coords, layout.couplers, len(design.rounds))


def check_design(code: ColorCode, design: Design) -> None:
    """Refuses a design that does not do what it claims, by linear algebra alone: every gadget's register
    delivers each data qubit exactly its labels over the layout's couplers, and the encoder's CX circuit
    maps its pivots to the code state with every ancilla clean."""
    layout = design.layout
    couplers = set(layout.couplers)
    faces = {f"F{f.index}": set(f.qubits) for f in code.faces}

    def coupled(a: int, b: int) -> bool:
        return (min(a, b), max(a, b)) in couplers

    if layout.n_data != code.n or design.distance != code.distance:
        raise CtrlError(f"design is for distance {design.distance}, not {code.distance}")
    if len(design.rounds) != (code.distance - 1) // 2:
        raise CtrlError(f"design has {len(design.rounds)} rounds, distance {code.distance} needs {(code.distance - 1) // 2}")
    for r, gadgets in enumerate(design.rounds):
        if sorted(g.kind for g in gadgets) != ["HL", "X", "Z"]:
            raise CtrlError(f"design round {r} must hold one HL, one X and one Z gadget")
        for g in gadgets:
            reg = g.register
            if not all(coupled(u, v) for u, v in reg.spread + reg.actions):
                raise CtrlError(f"design round {r} {g.kind}: a gate on a pair that is not coupled")
            got = reg.applied()
            for q in range(code.n):
                want = {"L"} if g.kind == "HL" else {f for f, qs in faces.items() if q in qs}
                if got.get(q, frozenset()) != want:
                    raise CtrlError(f"design round {r} {g.kind}: data qubit {q} receives {sorted(got.get(q, ()))}")
            if g.kind == "HL" and sorted(d for _, d in reg.actions) != list(range(code.n)):
                raise CtrlError(f"design round {r} HL: every data qubit needs exactly one controlled-Hadamard")
    held: dict[int, frozenset[str]] = {q: frozenset() for q in range(layout.n_qubits)}
    for q, label in design.encoder.pivots:
        held[q] = frozenset({label})
    for layer in design.encoder.layers:
        touched = [q for g in layer for q in g]
        if len(touched) != len(set(touched)) or not all(coupled(c, t) for c, t in layer):
            raise CtrlError("design encoder: a layer reuses a qubit or uses an uncoupled pair")
        for c, t in layer:
            held[t] = held[t] ^ held[c]
    logical = {q for q in range(code.n) if "L" in held[q]}
    for f, qs in faces.items():
        if {q for q in range(code.n) if f in held[q]} != qs:
            raise CtrlError(f"design encoder: face {f}'s bit does not end on its face")
    h = code.check_matrix
    vec = np.zeros(code.n, dtype=np.uint8)
    vec[sorted(logical)] = 1
    if (h @ vec % 2).any() or len(logical) % 2 == 0:  # commutes with every face and is no stabilizer
        raise CtrlError("design encoder: the logical bit does not end on a logical operator")
    if any(held[q] for q in range(code.n, layout.n_qubits)):
        raise CtrlError("design encoder: an ancilla is left holding a bit")
