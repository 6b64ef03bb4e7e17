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
from collections import Counter
from dataclasses import dataclass, field
from operator import attrgetter

from ctrl.errors import CtrlError
from ctrl.protocol.ir import ProtocolCircuit

HALF_PI = math.pi / 2
_NAME = attrgetter("name")


@dataclass(frozen=True)
class NativeOp:
    name: str
    qubits: tuple[str, ...]  # device qubit names
    tag: str
    angle: float = 0.0
    proxy: tuple[float, float] = (0.0, 0.0)  # angle in Clifford proxy X and proxy Z
    key: str = ""  # measurement key
    phases: tuple[tuple[str, float], ...] = field(default=())  # CZ: virtual-Z corrections by qubit
    # (protocol step, protocol gate) of every protocol op this op realises, all of a fused run's:
    # what lets the paper's noise model be put at the protocol's own fault locations
    source: tuple[tuple[int, str], ...] = field(default=(), compare=False)

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
        return dict(sorted(Counter(map(_NAME, self.ops)).items()))


def to_native(circuit: ProtocolCircuit, qubit_names: tuple[str, ...], gates: dict) -> NativeCircuit:
    """`qubit_names[i]` is the device qubit of protocol qubit i; `gates[frozenset((a, b))]` is the
    coupler's calibration (with `.gate` "cz"/"ecr"/... and, for ECR, `.control`).

    Every run of one-qubit ops on a qubit (nothing else on it in between) fuses into at most one pulse,
    U = RZ(a) RY(t) RZ(b) as VZ(b), one RY(t), VZ(a) (`_fused`), in the place of the run's last op. Each
    distinct protocol op is translated once into events (`_events`); a run of one-qubit ops is carried
    as the sequence of its (name, angle, proxy) and fused (memoised) when something else touches the
    qubit."""
    # A one-qubit op is carried as a plain (name, angle, proxy) until its run closes: most pulses are
    # fused away, and even a lean dataclass costs ten times a tuple to build.
    out: list = []  # NativeOps, and lists of them (a closed run); a run's slot holds None until it closes
    # qubit -> [(name, angle, proxy) of its open run, slot, tag of its last op, sources, (qubit,), first source]
    runs: dict[str, list] = {}
    memo = _memo(circuit)
    events_of: list = [None] * len(memo[4])  # by the op's (name, targets), numbered in `_memo`

    spread: list[int] = []  # slots holding a list of ops (a run that fused into several)

    def close(run: list) -> None:
        members, slot, tag, sources, qs, first = run
        source = first if len(sources) == 1 else tuple(sources)
        closed = _CLOSED.get(members) or _closed(members)
        made = []
        made = [NativeOp(name, qs, tag, angle, proxy, "", (), source) for name, angle, proxy in closed]
        if len(made) == 1:
            out[slot] = made[0]
        else:
            out[slot] = made
            spread.append(slot)

    phases_of: dict[tuple[str, ...], tuple] = {}

    for kind, tag, key, src, src1 in memo[3]:
        events = events_of[kind]
        if events is None:
            op_name, targets = memo[4][kind]
            names = tuple(qubit_names[i] for i in targets)
            events = events_of[kind] = _events_cached(op_name, names, gates)
        for event in events:
            if event[0]:  # one-qubit ops extending the open run on a qubit
                q = event[1]
                run = runs.get(q)
                if run is None:
                    runs[q] = [event[2], len(out), tag, [src], event[3], src1]
                else:
                    out[run[1]] = None
                    run[0] += event[2]
                    run[1] = len(out)
                    run[2] = tag
                    if run[3][-1] != src:
                        run[3].append(src)
                out.append(None)
            else:
                name, qubits, angle, proxy, phases = event[1]
                for q in qubits:
                    run = runs.pop(q, None)
                    if run is not None:
                        close(run)
                if phases is _CZ_PHASES:
                    phases = phases_of.get(qubits)
                    if phases is None:
                        phases = phases_of[qubits] = gates[frozenset(qubits)].virtual_z_rad()
                out.append(NativeOp(name, qubits, tag, angle, proxy, key if name == "MEASURE" else "", phases, src1))
    for run in runs.values():
        close(run)
    if not spread:  # the usual case on CZ devices: every run fused into one pulse
        return NativeCircuit(tuple([x for x in out if x is not None]), circuit.record)
    flat: list[NativeOp] = []
    for item in out:
        if item.__class__ is list:
            flat.extend(item)
        elif item is not None:
            flat.append(item)
    return NativeCircuit(tuple(flat), circuit.record)


