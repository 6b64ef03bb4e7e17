"""Error budget of the compiled protocol under calibration noise, beside the physical baseline.

Three figures, all from Stim's detector error model (DEM) of the compiled program, no sampling:

- **Physical baseline**: the error of |H> prepared directly on the device's best usable qubit: active
  reset, then one RY(pi/4) pulse (an x90-class pulse: `QubitTarget.pulse_error`). Under the noise model
  (`ctrl.noise.calibration`) the reset leaves |1> with probability p_r = error_1to0 and the pulse is
  followed by depolarizing p = 3r/2 (r the calibrated x90 error). On |H> (Bloch vector (1, 0, 1)/sqrt 2) a
  Y flips the state to |H-perp> (infidelity 1), X and Z halve the fidelity (infidelity 1/2), so the pulse
  costs e_p = p/3 (1 + 1/2 + 1/2) = 2p/3 = r. A reset failure gives RY(pi/4)|1> = |H-perp>, and the
  depolarizing channel brings |H-perp> back with the same 2p/3, so the state error is exactly

      e = p_r + e_p - 2 p_r e_p.

  No idle (the state is used as soon as it is made, as the protocol's figure counts no wait after the
  accepted attempt either) and no readout (the preparation measures nothing; the reset's measurement
  enters through p_r). The best qubit is the usable one with the smallest e.
- **Budget**: the calibration noise split by source: each two-qubit gate family ("two_qubit:ecr",
  "two_qubit:cz", as the device file names the gate), one-qubit pulses ("pulse"), idle gaps ("idle":
  T1, T2 and static ZZ), readout flips ("readout") and the reset at the start of an attempt ("reset").
  For each source, the compiled program is lowered with only that source's noise on (`SourceNoise`):
  * its first-order discard: the sum of the probabilities of its DEM mechanisms that fire a protocol
    check (proxy X, as `emulate`'s acceptance). With one source alone, the discard probability is about
    1 - exp(-sum); the sum over sources is the all-sources first-order discard up to the second-order
    difference between adding probabilities and composing them.
  * its share of the leading-order logical error per accepted state (`ctrl.sim.faults.leading_order`,
    both proxies summed, as `emulate`'s figure): the smallest undetected failing fault sets are found on
    the all-sources DEM, and each set's probability is split among sources in proportion to how much of
    each of its mechanisms each source contributes (a set of k mechanisms gives each mechanism 1/k of
    the set's weight). This is the Euler split of a degree-k polynomial, so the source shares add up to
    the leading-order figure exactly; a set that mixes sources (an ECR fault and an idle fault) is
    shared between them.
  These are first-order figures: they do not add up to the sampled discard and logical error of
  `emulate` (which include every higher order and the cancellations among checks), they say what
  dominates.
- **Break-even scale**: the calibration scale s (`CalibrationNoise.scale`: every error times s, T1/T2
  divided by s) at which the protocol's leading-order logical error per accepted state equals the
  baseline's error at the same s, by bisection in log s over [1e-3, 1]; null with a reason when there
  is no crossing there.

The leading order is good where faults per attempt are rare. When the first-order discard sum exceeds
`CAVEAT_DISCARD` the result says so under `caveat`: on planar16_d3 as calibrated (sum 2.7, acceptance
7 %) the sampled logical error per accepted state is about twice the leading order (0.018 [0.012, 0.026]
at 40000 shots against 0.0093), so the true break-even scale lies below the leading-order one.

`budget(device, program)` returns a strict JSON dict (null where undefined, with the reason under
`undefined`). `ctrl dry-run` writes it to budget.json, and `ctrl dry-run` and `ctrl emulate` print
`budget_table` of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ctrl.backends.stim import timed_to_stim
from ctrl.codes.color import color_code
from ctrl.compile.timed import TimedProgram
from ctrl.errors import CtrlError
from ctrl.noise.calibration import CalibrationNoise
from ctrl.sim.faults import mechanisms, set_weight, smallest_failures

ONE_QUBIT_SOURCES = ("pulse", "idle", "readout", "reset")
SCALE_RANGE = (1e-3, 1.0)
_BISECTIONS = 40
CAVEAT_DISCARD = 0.1  # above this expected number of check-firing faults per attempt, say the leading order is rough


@dataclass(frozen=True)
class SourceNoise(CalibrationNoise):
    """Calibration noise with only the sources in `on` (None: all of them); the others are silent."""

    on: frozenset[str] | None = None

    @property
    def name(self) -> str:
        base = super().name
        return base if self.on is None else f"{base}[{'+'.join(sorted(self.on))}]"

    def _gate(self, source: str) -> float:
        return 1.0 if self.on is None or source in self.on else 0.0

    def pulse(self, qubit: str, angle: float) -> float:
        return super().pulse(qubit, angle) * self._gate("pulse")

    def two_qubit(self, a: str, b: str) -> float:
        return super().two_qubit(a, b) * self._gate(two_qubit_source(self.target.gate(a, b).kind))

    def readout_flip(self, qubit: str) -> float:
        return super().readout_flip(qubit) * self._gate("readout")

    def reset_flip(self, qubit: str) -> float:
        return super().reset_flip(qubit) * self._gate("reset")

    def idle(self, qubit, cycles, echo=False, live=frozenset()):
        f = self._gate("idle")
        return tuple(p * f for p in super().idle(qubit, cycles, echo, live))


def two_qubit_source(kind: str) -> str:
    return f"two_qubit:{kind.lower()}"


def sources(device, program: TimedProgram) -> tuple[str, ...]:
    """The program's noise sources: its two-qubit gate families (sorted), then the one-qubit ones."""
    kinds = {device.target.gate(*t.op.qubits).kind for t in program.ops if len(t.op.qubits) == 2}
    return tuple(sorted(two_qubit_source(k) for k in kinds)) + ONE_QUBIT_SOURCES


