"""Searches for shared-register designs (`ctrl.protocol.tree`): CP-SAT models for one stabilizer block's
register and for the encoder, and the design search that composes them with the logical-Hadamard cat and
ranks whole protocols with a scorer it is handed. Needs OR-tools; only `tools/search_designs.py` runs it,
and its results are stored in `ctrl/protocol/designs/`, so compiling never solves anything."""

from __future__ import annotations

from ctrl.errors import CtrlError
from ctrl.protocol.program import Program, schedule
from ctrl.protocol.tree import Encoder, Register, TreeLayout


def block(
    layout: TreeLayout,
    supports: dict[str, tuple[int, ...]],
    *,
    seconds: float = 20.0,
    seed: int = 0,
    enumerate_within: tuple[int, int] | None = None,
    limit: int = 200,
) -> Register:
    """A register measuring every support at once (one root per support, e.g. all X faces), found by
    CP-SAT: roots, which tree edges spread in which direction, and which data couplers act, such that each
    data qubit receives exactly the labels of the supports it belongs to. The objective is a depth model
    (each ancilla's contents final at T, one CX or action per step, unspread mirrors the spread) first,
    then the number of two-qubit gates."""
    from ortools.sat.python import cp_model

    labels = sorted(supports)
    anc = list(range(layout.n_ancillas))
    want = {q: {f for f in labels if q in supports[f]} for q in range(layout.n_data)}
    m = cp_model.CpModel()
    horizon = 2 * layout.n_ancillas + 2
    root = {(f, a): m.NewBoolVar(f"root_{f}_{a}") for f in labels for a in anc}
    for f in labels:
        m.AddExactlyOne(root[f, a] for a in anc)
    for a in anc:
        m.AddAtMostOne(root[f, a] for f in labels)
    arcs = {}
    for u, v in layout.edges:
        arcs[u, v] = m.NewBoolVar(f"arc_{u}_{v}")
        arcs[v, u] = m.NewBoolVar(f"arc_{v}_{u}")
        m.AddAtMostOne([arcs[u, v], arcs[v, u]])
    into = {a: [(u, x) for (u, v), x in arcs.items() if v == a] for a in anc}
    out = {a: [x for (u, v), x in arcs.items() if u == a] for a in anc}
    held = {(a, f): m.NewBoolVar(f"held_{a}_{f}") for a in anc for f in labels}
    for a in anc:
        for f in labels:
            # On a tree at most one of a's sources (its own root bit, or an arc from a holder of f) carries
            # f: two would close a cycle. So a holds f exactly when one of them does: an OR of exclusive
            # terms, which CP-SAT propagates far better than the equivalent XOR of products.
            terms = [root[f, a]]
            for u, x in into[a]:
                t = m.NewBoolVar("")
                m.AddBoolAnd([x, held[u, f]]).OnlyEnforceIf(t)
                m.AddBoolOr([x.Not(), held[u, f].Not(), t])
                terms.append(t)
            m.AddAtMostOne(terms)
            for t in terms:
                m.AddImplication(t, held[a, f])
            m.AddBoolOr(terms).OnlyEnforceIf(held[a, f])
    use = {(k, d): m.NewBoolVar(f"use_{k}_{d}") for k, d in layout.pendant}
    for q in range(layout.n_data):
        mine = [k for k, d in layout.pendant if d == q]
        for f in labels:
            terms = []
            for k in mine:
                t = m.NewBoolVar("")
                m.AddMultiplicationEquality(t, [use[k, q], held[k, f]])
                terms.append(t)
            m.AddBoolXOr(terms + ([] if f in want[q] else [m.NewConstant(1)]))
    # Depth model: T[a] = step at which a's contents are final; sends and actions follow one per step.
    T = {a: m.NewIntVar(0, horizon, f"T_{a}") for a in anc}
    busy = {a: m.NewIntVar(0, horizon, f"busy_{a}") for a in anc}
    active = {a: m.NewBoolVar(f"active_{a}") for a in anc}
    for a in anc:
        for (u, v), x in arcs.items():
            if v == a:
                m.Add(T[a] >= T[u] + 1).OnlyEnforceIf(x)
        m.Add(T[a] >= sum(x for _, x in into[a]))
        acts = [use[k, d] for k, d in layout.pendant if k == a]
        m.Add(busy[a] == T[a] + sum(out[a]) + sum(acts))
        things = [root[f, a] for f in labels] + [x for _, x in into[a]] + out[a] + acts
        m.AddMaxEquality(active[a], things)
        for x in acts:  # an acting ancilla holds something
            m.AddBoolOr([held[a, f] for f in labels]).OnlyEnforceIf(x)
    span = m.NewIntVar(0, horizon, "span")
    m.AddMaxEquality(span, [busy[a] for a in anc])
    gates = sum(arcs.values()) + sum(use.values())
    if enumerate_within is not None:
        best_span, best_gates = enumerate_within
        m.Add(span <= best_span)
        m.Add(gates <= best_gates)
        return _enumerate(m, layout, root, arcs, use, T, anc, limit)
    m.Minimize(1000 * span + 10 * gates + sum(active.values()))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    status = solver.Solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise CtrlError("no shared register measures every stabilizer of one type on this layout")
    reg = _register(solver.Value, layout, root, arcs, use, T, anc)
    got = reg.applied()
    assert all(got.get(q, frozenset()) == want[q] for q in want), "register synthesis is inconsistent"
    return reg


