"""Emulating the compiled program: what the lab would see, from the device's own noise.

The timed program is lowered to both Clifford proxies (`ctrl.backends.stim`) with calibration noise (or
`uniform:P`), sampled with Stim's compiled sampler in seeded chunks, and post-selected by the real-time
module's batch evaluator running the program's own decision points. Accepted shots are scored through
the ideal round.

Times come from what the boards play (`ctrl.backends.qick.plan`): every attempt slot starts with the
reset block. An attempt aborted in real time at a decision point then costs that point's time plus the
abort branch, which lets in-flight pulses end and fires the remaining readout windows as dummies. Any
other attempt plays to the end, including one that fails a check decided only after the run.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ctrl.backends.stim import timed_to_stim
from ctrl.compile.timed import TimedProgram
from ctrl.errors import CtrlError
from ctrl.noise.calibration import CalibrationNoise
from ctrl.noise.models import parse_noise
from ctrl.realtime.decision import DecisionProgram, evaluate_batch, first_failures
from ctrl.realtime.stats import discards
from ctrl.sim.decode import decode_flips
from ctrl.sim.sample import per_accepted, wilson
from ctrl.versions import versions

CHUNK = 20_000


def sample_chunk(circuit, decisions: DecisionProgram, distance: int, proxy: str, shots: int, seed: int,
                 realtime: DecisionProgram | None = None):  # fmt: skip
    """(accepted, logical errors, aborts per decision point, first failing check counts) for `shots`;
    with `realtime`, also the aborts per point of that program (where the attempt really stops).

    Works on Stim's bit-packed output: the protocol's detectors come first (the ideal round is appended
    last), so their bytes feed the batch evaluator as they are; only accepted shots are unpacked.
    """
    k = len(decisions.record)
    n_faces = len(_faces(distance))
    det, obs = circuit.compile_detector_sampler(seed=seed).sample(shots, separate_observables=True, bit_packed=True)
    checks = det[:, : decisions.n_bytes]
    if k % 8:
        checks = checks.copy()
        checks[:, -1] &= np.uint8((1 << (k % 8)) - 1)
    aborts = evaluate_batch(decisions, checks)
    stops = aborts if realtime is decisions else evaluate_batch(realtime, checks) if realtime is not None else None
    first = first_failures(decisions, checks, aborts)
    ok = aborts < 0
    start = k // 8
    bits = np.unpackbits(det[ok, start:], axis=1, bitorder="little")[:, k - 8 * start : k - 8 * start + 2 * n_faces]
    syn = bits[:, :n_faces] if proxy == "X" else bits[:, n_faces:]
    flips = (obs[ok, 0] & 1).astype(bool)
    errors = int((decode_flips(distance, syn) != flips).sum())
    out = (
        int(ok.sum()),
        errors,
        np.bincount(aborts[aborts >= 0], minlength=len(decisions.points)),
        np.bincount(first[first >= 0], minlength=len(decisions.rules)),
    )
    if realtime is None:
        return out
    return out + (np.bincount(stops[stops >= 0], minlength=len(realtime.points)),)


def _calibration_scale(spec: str) -> float | None:
    """SCALE of "calibration" (1) or "calibration*SCALE"; None for another spec (`parse_noise`'s)."""
    if spec == "calibration":
        return 1.0
    if not spec.startswith("calibration*"):
        return None
    try:
        scale = float(spec.split("*", 1)[1])
    except ValueError:
        scale = -1.0
    if not scale >= 0:
        raise CtrlError(f"noise {spec!r}: expected calibration*SCALE with SCALE >= 0, e.g. calibration*0.1")
    return scale


def check_noise(spec: str) -> None:
    """CtrlError now, before any work, if `spec` is not a noise `emulate` takes."""
    if _calibration_scale(spec) is None:
        parse_noise(spec)


def noise_for(spec: str, device, program: TimedProgram):
    scale = _calibration_scale(spec)
    return parse_noise(spec) if scale is None else CalibrationNoise(device, program.clock_hz, scale)


def emulate(device, program: TimedProgram, shots: int, noise: str = "calibration", seed: int = 0,
            progress=None) -> dict:
    """`progress(proxy, n)`, if given, hears each sampled chunk: n more shots of proxy "X" or "Z"."""
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise CtrlError(f"shots must be a positive integer, got {shots!r}")
    device.target.check_program(program)
    model = noise_for(noise, device, program)
    decisions = program.decisions
    realtime = decisions.realtime_only()
    reset, tails, attempt = slot_timing(device, program)
    out = {}
    stops = np.zeros(len(realtime.points), dtype=np.int64)
    for proxy in "XZ":
        circuit = timed_to_stim(program, proxy, model)
        accepted = errors = 0
        by_point = np.zeros(len(decisions.points), dtype=np.int64)
        by_rule = np.zeros(len(decisions.rules), dtype=np.int64)
        left, index = shots, 0
        while left > 0:
            n = min(CHUNK, left)
            s = int(np.random.SeedSequence([seed, ord(proxy), index]).generate_state(1)[0])
            a, e, p, r, stop = sample_chunk(circuit, decisions, program.distance, proxy, n, s, realtime)
            accepted, errors, by_point, by_rule = accepted + a, errors + e, by_point + p, by_rule + r
            if proxy == "X":
                stops += stop
            left -= n
            index += 1
            if progress is not None:
                progress(proxy, n)
        out[proxy] = (accepted, errors, by_point, by_rule)
    accepted, _, by_point, by_rule = out["X"]
    rate, ci = per_accepted((e, a) for a, e, _, _ in out.values())
    acceptance = accepted / shots
    stop_cycles = np.array([reset + p.time + tails[i] for i, p in enumerate(realtime.points)], dtype=float)
    stopped = int(stops.sum())
    mean_cycles = (stops @ stop_cycles + (shots - stopped) * (reset + attempt)) / shots
    counts = discards(decisions, by_point, by_rule)
    aborted = shots - accepted
    result = {
        "device": program.device,
        "distance": program.distance,
        "noise": getattr(model, "name", noise),
        "seed": seed,
        "shots": shots,
        "accepted": accepted,
        "acceptance": acceptance,
        "acceptance_ci95": list(wilson(accepted, shots)),
        "logical_errors": sum(e for _, e, _, _ in out.values()),
        "logical_error_rate": rate,
        "logical_error_rate_ci95": ci,
        "components": {
            "Z-type (proxy X)": {"accepted": out["X"][0], "logical_errors": out["X"][1]},
            "X-type (proxy Z)": {"accepted": out["Z"][0], "logical_errors": out["Z"][1]},
        },
        "expected_attempts_per_accepted_state": 1 / acceptance if acceptance else None,
        "attempt_s": program.seconds(program.duration),
        "attempt_slot_s": program.seconds(reset + attempt),  # reset block + a completed attempt
        "mean_attempt_s": program.seconds(mean_cycles),
        "reset_s": program.seconds(reset),
        "mean_aborted_attempt_s": (
            program.seconds((stops @ stop_cycles + (aborted - stopped) * (reset + attempt)) / aborted)
            if aborted else None
        ),
        "aborted_in_real_time": stopped,
        "time_per_accepted_state_s": program.seconds(mean_cycles) / acceptance if acceptance else None,
        "discards_by_kind": counts["aborts_by_kind"],
        "discards_by_decision_point": counts["aborts_by_point"],
        "provenance": {
            "calibration_hash": program.calibration_hash,
            "wiring_hash": program.wiring_hash,
            "program_hash": "sha256:" + hashlib.sha256(program.to_json().encode()).hexdigest(),
            "protocol": {"name": "cn20", "distance": program.distance},
            "versions": versions(),
        },
    }
    # an undefined figure is null, and says why (only then: the usual result stays as it was)
    why = {}
    if not accepted:
        why |= {k: "no attempt was accepted" for k in ("logical_error_rate", "logical_error_rate_ci95",
                                                     "expected_attempts_per_accepted_state",
                                                     "time_per_accepted_state_s") if result[k] is None}  # fmt: skip
    if not aborted:
        why["mean_aborted_attempt_s"] = "no attempt was aborted"
    if why:
        result["undefined"] = why
    return result


def slot_timing(device, program: TimedProgram) -> tuple[int, list[int], int]:
    """(reset block, abort branch per real-time decision point, full attempt) in cycles, as the QICK
    programs play them; the longest board sets the pace, since boards start every slot together. Without
    QICK wiring: the program's own reset and attempt, and an abort that takes effect at its decision."""
    if device.wiring is None:
        return program.abort_duration, [0 for d in program.decisions.points if d.realtime], program.duration
    from ctrl.backends.qick.plan import plan_program

    plans = plan_program(device, program, 1).values()
    reset = max(p.reset.length for p in plans)
    attempt = max(p.attempt.length for p in plans)
    tails = [max((p.aborts[d.index].length for p in plans if d.index in p.aborts), default=0)
             for d in program.decisions.points if d.realtime]  # fmt: skip
    return reset, tails, attempt


def _faces(distance: int):
    from ctrl.codes.color import color_code

    return color_code(distance).faces