def _noise(device, program, scale: float, on=None) -> SourceNoise:
    return SourceNoise(device, program.clock_hz, scale, on)


def logical_error(device, program: TimedProgram, scale: float = 1.0) -> float:
    """Leading-order logical error per accepted state, both proxies summed, under calibration*scale."""
    n_faces = len(color_code(program.distance).faces)
    total = 0.0
    for proxy in "XZ":
        faults = [f for _, f in mechanisms(timed_to_stim(program, proxy, _noise(device, program, scale)), proxy, n_faces)]
        total += sum(set_weight(faults, idx) for idx in smallest_failures(faults, program.distance)[1])
    return total


# --- the physical baseline


def baseline_errors(device, scale: float = 1.0) -> dict[str, dict]:
    """Per usable qubit: {"reset": p_r, "pulse": e_p, "state": e} of |H> prepared on it (module docstring)."""
    noise = CalibrationNoise(device, 1.0, scale)  # no idle in the baseline: the clock does not enter
    out = {}
    for name, q in device.target.qubits.items():
        if not q.usable:
            continue
        p_r = noise.reset_flip(name)
        e_p = 2 / 3 * noise.pulse(name, math.pi / 4)
        out[name] = {"reset": p_r, "pulse": e_p, "state": p_r + e_p - 2 * p_r * e_p}
    return out


def baseline(device, scale: float = 1.0) -> dict:
    errors = baseline_errors(device, scale)
    if not errors:
        raise CtrlError(f"{device.name} has no usable qubit: no physical baseline")
    best = min(errors, key=lambda n: (errors[n]["state"], n))
    e = errors[best]
    return {
        "qubit": best,
        "state_error": e["state"],
        "reset_error": e["reset"],
        "pulse_error": e["pulse"],
        "formula": "reset p_r = error_1to0, pulse e_p = 2/3 of depolarizing p = 3r/2 (r = x90 error): "
                   "state error p_r + e_p - 2 p_r e_p; no idle, no readout",
    }  # fmt: skip


# --- the budget


def break_even_scale(device, program: TimedProgram) -> tuple[float | None, str | None]:
    """(s, None) where the protocol's leading-order logical error equals the baseline's at scale s, or
    (None, why) when they do not cross in SCALE_RANGE. Bisection in log s: both sides are computed again
    at every s, so the saturation of large errors (the noise model's caps) is included."""

    def gap(s: float) -> float:  # > 0: the protocol is worse
        p = logical_error(device, program, s)
        b = baseline(device, s)["state_error"]
        if p <= 0:
            return -math.inf
        return math.log(p) - math.log(b) if b > 0 else math.inf

    lo, hi = SCALE_RANGE
    g_lo, g_hi = gap(lo), gap(hi)
    if g_hi <= 0:
        return None, (f"the protocol already beats the physical baseline at scale {hi:g} (the device as "
                      "calibrated): no crossing in [1e-3, 1]")  # fmt: skip
    if g_lo > 0:
        return None, f"the protocol is worse than the physical baseline at every scale in [{lo:g}, {hi:g}]"
    a, b = math.log(lo), math.log(hi)
    for _ in range(_BISECTIONS):
        m = (a + b) / 2
        if gap(math.exp(m)) > 0:
            b = m
        else:
            a = m
    return math.exp((a + b) / 2), None


