"""The Chamberland-Noh (npj QI 6, 91, 2020) |H> preparation, built for any odd distance.

One attempt:

1. Encode: data qubits start in |0>, |+> (one pivot per face) and |H> (one pivot on a logical side); each
   pivot's value is fanned out over its face (or side) through that face's ancilla segment. The result is
   |H>_L with no fault tolerance; later checks catch what goes wrong here.
2. (d-1)/2 times: measure the transversal logical Hadamard H_L with a cat state on the whole ancilla path
   (one controlled-Hadamard per data qubit), then one round of X and Z stabilizers, each with a cat on the
   face's own ancilla segment.

Every cat gadget is the same shape: prepare the root in |+>, spread it along the path (CX parent -> child),
let each cat qubit act on its data qubit, unspread, measure the root in X (the logical-H or syndrome value)
and every other cat qubit in Z. Those Z results are the flags: an X fault on a cat qubit (the only fault
that spreads to several data qubits) flips the flag of that qubit or of its children, so every check must
read 0 for the attempt to be accepted.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from functools import lru_cache

from ctrl.codes.color import ColorCode, check_distance, color_code
from ctrl.errors import CtrlError
from ctrl.protocol.ir import ProtocolCircuit
from ctrl.protocol.layout import Layout, build_layout, min_window
from ctrl.protocol.program import Program, schedule
from ctrl.protocol.tree import Design, build, stored_design


@dataclass(frozen=True)
class _Source:
    """One encoder fan-out: `pivot` (fresh) is copied onto every other qubit of `support`."""

    name: str
    support: tuple[int, ...]
    ancillas: tuple[int, ...]  # the path segment that carries it


def _middle(path: tuple[int, ...]) -> int:
    return path[(len(path) - 1) // 2]


def _encoder_orders(code: ColorCode, layout: Layout, tries: int):
    """Valid fan-out orders with their pivots: every pivot is still untouched when its fan-out fires.

    Built by peeling from the back (the last source needs a qubit no other remaining source touches),
    with seeded random choices, for each logical side; the caller keeps the one that schedules shortest.
    """
    rng = random.Random(0)
    faces = [_Source(f"enc.F{f.index}", f.qubits, layout.segment(f.index)) for f in code.faces]
    for side in code.sides:
        lo, hi = _window(layout, side)
        sources = [_Source("enc.L", side, tuple(layout.ancilla(k) for k in range(lo, hi + 1)))] + faces
        for attempt in range(tries):
            remaining = list(sources)
            order: list[_Source] = []
            pivots: dict[str, int] = {}
            while remaining:
                options = []
                for src in remaining:
                    others = set().union(*(set(o.support) for o in remaining if o is not src))
                    options += [(src, q) for q in src.support if q not in others and q not in pivots.values()]
                if not options:
                    break
                # The first attempt is greedy: pivots coupled to the middle of their segment spread fastest.
                src, q = rng.choice(options) if attempt else min(options, key=lambda o: _depth(layout, *o))
                pivots[src.name] = q
                order.append(src)
                remaining.remove(src)
            if not remaining:
                yield order[::-1], pivots


def _depth(layout: Layout, src: _Source, pivot: int) -> int:
    root = next(i for i, a in enumerate(src.ancillas) if layout.slot_of(a) == pivot)
    return max(root, len(src.ancillas) - 1 - root)


def _window(layout: Layout, support: tuple[int, ...]) -> tuple[int, int]:
    window = min_window(layout.slots, support)
    assert window is not None, support
    return window


def _assign(layout: Layout, path: tuple[int, ...], root: int, support: tuple[int, ...]) -> dict[int, int]:
    """For each qubit of `support`, the cat qubit on `path` nearest the root that is coupled to it."""
    r = path.index(root)
    act: dict[int, int] = {}
    for a in sorted(path, key=lambda a: abs(path.index(a) - r)):
        q = layout.slot_of(a)
        if q in support and q not in act.values():
            act[a] = q
    missing = set(support) - set(act.values())
    assert not missing, missing
    return act


def _exposure(ops: list[tuple[str, tuple[int, ...], str, str]], steps: list[int], n_data: int) -> tuple[int, int]:
    """(data-qubit steps after the last X-type and Z-type check interaction of each data qubit, length)."""
    end = max(steps) + 1
    last = {}
    for (name, targets, tag, _), s in zip(ops, steps):
        if name in ("CX", "CZ") and (".X." in tag or ".Z." in tag):
            basis = "X" if ".X." in tag else "Z"
            last[targets[1], basis] = max(last.get((targets[1], basis), 0), s)
    return sum(end - last.get((q, b), 0) for q in range(n_data) for b in "XZ"), end


@lru_cache(maxsize=16)
def cn20_protocol(distance: int, layout: Layout | Design | None = None) -> ProtocolCircuit:
    """The CN20 protocol circuit at an odd distance >= 3.

    `layout` picks the family: a `Design` is the shared-register family (`ctrl.protocol.tree`), a `Layout`
    the ancilla-path family; None is the default variant of `variants(distance)` (the first)."""
    d = check_distance(distance)
    if layout is None:
        layout = variants(d)[0][1]
    if isinstance(layout, Design):
        return build(color_code(d), layout)
    return _path_protocol(d, layout)


@lru_cache(maxsize=16)
def variants(distance: int) -> tuple[tuple[str, Layout | Design], ...]:
    """The protocol's layout families at a distance, best first: "tree" and "tree4" (the stored
    shared-register designs for degree limits 3 and 4, where the search has produced them) and "path" (one
    ancilla path, one data qubit per ancilla: needs only a long path in the device, so it adapts to grids
    and heavy-hex lattices)."""
    d = check_distance(distance)
    found = []
    for degree in (3, 4):
        design = stored_design(d, degree)
        if design is not None:
            found.append((variant_name(design), design))
    found.append(("path", build_layout(color_code(d))))
    return tuple(found)


def variant_name(layout: Layout | Design) -> str:
    if isinstance(layout, Design):
        return "tree" if layout.degree == 3 else f"tree{layout.degree}"
    return "path"


@lru_cache(maxsize=16)
def _path_protocol(d: int, layout: Layout) -> ProtocolCircuit:
    code = color_code(d)
    prog = Program()

    def encoder(order: list[_Source], pivots: dict[str, int]) -> Program:
        prog = Program()
        for q in range(code.n):
            role = {pivots["enc.L"]: "RH"}.get(q, "RX" if q in pivots.values() else "R")
            prog.add(role, (q,), "enc")
        for src in order:
            p = pivots[src.name]
            root = next(a for a in src.ancillas if layout.slot_of(a) == p)
            targets = tuple(q for q in src.support if q != p)
            prog.cat(src.ancillas, root, _assign(layout, src.ancillas, root, targets), "CX", src.name, pivot=p)
        return prog

    candidates = [encoder(*c) for c in _encoder_orders(code, layout, tries=60)]
    if not candidates:
        raise CtrlError(f"no valid encoder pivot order for distance {code.distance}")
    prog = min(candidates, key=lambda p: max(schedule(p.ops, p.phases)))

    lo, hi = _window(layout, tuple(range(code.n)))
    cat_path = tuple(layout.ancilla(k) for k in range(lo, hi + 1))
    rounds = (d - 1) // 2
    parity = {f: i % 2 for i, f in enumerate(layout.tour)}
    blocks = {
        (basis, side): [f for f in layout.tour if parity[f] == side] for basis in "XZ" for side in (0, 1)
    }
    encoder_ops = list(prog.ops)
    encoder_phases = list(prog.phases)

    # The logical fan-out's ancillas are reused without a reset: a fault there can leave an X that an RX
    # would turn into a Z on the cat root, hiding the logical error it made from the first H_L check. A
    # root the fan-out never touched (the nearest such to the middle) is prepared from a clean |0>.
    touched = {q for _, targets, tag, _ in encoder_ops if tag == "enc.L" for q in targets}
    clean = [a for a in cat_path if a not in touched] or list(cat_path)
    mid = cat_path.index(_middle(cat_path))
    cat_root = min(clean, key=lambda a: (abs(cat_path.index(a) - mid), a))
    cat_act = _assign(layout, cat_path, cat_root, tuple(range(code.n)))

    def with_rounds(order: tuple[tuple[str, int], ...]) -> Program:
        full = Program()
        full.ops = list(encoder_ops)
        full.phases = list(encoder_phases)
        for r in range(rounds):
            full.cat(cat_path, cat_root, cat_act, "CH", f"r{r}.HL", kinds=("logical-H", "cat-parity"), round_=r)
            for basis, side in order:
                for f in blocks[basis, side]:
                    seg = layout.segment(f)
                    root = _middle(seg)
                    act = _assign(layout, seg, root, code.faces[f].qubits)
                    full.cat(seg, root, act, "CX" if basis == "X" else "CZ", f"r{r}.{basis}.F{f}", round_=r)
        return full

    # The order of the stabilizer blocks decides how long each data qubit waits, after its last check of
    # each type, until the end: errors there pass every check. Take the order with the shortest wait.
    prog = min(
        (with_rounds(order) for order in itertools.permutations(sorted(blocks))),
        key=lambda p: _exposure(p.ops, schedule(p.ops, p.phases), code.n),
    )

    return prog.circuit(code, schedule(prog.ops, prog.phases), layout.ancilla_coords, layout.couplers, rounds)
