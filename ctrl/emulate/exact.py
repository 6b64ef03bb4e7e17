"""The exact d = 3 check applied to the compiled program: every pulse at its real angle, as a state vector.

`exact_circuit(program, noise)` is the timed program in the exact form that `ctrl.sim.statevector` runs:
the lowering of `ctrl.backends.stim.timed_to_stim` (same operation order, same ECR decomposition, same
noise channels, same "a PREP after a measurement is not a reset"), except that every RX/RY pulse and
every virtual Z is an `I` tagged with its real angle, `RX:<angle>`, `RY:<angle>` or `RZ:<angle>` (VZ is
RZ), then `;` and the op's own tag. Clifford angles go the same way: the simulator needs no Clifford
table and no angle is rounded.

It reuses `timed_to_stim` rather than copying it: every pulse is handed over with proxy angle 0 (so that
lowering emits an `I` in its place, with calibration noise the pulse's channel after it) and a marker tag naming the op,
and the marked `I`s are then given their angles. Without noise `timed_to_stim` drops identities, so the
noiseless form is lowered with zero-strength uniform noise and the zero channels are removed.

`exact_compiled` runs the stratified exact sampler on it and sets the Clifford proxies' figures from
`ctrl.emulate.run.emulate` beside it: the proxy's error factor (proxy / exact) on this device.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import stim

from ctrl.backends.stim import timed_to_stim
from ctrl.codes.color import color_code
from ctrl.compile.dd import is_dd
from ctrl.compile.timed import TimedProgram
from ctrl.emulate.run import emulate, noise_for
from ctrl.errors import CtrlError
from ctrl.noise.models import UniformNoise
from ctrl.sim.statevector import Location, Program, Target, logical_h_state, sample_exact

_MARK = "exact#"
_AXIS = {"RX": "RX", "RY": "RY", "VZ": "RZ"}


def exact_circuit(program: TimedProgram, noise=None) -> stim.Circuit:
    """The compiled program with every rotation at its real angle (see the module docstring). `noise`:
    None, a `UniformNoise` or a `CalibrationNoise`, as for `timed_to_stim`. No ideal round: the state
    vector is scored against |H>_L directly."""
    marked = []
    for i, t in enumerate(program.ops):
        op = t.op
        # echo pulses are pi rotations about X or Y: Clifford, lowered exactly as they are, and the noise
        # models know them by their tag
        if op.name in _AXIS and not is_dd(op):
            # RY with proxy angle 0 lowers to an I followed by the pulse's channel; an RX would be lowered
            # by its real angle, so it travels as an RY too (the noise model only reads op.angle).
            name = "VZ" if op.name == "VZ" else "RY"
            op = replace(op, name=name, proxy=(0.0, 0.0), tag=f"{_MARK}{i}")
        marked.append(replace(t, op=op))
    carrier = noise if noise is not None else UniformNoise(0.0)
    lowered = timed_to_stim(replace(program, ops=tuple(marked)), "X", carrier, with_ideal_round=False)
    out = stim.Circuit()
    seen = 0
    for inst in lowered:
        if inst.name == "I" and inst.tag.startswith(_MARK):
            index, _, timing = inst.tag[len(_MARK) :].partition("@")
            op = program.ops[int(index)].op
            tag = f"{_AXIS[op.name]}:{op.angle!r};{op.tag}@{timing}"
            inst = stim.CircuitInstruction("I", inst.targets_copy(), tag=tag)
            seen += 1
        out.append(inst)
    expected = sum(t.op.name in _AXIS and not is_dd(t.op) for t in program.ops)
    if seen != expected:  # timed_to_stim changed how it lowers pulses: the marks no longer line up
        raise CtrlError(f"exact lowering found {seen} of the program's {expected} rotations")
    return out


def _where(qubits: tuple[str, ...], location: Location, pauli: str) -> dict:
    """A fault location in the compiled program's words: its channel, the op it follows (gadget@start
    cycle+duration), the Pauli, protocol and device qubits."""
    return {
        "instruction": location.instruction,
        "after": location.context,
        "pauli": pauli,
        "qubits": list(location.qubits),
        "device_qubits": [qubits[q] for q in location.qubits],
    }


def exact_target(program: TimedProgram, noise=None) -> Target:
    """The compiled program as a target of the exact state-vector check (`ctrl.sim.statevector`)."""
    if program.distance != 3:
        raise CtrlError(f"the exact check runs distance 3 only (16 qubits), not distance {program.distance}")
    # complex128: RX, RZ and SQRT_ZZ_DAG are complex; fused: four times faster than gate by gate
    sim = Program(exact_circuit(program, noise), np.complex128, fuse=True)
    data = tuple(i for i, role in enumerate(program.roles) if role == "data")
    kinds = {r.name: r.kind for r in program.decisions.rules}
    p = noise.p if isinstance(noise, UniformNoise) and noise.p > 0 else None
    return Target(sim, color_code(program.distance), data, kinds, p, partial(_where, program.qubits))


def _ratio(a: float, b: float) -> float | None:
    """a / b; None (unbounded) when b is zero up to the state vector's rounding, which leaves ~1e-17 of
    logical error where there is none."""
    return a / b if b > 1e-12 else None


def exact_compiled(
    device,
    program: TimedProgram,
    noise: str = "calibration",
    runs: int = 2000,
    seed: int = 0,
    proxy_shots: int = 1_000_000,
    workers: int | None = None,
) -> dict:
    """Exact acceptance and logical error per accepted state of the compiled program under `noise`
    (`calibration`, `calibration*S` or `uniform:P`), beside the Clifford proxies' figures from the
    emulator (`proxy_shots` per proxy) and the proxy's error factor, proxy / exact.

    `runs` is the exact sampler's budget of configurations with two or more faults; single faults are
    all run (`ctrl.sim.statevector.sample_exact`). The factor's range combines the two 95% intervals.
    """
    model = noise_for(noise, device, program)
    exact = sample_exact(exact_target(program, model), None, runs, seed, workers)
    proxy = emulate(device, program, proxy_shots, noise, seed)
    lo, hi = exact["logical_error_rate_ci95"]
    plo, phi = proxy["logical_error_rate_ci95"]
    components = proxy["components"]
    return {
        "device": program.device,
        "distance": program.distance,
        "noise": getattr(model, "name", noise),
        "seed": seed,
        "exact": exact,
        "proxy": {
            **{k: proxy[k] for k in ("shots", "accepted", "acceptance", "acceptance_ci95", "logical_errors",
                                     "logical_error_rate", "logical_error_rate_ci95", "components")},
            # the emulator's acceptance is proxy X's; the real circuit's lies between the two
            "acceptance_by_proxy": {
                "X": components["Z-type (proxy X)"]["accepted"] / proxy["shots"],
                "Z": components["X-type (proxy Z)"]["accepted"] / proxy["shots"],
            },
        },  # fmt: skip
        "acceptance": {"exact": exact["acceptance"], "proxy": proxy["acceptance"]},
        "logical_error_rate": {"exact": exact["logical_error_rate"], "proxy": proxy["logical_error_rate"]},
        "factor": _ratio(proxy["logical_error_rate"], exact["logical_error_rate"]),
        "factor_range95": [_ratio(plo, hi), _ratio(phi, lo)],
    }


def fidelity(program: TimedProgram) -> tuple[float, float]:
    """(acceptance, fidelity with |H>_L of the accepted output) of the noiseless compiled program."""
    target = exact_target(program)
    run = target.program.run()
    acc = fid = 0.0
    h = logical_h_state(target.code)
    for state in run.branches:
        out = target.program.output(state, target.data)
        acc += float(np.vdot(out, out).real)
        fid += float(abs(np.vdot(h, out)) ** 2)
    return acc, fid / acc if acc > 0 else 0.0