def encoder(
    layout: TreeLayout,
    faces: dict[str, tuple[int, ...]],
    logical: tuple[int, ...],
    *,
    max_depth: int = 16,
    min_depth: int = 2,
    seconds: float = 60.0,
    candidates: dict[str, tuple[int, ...]] | None = None,
    forbid: tuple[tuple[int, str], ...] = (),
    deadline: dict[int, int] | None = None,
    hint: tuple[tuple[tuple[int, int], ...], ...] | None = None,
    minimize: bool = True,
    log=lambda text: None,
) -> Encoder:
    """The shallowest CX circuit on the layout's couplers that takes one fresh bit per face (|+>) and the
    logical bit (|H>), each starting on some qubit, to the code state: data qubit q holds the labels
    of its faces, plus L on a logical representative (the given support plus any faces); ancillas clean.
    Found by CP-SAT, depth by depth; then the fewest gates at that depth (unless `minimize` is off).

    `candidates`: where each label's pivot may start (default: any data qubit). Ancilla pivots, e.g. the
    roots of a stabilizer block's register, make the encoder much shallower (d=5: 10 CX layers against
    18). `forbid`: (qubit, label) pairs that must never hold the label, e.g. the logical bit on the H_L
    cat's root (an X fault left there by the encoder would turn into a Z on the root at its RX and hide a
    logical error). `deadline`: qubit -> last layer (1-based) that may touch it, so the first gadget can
    start on a qubit before the encoder has finished elsewhere. `hint`: layers to start the search from.

    Each label's bit can be on a qubit at layer t only within graph distance t of its candidates, which
    prunes most variables; a CX's effect is linearised (at most one gate per qubit per layer)."""
    import networkx as nx
    from ortools.sat.python import cp_model

    labels = sorted(faces) + ["L"]
    n = layout.n_qubits
    cand = candidates or {i: tuple(range(layout.n_data)) for i in labels}
    pairs = [(a, b) for a, b in layout.couplers] + [(b, a) for a, b in layout.couplers]
    graph = nx.Graph(layout.couplers)
    banned: dict[str, set[int]] = {}
    for q, i in forbid:
        banned.setdefault(i, set()).add(q)
    dist: dict[str, dict[int, int]] = {i: {} for i in labels}
    for i in labels:
        sub = graph.subgraph([q for q in graph if q not in banned.get(i, ())])
        for c in cand[i]:
            for q, k in nx.single_source_shortest_path_length(sub, c).items():
                dist[i][q] = min(dist[i].get(q, n), k)
    for depth in range(min_depth, max_depth + 1):
        m = cp_model.CpModel()
        piv = {(q, i): m.NewBoolVar("") for i in labels for q in cand[i]}
        for i in labels:
            m.AddExactlyOne(piv[q, i] for q in cand[i])
        for q in range(n):
            m.AddAtMostOne(piv[q, i] for i in labels if (q, i) in piv)
        zero = m.NewConstant(0)
        x = [{(q, i): piv.get((q, i), zero) for q in range(n) for i in labels}]
        g = []
        for t in range(depth):
            gt = {
                e: m.NewBoolVar("")
                for e in pairs
                if deadline is None or t + 1 <= min(deadline.get(e[0], depth), deadline.get(e[1], depth))
            }
            into: dict[int, list] = {q: [] for q in range(n)}
            touch: dict[int, list] = {q: [] for q in range(n)}
            for (a, b), v in gt.items():
                into[b].append((a, v))
                touch[a].append(v)
                touch[b].append(v)
            for q in range(n):
                m.AddAtMostOne(touch[q])
            nxt = {}
            for q in range(n):
                for i in labels:
                    sources = [(a, v) for a, v in into[q] if dist[i].get(a, n) <= t]
                    if q in banned.get(i, ()):
                        for a, v in sources:
                            m.AddBoolOr([v.Not(), x[-1][a, i].Not()])
                        nxt[q, i] = zero
                        continue
                    if dist[i].get(q, n) > t + 1 or not sources:
                        nxt[q, i] = x[-1][q, i] if dist[i].get(q, n) <= t + 1 else zero
                        continue
                    ps = []
                    for a, v in sources:
                        p = m.NewBoolVar("")
                        m.AddImplication(p, v)
                        m.AddImplication(p, x[-1][a, i])
                        m.AddBoolOr([v.Not(), x[-1][a, i].Not(), p])
                        ps.append(p)
                    y = m.NewBoolVar("")
                    m.Add(sum(ps) == y)
                    new = m.NewBoolVar("")
                    m.AddBoolXOr([x[-1][q, i], y, new.Not()])
                    nxt[q, i] = new
            x.append(nxt)
            g.append(gt)
        extra = {f: m.NewBoolVar("") for f in faces}
        for q in range(n):
            for i in labels:
                if q >= layout.n_data:
                    m.Add(x[-1][q, i] == 0)
                elif i != "L":
                    m.Add(x[-1][q, i] == int(q in faces[i]))
                else:
                    terms = [x[-1][q, i]] + [extra[f] for f in faces if q in faces[f]]
                    m.AddBoolXOr(terms + ([] if q in logical else [m.NewConstant(1)]))
        if hint:
            for t, gt in enumerate(g):
                layer = set(hint[t]) if t < len(hint) else set()
                for e, v in gt.items():
                    m.AddHint(v, e in layer)
        if minimize:
            m.Minimize(sum(v for gt in g for v in gt.values()))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = seconds
        solver.parameters.num_workers = 1
        status = solver.Solve(m)
        log(f"encoder depth {depth}: {solver.StatusName(status)}")
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            pivots = tuple(sorted((q, i) for (q, i), v in piv.items() if solver.Value(v)))
            layers = tuple(tuple(sorted(e for e, v in gt.items() if solver.Value(v))) for gt in g)
            return Encoder(pivots, tuple(layer for layer in layers if layer))
    raise CtrlError(f"no encoder of depth <= {max_depth} on this layout")


