"""Translation of the placed protocol to the device's native operations.

Native vocabulary (`NativeOp.name`):

| name    | qubits         | what the hardware does                                               |
|---------|----------------|----------------------------------------------------------------------|
| PREP    | q              | nothing: q is already |0> (attempt start, or a passing measurement)   |
| RX, RY  | q              | one calibrated drive pulse, rotation `angle` about x or y            |
| VZ      | q              | virtual Z: a phase update of q's drive frame, no pulse, no time      |
| CZ      | a, b           | the coupler's calibrated CZ (flux pulse + its phase corrections)     |
| ECR     | control, target| echoed cross resonance: RZX(pi/4) . X_c . RZX(-pi/4)                 |
| MEASURE | q              | readout pulse and window; result 0 = |0>                             |

Why PREP is free: every measured qubit must read 0 for the attempt to continue, so after a passing
measurement it is in |0> already; a failing one ends the attempt, whose reset branch re-prepares everyone.

Decompositions (verified as Clifford tableaux in tests/test_compile.py):
- X/Y pulses by angle are the x90 pulse scaled in amplitude (gaussian/DRAG rotations are linear in it),
  with phase 0 (x) or pi/2 (y).
- CX(c, t) on a CZ coupler: RY(-pi/2) t, CZ, RY(+pi/2) t.
- CX(c, t) on an ECR coupler with control c: ECR(c, t), then RX(pi) c and RX(pi/2) t, then VZ(pi/2) c.
  The other direction conjugates both qubits by H = RY(pi/2) . Z.
- CZ(a, b) on an ECR coupler: H b, CX(a, b), H b.
- Controlled-Hadamard: the protocol's RY_M4, CZ, RY_P4, each translated as above.
Adjacent pulses about the same axis on one qubit merge; a merged rotation of 0 disappears.

Each pulse keeps its angle in both Clifford proxies (R_y(+-pi/4) -> +-pi/2 for proxy X, 0 for proxy Z),
summed through merges, so the compiled program lowers to the same Stim proxies as the protocol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ctrl.errors import CtrlError
from ctrl.protocol.ir import ProtocolCircuit

HALF_PI = math.pi / 2


@dataclass(frozen=True)
class NativeOp:
    name: str
    qubits: tuple[str, ...]  # device qubit names
    tag: str
    angle: float = 0.0
    proxy: tuple[float, float] = (0.0, 0.0)  # angle in Clifford proxy X and proxy Z
    key: str = ""  # measurement key
    phases: tuple[tuple[str, float], ...] = field(default=())  # CZ: virtual-Z corrections by qubit

    def __repr__(self) -> str:
        extra = f" {self.angle:+.4f}" if self.name in ("RX", "RY", "VZ") else ""
        k = f" {self.key}" if self.key else ""
        return f"NativeOp({self.name}{extra} {' '.join(self.qubits)} [{self.tag}]{k})"


@dataclass(frozen=True)
class NativeCircuit:
    ops: tuple[NativeOp, ...]  # program order; per qubit, the order to play them in
    record: tuple[str, ...]  # measurement keys in the protocol's record order

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.name] = counts.get(op.name, 0) + 1
        return f"NativeCircuit({', '.join(f'{k}={v}' for k, v in sorted(counts.items()))})"

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for op in self.ops:
            out[op.name] = out.get(op.name, 0) + 1
        return dict(sorted(out.items()))


def to_native(circuit: ProtocolCircuit, qubit_names: tuple[str, ...], gates: dict) -> NativeCircuit:
    """`qubit_names[i]` is the device qubit of protocol qubit i; `gates[frozenset((a, b))]` is the
    coupler's calibration (with `.gate` "cz"/"ecr"/... and, for ECR, `.control`)."""
    out: list[NativeOp] = []

    def pulse(axis: str, q: str, angle: float, tag: str, proxy: tuple[float, float] | None = None) -> None:
        out.append(NativeOp("R" + axis.upper(), (q,), tag, angle, proxy if proxy is not None else (angle, angle)))

    def hadamard(q: str, tag: str) -> None:
        out.append(NativeOp("VZ", (q,), tag, math.pi, (math.pi, math.pi)))
        pulse("y", q, HALF_PI, tag)

    def coupler(a: str, b: str):
        cal = gates.get(frozenset((a, b)))
        if cal is None:
            raise CtrlError(f"no usable coupler between {a} and {b}")
        return cal

    def cz(a: str, b: str, tag: str) -> None:
        cal = coupler(a, b)
        if cal.gate == "cz":
            phases = tuple(sorted((k, float(v)) for k, v in cal.phase_corrections_rad.items()))
            out.append(NativeOp("CZ", (a, b), tag, phases=phases))
        elif cal.gate == "ecr":
            hadamard(b, tag)
            cx(a, b, tag)
            hadamard(b, tag)
        else:
            raise CtrlError(f"coupler {a}-{b}: native gate {cal.gate!r} is not supported yet (cz, ecr are)")

    def cx(c: str, t: str, tag: str) -> None:
        cal = coupler(c, t)
        if cal.gate == "cz":
            pulse("y", t, -HALF_PI, tag)
            cz(c, t, tag)
            pulse("y", t, HALF_PI, tag)
        elif cal.gate == "ecr":
            if cal.control == c:
                out.append(NativeOp("ECR", (c, t), tag))
                pulse("x", c, math.pi, tag)
                pulse("x", t, HALF_PI, tag)
                out.append(NativeOp("VZ", (c,), tag, HALF_PI, (HALF_PI, HALF_PI)))
            else:
                hadamard(c, tag)
                hadamard(t, tag)
                cx(t, c, tag)
                hadamard(c, tag)
                hadamard(t, tag)
        else:
            raise CtrlError(f"coupler {c}-{t}: native gate {cal.gate!r} is not supported yet (cz, ecr are)")

    for op in circuit.ops:
        names = tuple(qubit_names[i] for i in op.targets)
        tag = op.tag
        if op.name == "R":
            out.append(NativeOp("PREP", names, tag))
        elif op.name == "RX":
            out.append(NativeOp("PREP", names, tag))
            pulse("y", names[0], HALF_PI, tag)
        elif op.name == "RH":
            out.append(NativeOp("PREP", names, tag))
            pulse("y", names[0], math.pi / 4, tag, (HALF_PI, 0.0))
        elif op.name == "RY_P4":
            pulse("y", names[0], math.pi / 4, tag, (HALF_PI, 0.0))
        elif op.name == "RY_M4":
            pulse("y", names[0], -math.pi / 4, tag, (-HALF_PI, 0.0))
        elif op.name == "CX":
            cx(*names, tag)
        elif op.name == "CZ":
            cz(*names, tag)
        elif op.name == "M":
            out.append(NativeOp("MEASURE", names, tag, key=op.key))
        elif op.name == "MX":
            pulse("y", names[0], -HALF_PI, tag)
            out.append(NativeOp("MEASURE", names, tag, key=op.key))
        else:
            raise CtrlError(f"no native translation for protocol op {op.name}")
    return NativeCircuit(_merge(out), circuit.record)


def _merge(ops: list[NativeOp]) -> tuple[NativeOp, ...]:
    """Merge consecutive pulses about the same axis on the same qubit; drop rotations that cancel."""
    out: list[NativeOp | None] = []
    last: dict[str, int] = {}  # qubit -> index in out of its latest op
    for op in ops:
        if op.name in ("RX", "RY"):
            q = op.qubits[0]
            i = last.get(q)
            prev = out[i] if i is not None else None
            if prev is not None and prev.name == op.name:
                merged = NativeOp(
                    op.name, op.qubits, prev.tag, prev.angle + op.angle,
                    (prev.proxy[0] + op.proxy[0], prev.proxy[1] + op.proxy[1]),
                )  # fmt: skip
                out[i] = None if _is_identity(merged) else merged
                if out[i] is None:
                    del last[q]
                continue
        out.append(op)
        for q in op.qubits:
            last[q] = len(out) - 1
    return tuple(op for op in out if op is not None)


def _is_identity(op: NativeOp) -> bool:
    full = 2 * math.pi
    return all(abs(math.remainder(a, full)) < 1e-9 for a in (op.angle, *op.proxy))
