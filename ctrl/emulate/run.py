"""Emulating the compiled program: what the lab would see, from the device's own noise.

The timed program is lowered to both Clifford proxies (`ctrl.backends.stim`) with calibration noise (or
`uniform:P`), sampled as `ctrl.collect` tasks (seeded chunks, on this process, local processes or a Dask cluster),
post-selected by the real-time module's batch evaluator running the program's own decision points.
Accepted shots are scored through the ideal round.

Times come from what the boards play (`ctrl.backends.qick.plan`): every attempt slot starts with the
reset block. An attempt aborted in real time at a decision point then costs that point's time plus the
abort branch, which lets in-flight pulses end and fires the remaining readout windows as dummies. Any
other attempt plays to the end, including one that fails a check decided only after the run.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from ctrl.backends.stim import timed_to_stim
from ctrl.collect.run import collect
from ctrl.collect.stats import protocol_figures
from ctrl.collect.task import Task
from ctrl.collect.task import stops as task_stops
from ctrl.compile.timed import TimedProgram
from ctrl.errors import CtrlError
from ctrl.noise.calibration import CalibrationNoise
from ctrl.noise.models import parse_noise
from ctrl.versions import versions


def emulation_task(device, program: TimedProgram, proxy: str, model, metadata: dict | None = None) -> Task:
    """Proxy `proxy` of the compiled `program` under noise `model` as a sampling task, post-selected by the
    program's own decision points. `metadata` (JSON) names it; the default: device, hashes, d, noise."""
    meta = metadata if metadata is not None else {
        "name": device.name, "calibration_hash": program.calibration_hash, "wiring_hash": program.wiring_hash,
        "protocol": "cn20", "d": program.distance, "noise": getattr(model, "name", str(model)), "proxy": proxy,
    }  # fmt: skip
    circuit = timed_to_stim(program, proxy, model)
    return Task(circuit, program.decisions, program.distance, proxy, len(_faces(program.distance)), meta)


def calibration_scale(spec: str) -> float | None:
    """SCALE of "calibration" (1) or "calibration*SCALE" (a finite SCALE >= 0, else CtrlError); None for
    another spec (`parse_noise`'s). The one reading of these specs: emulate, dry-run, sweep and the
    budget all ask here."""
    if spec == "calibration":
        return 1.0
    if not spec.startswith("calibration*"):
        return None
    try:
        scale = float(spec.split("*", 1)[1])
    except ValueError:
        scale = math.nan
    if not (math.isfinite(scale) and scale >= 0):
        raise CtrlError(f"noise {spec!r}: expected calibration*SCALE with a finite SCALE >= 0, e.g. calibration*0.1")
    return scale


def check_noise(spec: str) -> None:
    """CtrlError now, before any work, if `spec` is not a noise `emulate` takes."""
    if calibration_scale(spec) is None:
        parse_noise(spec)


def noise_for(spec: str, device, program: TimedProgram):
    scale = calibration_scale(spec)
    return parse_noise(spec) if scale is None else CalibrationNoise(device, program.clock_hz, scale)


def emulate(device, program: TimedProgram, shots: int, noise: str = "calibration", seed: int = 0,
            executor=None, progress=None) -> dict:
    """`progress(task index, committed Stats)`, if given, hears each sampled chunk (task 0 is proxy X,
    task 1 proxy Z); `executor` (`ctrl.collect.cluster`) runs them, this process by default."""
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise CtrlError(f"shots must be a positive integer, got {shots!r}")
    device.target.check_program(program)
    model = noise_for(noise, device, program)
    decisions = program.decisions
    realtime = decisions.realtime_only()
    reset, tails, attempt = slot_timing(device, program)
    tasks = [emulation_task(device, program, proxy, model) for proxy in "XZ"]
    by_proxy = dict(zip("XZ", collect(tasks, max_shots=shots, seed=seed, executor=executor, on_commit=progress)))
    x = by_proxy["X"]
    stops = task_stops(tasks[0], x)
    stop_cycles = np.array([reset + p.time + tails[i] for i, p in enumerate(realtime.points)], dtype=float)
    stopped = int(stops.sum())
    mean_cycles = (stops @ stop_cycles + (shots - stopped) * (reset + attempt)) / shots
    figures = protocol_figures(by_proxy)
    acceptance, aborted = figures["acceptance"], x.discards
    result = {
        "device": program.device,
        "distance": program.distance,
        "noise": getattr(model, "name", noise),
        "seed": seed,
        **figures,
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
        "discards_by_kind": x.prefixed("abort"),
        "discards_by_decision_point": {k: v for k, v in sorted(x.prefixed("point").items(), key=lambda kv: int(kv[0]))},
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
    if not x.accepted:
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
