"""Lowering of the protocol IR to `stim.Circuit`.

Three forms, one instruction list:

- `proxy="X"`: the Clifford proxy (docs/protocol.md, "How it is simulated"). R_y(+-pi/4) -> R_y(+-pi/2) (SQRT_Y, SQRT_Y_DAG),
  so |H> -> |+>, CH -> CNOT, H_L -> X_L. Sees Z-type output errors.
- `proxy="Z"`: R_y(+-pi/4) -> identity, so |H> -> |0>, CH -> CZ, H_L -> Z_L. Sees X-type output errors.
- `proxy="exact"`: the real circuit; each R_y(+-pi/4) is an `I` instruction tagged `RY_P4` or `RY_M4`
  (Stim ignores it, `ctrl.sim.statevector` applies it). No ideal round.

Preparations are what the hardware does. Only a qubit's first preparation in an attempt is a reset. The
hardware has no mid-attempt reset: a qubit is prepared again only after it passed a measurement (read 0)
or was cleared by an encoder fan-out, so it is in |0> already, errors included. A later R is therefore
nothing, a later RX is a Hadamard and a later RH is R_y(pi/4), each with a gate's noise rather than a
preparation's. MX is a Hadamard then M, as on the hardware, so a measured qubit is left in |0>.

Noise comes from a model of the protocol's fault locations (`ctrl.noise.rules.ProtocolNoise`), asked for
the rule of each operation: a first preparation's, a gate's (a later RX or RH is asked as that gate), a
measurement's, and that of each step a live qubit idles. A device's noise needs the compiled program
(`ctrl.backends.stim`).

Each protocol check becomes a DETECTOR tagged with the check's name. The proxies end with a noiseless
ideal round: MPP of every X face, then every Z face (detectors tagged `ideal`), then the proxy logical as
OBSERVABLE_INCLUDE(0). Post-selection is "every detector not tagged ideal".
"""

from __future__ import annotations

import stim

from ctrl.errors import CtrlError
from ctrl.noise.rules import NOISELESS, ProtocolNoise
from ctrl.protocol.ir import MEASUREMENTS, ProtocolCircuit

PROXIES = ("X", "Z", "exact")
IDEAL = "ideal"

_ONE_QUBIT = {
    "X": {"RH": "RX", "RY_P4": "SQRT_Y", "RY_M4": "SQRT_Y_DAG"},
    "Z": {"RH": "R", "RY_P4": "I", "RY_M4": "I"},
    "exact": {"RH": "R", "RY_P4": "I", "RY_M4": "I"},
}
_ORDER = ("R", "RX", "RH", "RY_M4", "RY_P4", "CX", "CZ") + MEASUREMENTS  # same as ProtocolCircuit.record


def to_stim(circuit: ProtocolCircuit, proxy: str = "X", noise: ProtocolNoise | None = None) -> stim.Circuit:
    """`noise`: None or a `ProtocolNoise` model (module docstring)."""
    if proxy not in PROXIES:
        raise CtrlError(f"unknown proxy {proxy!r}: expected one of {', '.join(PROXIES)}")
    if noise is not None and not isinstance(noise, ProtocolNoise):
        name = getattr(noise, "name", type(noise).__name__)
        raise CtrlError(f"noise {name!r} is not at the protocol's fault locations: it applies to a compiled program")
    out = stim.Circuit()
    for q in circuit.qubits:
        out.append("QUBIT_COORDS", [q.index], list(q.coords))
    checks_at: dict[int, list] = {}
    for c in circuit.checks:
        checks_at.setdefault(c.step, []).append(c)
    record: dict[str, int] = {}
    n_meas = 0
    live: set[int] = set()
    used: set[int] = set()
    for step, ops in circuit.steps():
        busy: set[int] = set()
        for name in _ORDER:
            group = sorted((op for op in ops if op.name == name), key=lambda op: op.targets)
            if not group:
                continue
            targets = [t for op in group for t in op.targets]
            busy.update(targets)
            if name in ("R", "RX", "RH"):
                again = [t for t in targets if t in used]
                if again:
                    _prepare_again(out, name, again, proxy, noise)
                    live.update(again)
                    targets = [t for t in targets if t not in used]
                    if not targets:
                        continue
            used.update(targets)
            if name in MEASUREMENTS:
                rule = NOISELESS if noise is None else noise.measure(name)
                rule.append_before(out, targets)
                if name == "MX":
                    out.append("H", targets)
                out.append("M", targets, rule.measure_args)
                rule.append_after(out, targets)
                for op in group:
                    record[op.key] = n_meas
                    n_meas += 1
                live.difference_update(targets)
                continue
            rule = NOISELESS if noise is None else (noise.prepare(name) if name in ("R", "RX", "RH") else noise.gate(name))
            rule.append_before(out, targets)
            gate = _ONE_QUBIT[proxy].get(name, name)
            if name == "RH" and proxy == "exact":
                out.append("R", targets)
                out.append(stim.CircuitInstruction("I", targets, tag="RY_P4"))
            elif name in ("RY_P4", "RY_M4") and proxy == "exact":
                out.append(stim.CircuitInstruction("I", targets, tag=name))
            else:
                out.append(gate, targets)
            rule.append_after(out, targets)
            if name in ("R", "RX", "RH"):
                live.update(targets)
        if noise is not None:
            idle = sorted(live - busy)
            noise.idle().append_both(out, idle)
        for c in sorted(checks_at.get(step, ()), key=lambda c: c.name):
            recs = [stim.target_rec(record[k] - n_meas) for k in c.measurements]
            out.append(stim.CircuitInstruction("DETECTOR", recs, [], tag=c.name))
        out.append("TICK")
    assert tuple(sorted(record, key=record.get)) == circuit.record
    if proxy != "exact":
        ideal_round(out, circuit.code, proxy)
    return out


def _prepare_again(out: stim.Circuit, name: str, targets: list[int], proxy: str, noise: ProtocolNoise | None) -> None:
    """A preparation of a qubit that is in |0> already: a gate from |0>, not a reset."""
    if name == "R":
        return  # nothing to do, so nothing to go wrong
    rule = NOISELESS if noise is None else noise.gate(name)
    rule.append_before(out, targets)
    if name == "RX":
        out.append("H", targets)
    elif name == "RH":
        if proxy == "X":
            out.append("H", targets)
        elif proxy == "exact":
            out.append(stim.CircuitInstruction("I", targets, tag="RY_P4"))
    rule.append_after(out, targets)


def ideal_round(out: stim.Circuit, code, proxy: str) -> None:
    """Append the noiseless ideal round: every X face, every Z face (detectors tagged `ideal`), then the
    proxy's logical as observable 0."""
    for basis in "XZ":
        for f in code.faces:
            out.append("MPP", _product(basis, f.qubits))
            out.append(stim.CircuitInstruction("DETECTOR", [stim.target_rec(-1)], [], tag=IDEAL))
    out.append("MPP", _product(proxy, code.logical))
    out.append("OBSERVABLE_INCLUDE", [stim.target_rec(-1)], [0])


def _product(basis: str, qubits: tuple[int, ...]) -> list:
    pauli = {"X": stim.target_x, "Z": stim.target_z}[basis]
    targets = []
    for i, q in enumerate(qubits):
        if i:
            targets.append(stim.target_combiner())
        targets.append(pauli(q))
    return targets
