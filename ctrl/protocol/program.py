"""A protocol program under construction: ops in program order with their gadget phase, checks, and the
list scheduler that turns program order into time steps (shared by every layout family)."""

from __future__ import annotations

from ctrl.codes.color import ColorCode
from ctrl.protocol.ir import GATES, PREPARATIONS, Check, Op, ProtocolCircuit, Qubit


class Program:
    def __init__(self) -> None:
        self.ops: list[tuple[str, tuple[int, ...], str, str]] = []
        self.phases: list[str] = []
        self.checks: list[tuple[str, str, tuple[str, ...], int]] = []

    def add(self, name: str, targets: tuple[int, ...], tag: str, key: str = "", phase: str = "act") -> None:
        assert len(targets) == GATES[name], (name, targets)
        self.ops.append((name, targets, tag, key))
        self.phases.append(phase)

    def cat(
        self,
        path: tuple[int, ...],
        root: int,
        act: dict[int, int],
        gate: str,
        tag: str,
        *,
        pivot: int | None = None,
        kinds: tuple[str, str] = ("syndrome", "flag"),
        round_: int = -1,
    ) -> None:
        """A cat on `path` rooted at `root`; cat qubit a applies `gate` to data act[a].

        With a pivot the cat is a fan-out: it is loaded from and cleared by the pivot, nothing is measured.
        """
        r = path.index(root)
        edges = []  # (parent, child) by distance from the root
        for dist in range(1, len(path)):
            if r - dist >= 0:
                edges.append((path[r - dist + 1], path[r - dist]))
            if r + dist < len(path):
                edges.append((path[r + dist - 1], path[r + dist]))
        for a in path:
            self.add("RX" if a == root and pivot is None else "R", (a,), tag)
        if pivot is not None:
            self.add("CX", (pivot, root), tag)
        for parent, child in edges:
            self.add("CX", (parent, child), tag, phase="spread")
        for a in sorted(act, key=lambda a: abs(path.index(a) - r)):
            self.act(gate, a, act[a], tag)
        for parent, child in reversed(edges):
            self.add("CX", (parent, child), tag, phase="unspread")
        if pivot is not None:
            self.add("CX", (pivot, root), tag)
            return
        root_kind, other_kind = kinds
        for a in path:
            key = f"{tag}/a{a}"
            self.add("MX" if a == root else "M", (a,), tag, key)
            name = tag if a == root else f"{tag}/flag/a{a}"
            self.checks.append((name, root_kind if a == root else other_kind, (key,), round_))

    def circuit(
        self,
        code: ColorCode,
        steps: list[int],
        ancilla_coords: tuple[tuple[float, float], ...],
        couplers: tuple[tuple[int, int], ...],
        rounds: int,
    ) -> ProtocolCircuit:
        """The program at `steps` as the IR: ops by step, then program order; each check at the step of its
        last measurement; data qubits 0..n-1, then one ancilla per coordinate."""
        order = sorted(range(len(self.ops)), key=lambda i: (steps[i], i))
        ops = tuple(Op(self.ops[i][0], self.ops[i][1], steps[i], self.ops[i][2], self.ops[i][3]) for i in order)
        step_of = {op.key: op.step for op in ops if op.key}
        checks = [Check(name, kind, keys, max(step_of[k] for k in keys), rnd) for name, kind, keys, rnd in self.checks]
        qubits = tuple(Qubit(q, "data", code.coords[q]) for q in range(code.n)) + tuple(
            Qubit(code.n + k, "ancilla", xy) for k, xy in enumerate(ancilla_coords)
        )
        return ProtocolCircuit(
            distance=code.distance,
            code=code,
            qubits=qubits,
            couplers=couplers,
            ops=ops,
            checks=tuple(sorted(checks, key=lambda c: (c.step, c.name))),
            rounds=rounds,
        )

    def act(self, gate: str, ancilla: int, data: int, tag: str) -> None:
        """One cat qubit's action on a data qubit: CX, CZ, or CH = R_y(-pi/4), CZ, R_y(+pi/4) on the data."""
        if gate == "CH":
            self.add("RY_M4", (data,), tag)
            self.add("CZ", (ancilla, data), tag)
            self.add("RY_P4", (data,), tag)
        else:
            self.add(gate, (ancilla, data), tag)

    def register(
        self,
        reg,
        gate: str,
        tag: str,
        names: dict[str, str],
        kinds: tuple[str, str],
        round_: int,
        *,
        keep: frozenset[int] = frozenset(),
        kept: frozenset[int] = frozenset(),
    ) -> None:
        """A register gadget (`ctrl.protocol.tree.Register`): roots in |+>, spread, act, unspread, roots
        measured in X (check `names[label]`, of kind kinds[0]), every other register qubit in Z (a flag).

        `keep`: non-root qubits that the next gadget uses; they are not measured here: back in |0> after the
        unspread, an X fault on one stays there and the next gadget's measurement of it reads it. `kept`:
        qubits the previous gadget kept; a non-root among them is not prepared again (a root is: RX on a
        qubit in |0> is a Hadamard)."""
        roots = dict(reg.roots)
        for a in reg.qubits:
            if a in kept and a not in roots:
                continue
            self.add("RX" if a in roots else "R", (a,), tag)
        for u, v in reg.spread:
            self.add("CX", (u, v), tag, phase="spread")
        for a, d in reg.actions:
            self.act(gate, a, d, tag)
        for u, v in reversed(reg.spread):
            self.add("CX", (u, v), tag, phase="unspread")
        for a in reg.qubits:
            if a in keep and a not in roots:
                continue
            key = f"{tag}/a{a}"
            self.add("MX" if a in roots else "M", (a,), tag, key)
            if a in roots:
                self.checks.append((names[roots[a]], kinds[0], (key,), round_))
            else:
                self.checks.append((f"{tag}/flag/a{a}", kinds[1], (key,), round_))