_DERIVED: dict[int, tuple] = {}




def _memo(circuit: ProtocolCircuit) -> tuple:
    """(circuit, record, step count, rows, distinct (name, targets)), a row per op: (its number among
    the distinct (name, targets), tag, key, (step, gate), ((step, gate),)), the last two its
    `NativeOp.source` entries, shared by every compile instead of thousands of fresh tuples each."""
    found = _DERIVED.get(id(circuit))
    if found is None or found[0] is not circuit:
        if len(_DERIVED) >= 64:
            _DERIVED.clear()
        number: dict[tuple, int] = {}
        rows = tuple(
            (number.setdefault((op.name, op.targets), len(number)), op.tag, op.key, (op.step, op.name),
             ((op.step, op.name),))
            for op in circuit.ops
        )  # fmt: skip
        found = _DERIVED[id(circuit)] = (circuit, circuit.record, circuit.n_steps, rows, tuple(number))
    return found


_EVENTS: dict[tuple, tuple] = {}
_CZ_PHASES = ("the coupler's calibrated phase corrections",)  # placeholder in cached translations


def _events_cached(op_name: str, names: tuple[str, ...], gates: dict) -> tuple[tuple, ...]:
    """`_events` of the op's translation, which depends on the device qubits and, for a two-qubit op,
    on the coupler's native gate and its direction, not on any calibrated number: cached across
    compiles on those (a CZ's phase corrections are looked up per compile)."""
    cal = gates.get(frozenset(names)) if len(names) == 2 else None
    key = (op_name, names, None if cal is None else (cal.gate, cal.control))
    found = _EVENTS.get(key)
    if found is None:
        if len(_EVENTS) >= 4096:
            _EVENTS.clear()
        found = _EVENTS[key] = _events(_translate(op_name, names, gates, symbolic=True))
    return found


def _events(entries: tuple[tuple, ...]) -> tuple[tuple, ...]:
    """A translated op as events: (False, native op) for an op that is not a one-qubit rotation, and
    (True, qubit, ((name, angle, proxy)...), (qubit,)) for each stretch of one-qubit ops on a qubit, placed where
    the stretch's last op is (where a merged run ends up)."""
    events: list = []
    stretch: dict[str, list] = {}
    pending: dict[str, int] = {}  # qubit -> index in events of its open stretch
    one: dict[str, tuple[str]] = {}  # qubit -> its ops' qubits tuple, shared by the ops made from this event

    def finish(q: str) -> None:
        events[pending.pop(q)] = (True, q, tuple(stretch.pop(q)), one[q])

    for e in entries:
        name, qubits, angle, proxy, _ = e
        if name in _ONE_QUBIT:
            q = qubits[0]
            one[q] = qubits
            if q in pending:
                events[pending[q]] = None
                stretch[q].append((name, angle, proxy))
            else:
                stretch[q] = [(name, angle, proxy)]
            pending[q] = len(events)
            events.append(None)
            continue
        for q in qubits:
            if q in pending:
                finish(q)
        events.append((False, e))
    for q in list(pending):
        finish(q)
    return tuple(e for e in events if e is not None)


def _identity(angle: float, proxy: tuple[float, float]) -> bool:
    found = _IDENTITY.get((angle, proxy))
    if found is None:
        if len(_IDENTITY) >= 4096:
            _IDENTITY.clear()
        found = _IDENTITY[angle, proxy] = _identity_angles(angle, proxy)
    return found