def _register(value, layout: TreeLayout, root, arcs, use, T, anc) -> Register:
    """The register a solution describes (`value`: the solver's Value), spreads and actions in the order
    of the depth model's times."""
    roots = tuple(sorted((layout.ancilla(a), f) for (f, a), x in root.items() if value(x)))
    t = {a: value(T[a]) for a in anc}
    chosen = [(u, v) for (u, v), x in arcs.items() if value(x)]
    spread = tuple((layout.ancilla(u), layout.ancilla(v)) for u, v in sorted(chosen, key=lambda e: (t[e[0]], e)))
    acts = sorted(
        ((layout.ancilla(k), d) for (k, d), x in use.items() if value(x)), key=lambda x: (t[x[0] - layout.n_data], x)
    )
    return Register(roots, spread, tuple(acts))


def _enumerate(m, layout, root, arcs, use, T, anc, limit):
    """Every register the model allows, up to `limit`: solve, then forbid that choice of roots, arcs and
    actions, and solve again. Deterministic (one worker, a fixed seed, no time limit per solve), so a
    search gives the same registers on a loaded machine as on an idle one."""
    from ortools.sat.python import cp_model

    choice = list(root.values()) + list(arcs.values()) + list(use.values())
    found = []
    while len(found) < limit:
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = 0
        if solver.Solve(m) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            break
        found.append(_register(solver.Value, layout, root, arcs, use, T, anc))
        m.AddBoolOr([x.Not() if solver.Value(x) else x for x in choice])
    return found


