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
  with phase 0 (x) or pi/2 (y); the x180 pulse, scaled, beyond pi/2.
- CX(c, t) on a CZ coupler: RY(-pi/2) t, CZ, RY(+pi/2) t.
- CX(c, t) on an ECR coupler with control c: ECR(c, t), then RX(pi) c and RX(pi/2) t, then VZ(pi/2) c.
  The other direction conjugates both qubits by H = RY(pi/2) . Z.
- CZ(a, b) on an ECR coupler: H b, CX(a, b), H b.
- Controlled-Hadamard: the protocol's RY_M4, CZ, RY_P4, each translated as above.
Every run of single-qubit operations on a qubit then fuses into VZ, one RY pulse, VZ (a ZYZ Euler
decomposition, with the sign of the pulse chosen to need fewer frame changes); an identity disappears.

Each pulse keeps its angle in both Clifford proxies (R_y(+-pi/4) -> +-pi/2 for proxy X, 0 for proxy Z),
summed through merges, so the compiled program lowers to the same Stim proxies as the protocol.
"""

from __future__ import annotations

import cmath
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
    # Plain tuples (name, qubits, tag, angle, proxy, key, phases) until the merge is done: most pulses
    # emitted here are fused away, and a frozen dataclass costs forty times a tuple to build.
    out: list[tuple] = []
    emit = out.append
    phases_of: dict[frozenset, tuple] = {}

    def pulse(axis: str, q: str, angle: float, tag: str, proxy: tuple[float, float] | None = None) -> None:
        emit(("RX" if axis == "x" else "RY", (q,), tag, angle, proxy if proxy is not None else (angle, angle), "", ()))

    def hadamard(q: str, tag: str) -> None:
        emit(("VZ", (q,), tag, math.pi, (math.pi, math.pi), "", ()))
        emit(("RY", (q,), tag, HALF_PI, (HALF_PI, HALF_PI), "", ()))

    def coupler(a: str, b: str):
        cal = gates.get(frozenset((a, b)))
        if cal is None:
            raise CtrlError(f"no usable coupler between {a} and {b}")
        return cal

    def cz(a: str, b: str, tag: str) -> None:
        cal = coupler(a, b)
        if cal.gate == "cz":
            pair = frozenset((a, b))
            phases = phases_of.get(pair)
            if phases is None:
                phases = phases_of[pair] = tuple(sorted((k, float(v)) for k, v in cal.phase_corrections_rad.items()))
            emit(("CZ", (a, b), tag, 0.0, (0.0, 0.0), "", phases))
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
                emit(("ECR", (c, t), tag, 0.0, (0.0, 0.0), "", ()))
                pulse("x", c, math.pi, tag)
                pulse("x", t, HALF_PI, tag)
                emit(("VZ", (c,), tag, HALF_PI, (HALF_PI, HALF_PI), "", ()))
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
        name = op.name
        if name == "R":
            emit(("PREP", names, tag, 0.0, (0.0, 0.0), "", ()))
        elif name == "RX":
            emit(("PREP", names, tag, 0.0, (0.0, 0.0), "", ()))
            pulse("y", names[0], HALF_PI, tag)
        elif name == "RH":
            emit(("PREP", names, tag, 0.0, (0.0, 0.0), "", ()))
            pulse("y", names[0], math.pi / 4, tag, (HALF_PI, 0.0))
        elif name == "RY_P4":
            pulse("y", names[0], math.pi / 4, tag, (HALF_PI, 0.0))
        elif name == "RY_M4":
            pulse("y", names[0], -math.pi / 4, tag, (-HALF_PI, 0.0))
        elif name == "CX":
            cx(*names, tag)
        elif name == "CZ":
            cz(*names, tag)
        elif name == "M":
            emit(("MEASURE", names, tag, 0.0, (0.0, 0.0), op.key, ()))
        elif name == "MX":
            pulse("y", names[0], -HALF_PI, tag)
            emit(("MEASURE", names, tag, 0.0, (0.0, 0.0), op.key, ()))
        else:
            raise CtrlError(f"no native translation for protocol op {name}")
    return NativeCircuit(tuple(NativeOp(*item) for item in _merge_items(out)), circuit.record)


_ONE_QUBIT = frozenset(("RX", "RY", "VZ"))


def _merge(ops: list[NativeOp]) -> tuple[NativeOp, ...]:
    """`_merge_items` on NativeOps."""
    items = [(o.name, o.qubits, o.tag, o.angle, o.proxy, o.key, o.phases) for o in ops]
    return tuple(NativeOp(*item) for item in _merge_items(items))


def _merge_items(ops: list[tuple]) -> list[tuple]:
    """Fuse every run of single-qubit ops on one qubit (nothing else on that qubit in between) into at
    most one pulse: U = RZ(a) RY(t) RZ(b) is VZ(b), one RY(t) pulse, VZ(a). The run is fused three times,
    for the real angles and for each proxy's, so each emitted op carries its angle in all three."""
    out: list = []
    run: dict[str, list[int]] = {}  # qubit -> indices in `out` of its open run of one-qubit ops

    def close(q: str) -> None:
        idx = run.pop(q)
        if len(idx) < 2 and not _identity_angles(out[idx[0]][3], out[idx[0]][4]):
            return
        last = out[idx[-1]]
        fused = _fused(tuple((out[i][0], out[i][3], out[i][4]) for i in idx))
        for i in idx:
            out[i] = None
        # The fused ops take the place of the run's last op: nothing else touched q in between.
        out[idx[-1]] = [(name, last[1], last[2], angle, proxy, "", ()) for name, angle, proxy in fused]

    for op in ops:
        if op[0] in _ONE_QUBIT:
            q = op[1][0]
            if q in run:
                run[q].append(len(out))
            else:
                run[q] = [len(out)]
            out.append(op)
            continue
        for q in op[1]:
            if q in run:
                close(q)
        out.append(op)
    for q in list(run):
        close(q)
    flat: list[tuple] = []
    for item in out:
        if item.__class__ is list:
            flat.extend(item)
        elif item is not None:
            flat.append(item)
    return flat