def pauli_class(name: str, position: int, phase: str) -> str:
    """How an op acts on one of its qubits: ops of the same class there may be reordered ("Z": diagonal,
    "X": CX target); anything else is a barrier.

    Diagonal ops of a cat qubit also keep their phase (spread, act, unspread) in order: a cat qubit that
    unspread a child before spreading to another would let an X fault in between reach data unflagged.
    """
    if name == "CZ" or (name == "CX" and position == 0):
        return "Z:" + phase
    if name == "CX":
        return "X"
    return "barrier"


def schedule(ops: list[tuple[str, tuple[int, ...], str, str]], phases: list[str]) -> list[int]:
    """List scheduling in program order, one op per qubit per step. An op waits only for earlier ops it
    does not commute with on a shared qubit, so fan-outs onto the same data qubit overlap. Then
    preparations and pre-rotations move as late as possible, so a fresh qubit does not sit idle."""
    busy: dict[int, set[int]] = {}
    group: dict[int, tuple[str, int, int]] = {}  # qubit -> (class, start bound of group, end of group)
    steps = []
    for (name, targets, _, _), phase in zip(ops, phases):
        earliest = 0
        for pos, q in enumerate(targets):
            cls = pauli_class(name, pos, phase)
            g = group.get(q)
            if g is None:
                continue
            g_cls, g_start, g_end = g
            earliest = max(earliest, g_start if cls == g_cls != "barrier" else g_end)
        s = earliest
        while any(s in busy.get(q, ()) for q in targets):
            s += 1
        steps.append(s)
        for pos, q in enumerate(targets):
            cls = pauli_class(name, pos, phase)
            busy.setdefault(q, set()).add(s)
            g = group.get(q)
            if g is not None and cls == g[0] != "barrier":
                group[q] = (cls, g[1], max(g[2], s + 1))
            else:
                group[q] = (cls, g[2] if g else 0, s + 1)
    # Preparations and pre-rotations as late as possible (before the next op on the qubit).
    next_use: dict[int, int] = {}
    for i in range(len(ops) - 1, -1, -1):
        name, targets, _, _ = ops[i]
        if name in PREPARATIONS + ("RY_M4",) and targets[0] in next_use:
            steps[i] = max(steps[i], next_use[targets[0]] - 1)
        for q in targets:
            next_use[q] = min(next_use.get(q, 10**9), steps[i])
    return steps


def as_late_as_possible(ops: list[tuple[str, tuple[int, ...], str, str]], steps: list[int], movable) -> list[int]:
    """Moves every op with movable(i) true as late as the next op on each of its qubits allows (never past
    the last step). No op passes another on a shared qubit, so the circuit and every fault's propagation
    stay the same; only where qubits idle changes. On register gadgets a data action moved later shortens
    the stretch after a data qubit's last check of one type, where an error of that type goes unseen."""
    steps = list(steps)
    last = max(steps)
    on: dict[int, list[int]] = {}
    for i, (_, targets, _, _) in enumerate(ops):
        for q in targets:
            on.setdefault(q, []).append(i)
    changed = True
    while changed:
        changed = False
        for i in sorted(range(len(ops)), key=lambda i: -steps[i]):
            if not movable(i):
                continue
            limit = last
            for q in ops[i][1]:
                later = [steps[j] for j in on[q] if j != i and steps[j] > steps[i]]
                if later:
                    limit = min(limit, min(later) - 1)
            if limit > steps[i]:
                steps[i] = limit
                changed = True
    return steps