def budget(device, program: TimedProgram, scale: float = 1.0) -> dict:
    """The budget of `program` on `device` under calibration*scale (module docstring). Strict JSON."""
    device.target.check_program(program)
    n_faces = len(color_code(program.distance).faces)
    names = sources(device, program)
    undefined: dict[str, str] = {}
    discard = {s: 0.0 for s in names}
    logical = {s: 0.0 for s in names}
    by_proxy = {}
    all_discard = 0.0
    acceptance = 1.0
    size = None
    for proxy in "XZ":
        full = mechanisms(timed_to_stim(program, proxy, _noise(device, program, scale)), proxy, n_faces)
        faults = [f for _, f in full]
        per_source = {}
        for s in names:
            mech = mechanisms(timed_to_stim(program, proxy, _noise(device, program, scale, frozenset({s}))), proxy, n_faces)
            per_source[s] = {k: f.p for k, f in mech}
            if proxy == "X":
                discard[s] = sum(f.p for _, f in mech if f.checks)
        if proxy == "X":
            all_discard = sum(f.p for f in faults if f.checks)
            acceptance = math.prod(1 - f.p for f in faults if f.checks)
        bad = smallest_failures(faults, program.distance)[1]
        total = 0.0
        for idx in bad:
            w = set_weight(faults, idx)
            total += w
            for i in idx:
                key = full[i][0]
                parts = {s: per_source[s].get(key, 0.0) for s in names}
                norm = sum(parts.values())
                for s in names:
                    logical[s] += w / len(idx) * parts[s] / norm
        by_proxy[proxy] = total
        if bad:
            size = len(bad[0]) if size is None else min(size, len(bad[0]))
    p_l = sum(by_proxy.values())
    base = baseline(device, scale)
    crossing, why = break_even_scale(device, program)
    if crossing is None:
        undefined["break_even_scale"] = why
    table = {}
    for s in names:
        table[s] = {
            "discard_first_order": discard[s],
            "discard_share": discard[s] / all_discard if all_discard else None,
            "logical_error": logical[s],
            "logical_share": logical[s] / p_l if p_l else None,
        }
    if not all_discard:
        undefined["discard_share"] = "no mechanism fires a check"
    if not p_l:
        undefined["logical_share"] = "no undetected failing set of at most 3 faults"
    out = {
        "device": program.device,
        "distance": program.distance,
        "noise": _noise(device, program, scale).name,
        "method": "first/leading order from Stim's detector error model, no sampling (ctrl.emulate.budget)",
        "protocol": {
            "acceptance_leading_order": acceptance,
            "discard_first_order": all_discard,
            "logical_error_leading_order": p_l,
            "logical_error_leading_order_by_proxy": by_proxy,
            "failing_set_size": size,
        },
        "baseline": base,
        "protocol_beats_baseline": p_l < base["state_error"],
        "sources": table,
        "break_even_scale": crossing,
        "break_even_baseline_qubit": baseline(device, crossing)["qubit"] if crossing is not None else None,
    }
    if all_discard > CAVEAT_DISCARD:
        out["caveat"] = (f"first-order discard sum {all_discard:.3g} > {CAVEAT_DISCARD:g}: an attempt often "
                         "carries more than one fault, so the leading order underestimates the logical error per "
                         "accepted state (emulate samples it) and the break-even scale is optimistic")  # fmt: skip
    if undefined:
        out["undefined"] = undefined
    return out


def budget_for_noise(device, program: TimedProgram, noise: str = "calibration") -> dict:
    """The budget under the calibration scale of `noise` ("calibration*S"); under any other noise model
    (uniform:P, ...) the budget is still the device's calibration noise at scale 1: it names sources of
    the calibration, which a uniform model has none of."""
    from ctrl.emulate.run import calibration_scale

    scale = calibration_scale(noise)
    return budget(device, program, 1.0 if scale is None else scale)


def budget_table(b: dict) -> str:
    """A short text table of `budget`'s result, for the terminal."""
    base = b["baseline"]
    pr = b["protocol"]
    lines = [
        f"error budget ({b['noise']}, leading order from the detector error model, no sampling):",
        f"  protocol: logical error per accepted {pr['logical_error_leading_order']:.3g}, acceptance "
        f"{pr['acceptance_leading_order']:.3g} (first-order discard sum {pr['discard_first_order']:.3g})",
        f"  physical |H> on {base['qubit']}: error {base['state_error']:.3g} (reset {base['reset_error']:.3g} "
        f"+ pulse {base['pulse_error']:.3g}); protocol {'beats' if b['protocol_beats_baseline'] else 'does not beat'} it",
        f"  {'source':<18}{'discard (1st order)':>22}{'logical error':>22}",
    ]
    for s, r in b["sources"].items():
        ds = "" if r["discard_share"] is None else f" {r['discard_share']:5.1%}"
        ls = "" if r["logical_share"] is None else f" {r['logical_share']:5.1%}"
        lines.append(f"  {s:<18}{r['discard_first_order']:>15.3g}{ds:>7}{r['logical_error']:>15.3g}{ls:>7}")
    if b["break_even_scale"] is not None:
        lines.append(f"  break-even: the protocol beats the physical baseline below calibration scale "
                     f"{b['break_even_scale']:.3g}")  # fmt: skip
    else:
        lines.append(f"  break-even scale: none ({b['undefined']['break_even_scale']})")
    if "caveat" in b:
        lines.append(f"  caveat: {b['caveat']}")
    return "\n".join(lines)