_FUSED: dict[tuple, tuple] = {}


def _fused(members: tuple[tuple[str, float, tuple[float, float]], ...]) -> tuple:
    """(name, angle, proxy) of the fused ops of a run of (name, angle, proxy); memoised, since the
    protocol repeats the same few runs (Hadamards around couplers, cat preparations) many times."""
    found = _FUSED.get(members)
    if found is None:
        if len(_FUSED) >= 4096:  # bounded: callers may merge runs of arbitrary angles
            _FUSED.clear()
        found = _FUSED[members] = _fuse(members)
    return found


def _fuse(members) -> tuple:
    angles = []
    for which in range(3):  # exact, proxy X, proxy Z
        u = (1 + 0j, 0j, 0j, 1 + 0j)
        for name, angle, proxy in members:
            u = _mul(_unitary(name, angle if which == 0 else proxy[which - 1]), u)
        angles.append(_zyz(u))
    (a0, t0, b0), (ax, tx, bx), (az, tz, bz) = angles
    fused = (("VZ", b0, (bx, bz)), ("RY", t0, (tx, tz)), ("VZ", a0, (ax, az)))
    return tuple(f for f in fused if not _identity_angles(f[1], f[2]))


def _unitary(name: str, angle: float) -> tuple[complex, complex, complex, complex]:
    """Row-major 2x2 (plain tuples: these products are tiny and numerous)."""
    c, s = math.cos(angle / 2), math.sin(angle / 2)
    if name == "RY":
        return (complex(c), complex(-s), complex(s), complex(c))
    if name == "RX":
        return (complex(c), -1j * s, -1j * s, complex(c))
    return (complex(c, -s), 0j, 0j, complex(c, s))  # VZ = RZ


def _mul(x, y):
    return (
        x[0] * y[0] + x[1] * y[2], x[0] * y[1] + x[1] * y[3],
        x[2] * y[0] + x[3] * y[2], x[2] * y[1] + x[3] * y[3],
    )  # fmt: skip


def _zyz(u: tuple[complex, complex, complex, complex]) -> tuple[float, float, float]:
    """(a, t, b) with u = phase * RZ(a) RY(t) RZ(b), |t| <= pi. When t is 0 or pi only a + b or a - b
    is defined; all of it goes to a, so Clifford inputs keep multiples of pi/2 in every angle."""
    u00, u01, u10, u11 = u
    t = 2 * math.atan2(abs(u10), abs(u00))
    if abs(u10) < 1e-12:
        return _wrap(cmath.phase(u11) - cmath.phase(u00)), 0.0, 0.0
    if abs(u00) < 1e-12:
        return _wrap(cmath.phase(u10) - cmath.phase(-u01)), math.pi, 0.0
    plus = cmath.phase(u11) - cmath.phase(u00)
    minus = cmath.phase(u10) - cmath.phase(-u01)
    a, b = _wrap((plus + minus) / 2), _wrap((plus - minus) / 2)
    # RZ(a) RY(t) RZ(b) = RZ(a + pi) RY(-t) RZ(b - pi): keep whichever needs fewer frame changes.
    a2, b2 = _wrap(a + math.pi), _wrap(b - math.pi)
    if sum(abs(x) > 1e-9 for x in (a2, b2)) < sum(abs(x) > 1e-9 for x in (a, b)):
        return a2, -t, b2
    return a, t, b


def _wrap(a: float) -> float:
    """Into (-pi, pi], snapping float noise onto multiples of pi/2 (Clifford angles stay exact)."""
    a = math.remainder(float(a), 2 * math.pi)
    k = round(a / (math.pi / 2))
    if abs(a - k * math.pi / 2) < 1e-9:
        a = k * math.pi / 2
    return math.pi if abs(a + math.pi) < 1e-12 else a


def _identity_angles(angle: float, proxy: tuple[float, float]) -> bool:
    full = 2 * math.pi
    return all(abs(math.remainder(a, full)) < 1e-9 for a in (angle, *proxy))