def _translate(op_name: str, names: tuple[str, ...], gates: dict, symbolic: bool = False) -> tuple[tuple, ...]:
    """The native ops (name, qubits, angle, proxy, phases) of one protocol op on device qubits `names`;
    `symbolic`: a CZ's phases are the `_CZ_PHASES` placeholder."""
    out: list[tuple] = []
    emit = out.append
    zero = (0.0, 0.0)

    def pulse(axis: str, q: str, angle: float, proxy: tuple[float, float] | None = None) -> None:
        emit(("RX" if axis == "x" else "RY", (q,), angle, proxy if proxy is not None else (angle, angle), ()))

    def hadamard(q: str) -> None:
        emit(("VZ", (q,), math.pi, (math.pi, math.pi), ()))
        emit(("RY", (q,), HALF_PI, (HALF_PI, HALF_PI), ()))

    def coupler(a: str, b: str):
        cal = gates.get(frozenset((a, b)))
        if cal is None:
            raise CtrlError(f"no usable coupler between {a} and {b}")
        return cal

    def cz(a: str, b: str) -> None:
        cal = coupler(a, b)
        if cal.gate in ("cz", "rzz"):  # RZZ(pi/2) is a CZ up to virtual Z's (its virtual_z_rad)
            if symbolic:
                phases = _CZ_PHASES
            else:
                phases = cal.virtual_z_rad()
            emit(("CZ", (a, b), 0.0, zero, phases))
        elif cal.gate == "ecr":
            hadamard(b)
            cx(a, b)
            hadamard(b)
        else:
            raise CtrlError(f"coupler {a}-{b}: native gate {cal.gate!r} is not supported yet (cz, rzz, ecr are)")

    def cx(c: str, t: str) -> None:
        cal = coupler(c, t)
        if cal.gate in ("cz", "rzz"):
            pulse("y", t, -HALF_PI)
            cz(c, t)
            pulse("y", t, HALF_PI)
        elif cal.gate == "ecr":
            if cal.control == c:
                emit(("ECR", (c, t), 0.0, zero, ()))
                pulse("x", c, math.pi)
                pulse("x", t, HALF_PI)
                emit(("VZ", (c,), HALF_PI, (HALF_PI, HALF_PI), ()))
            else:
                hadamard(c)
                hadamard(t)
                cx(t, c)
                hadamard(c)
                hadamard(t)
        else:
            raise CtrlError(f"coupler {c}-{t}: native gate {cal.gate!r} is not supported yet (cz, rzz, ecr are)")

    if op_name == "R":
        emit(("PREP", names, 0.0, zero, ()))
    elif op_name == "RX":
        emit(("PREP", names, 0.0, zero, ()))
        pulse("y", names[0], HALF_PI)
    elif op_name == "RH":
        emit(("PREP", names, 0.0, zero, ()))
        pulse("y", names[0], math.pi / 4, (HALF_PI, 0.0))
    elif op_name == "RY_P4":
        pulse("y", names[0], math.pi / 4, (HALF_PI, 0.0))
    elif op_name == "RY_M4":
        pulse("y", names[0], -math.pi / 4, (-HALF_PI, 0.0))
    elif op_name == "CX":
        cx(*names)
    elif op_name == "CZ":
        cz(*names)
    elif op_name == "M":
        emit(("MEASURE", names, 0.0, zero, ()))
    elif op_name == "MX":
        pulse("y", names[0], -HALF_PI)
        emit(("MEASURE", names, 0.0, zero, ()))
    else:
        raise CtrlError(f"no native translation for protocol op {op_name}")
    return tuple(out)


_ONE_QUBIT = frozenset(("RX", "RY", "VZ"))


_FUSED: dict[tuple, tuple] = {}
_IDENTITY: dict[tuple, bool] = {}
_CLOSED: dict[tuple, tuple] = {}


def _closed(members: tuple[tuple[str, float, tuple[float, float]], ...]) -> tuple:
    """What a closed run becomes: its one op as it is, unless that is an identity, or else `_fused`;
    memoised in one lookup (the runs repeat)."""
    found = _CLOSED.get(members)
    if found is None:
        if len(_CLOSED) >= 4096:
            _CLOSED.clear()
        keep = len(members) == 1 and not _identity_angles(members[0][1], members[0][2])
        found = _CLOSED[members] = members if keep else _fused(members)
    return found


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