def cat_options(code, layout: TreeLayout, keep: int = 4) -> list[Register]:
    """Logical-Hadamard cats on the layout: every root, every choice of one coupler per data qubit (sampled
    when there are too many), kept by the length of the gadget alone and then by its size."""
    import itertools
    import random

    from ctrl.protocol.tree import cat

    choices = [layout.coupled(q) for q in range(code.n)]
    combos = list(itertools.islice(itertools.product(*choices), 4096))
    if len(combos) == 4096:
        rng = random.Random(0)
        combos = [tuple(rng.choice(c) for c in choices) for _ in range(4096)]
    found = {}
    for root in sorted(layout.tree.nodes):
        for combo in combos:
            reg = cat(layout.tree, root, [(a, q) for q, a in enumerate(combo)])
            found.setdefault((reg.roots, frozenset(reg.spread), frozenset(reg.actions)), reg)
    regs = list(found.values())
    regs.sort(key=lambda r: (gadget_steps(r, "CH"), len(r.spread), r.roots, r.actions))
    return regs[:keep]


def gadget_steps(reg: Register, gate: str) -> int:
    """Time steps of one gadget scheduled alone."""
    p = Program()
    p.register(reg, gate, "g", {label: label for _, label in reg.roots}, ("a", "b"), 0)
    return max(schedule(p.ops, p.phases)) + 1


def search_design(code, layout: TreeLayout, degree: int, score, *, registers: int = 200, late_tries: int = 8,
                  log=print):  # fmt: skip
    """The best design on a layout: the encoder (shallowest, then fewest gates), every register of the
    shortest-span class for the X and the Z block, the shortest cats, both block orders after the cat;
    every round the same, and the best `late_tries` of them again with the last round's blocks read out
    late. `score(circuit)` ranks them: (logical error, acceptance), lower error first, then
    fewer steps; None drops a design (`ctrl.sim.faults.design_score` is the one the tool uses: simulation
    comes after the protocol stage, so the search is handed it rather than importing it)."""
    import itertools

    from ctrl.protocol.tree import Design, Gadget, build

    faces = {f"F{f.index}": f.qubits for f in code.faces}
    enc = encoder(layout, faces, code.logical, log=log)
    log(f"encoder: {len(enc.layers)} CX layers, {sum(map(len, enc.layers))} CXs")
    best = block(layout, faces)
    span = gadget_steps(best, "CX")
    gates = len(best.spread) + len(best.actions)
    distinct = {(best.roots, frozenset(best.spread), frozenset(best.actions)): best}
    # Registers a little longer or larger than the best one can still pair better with the other block.
    for r in block(layout, faces, enumerate_within=(span + 2, gates + 4), limit=registers):
        distinct.setdefault((r.roots, frozenset(r.spread), frozenset(r.actions)), r)
    regs = sorted(distinct.values(), key=lambda r: (gadget_steps(r, "CX"), r.roots, r.spread, r.actions))
    log(f"registers: {len(regs)} distinct, block lengths {sorted({gadget_steps(r, 'CX') for r in regs})}")
    cats = cat_options(code, layout, keep=2)
    rounds = (code.distance - 1) // 2
    ranked = []
    for hl, rz, rx in itertools.product(cats, regs, regs):
        for order in (("HL", "Z", "X"), ("HL", "X", "Z")):
            reg = {"HL": hl, "Z": rz, "X": rx}
            one = tuple(Gadget(k, reg[k]) for k in order)
            design = Design(code.distance, degree, layout, enc, (one,) * rounds)
            circuit = build(code, design)
            scored = score(circuit)
            if scored is not None:
                ranked.append((scored[0], circuit.n_steps, -scored[1], len(ranked), design))
    ranked.sort(key=lambda x: x[:4])
    # The best few again with their last round's blocks read out late (`Gadget.late_readout`): the data
    # then wait less after their last checks, which is where the remaining error sits (4x at d=5).
    for _, _, _, _, design in ranked[:late_tries]:
        variant = late_last_round(design)
        circuit = build(code, variant)
        scored = score(circuit)
        if scored is not None:
            ranked.append((scored[0], circuit.n_steps, -scored[1], len(ranked), variant))
    ranked.sort(key=lambda x: x[:4])
    p_l, steps, acc, _, design = ranked[0]
    log(f"best of {len(ranked)}: {steps} steps, leading-order p_L {p_l:.3g}, acceptance {-acc:.3f}")
    return design


def late_last_round(design):
    """`design` with its last round's stabilizer blocks read out as late as their ancillas allow."""
    import dataclasses

    *head, last = design.rounds
    late = tuple(dataclasses.replace(g, late_readout=g.kind in ("X", "Z")) for g in last)
    return dataclasses.replace(design, rounds=(*head, late))
