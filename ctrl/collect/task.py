"""A sampling task and the one sampler every command uses.

A `Task` is one Clifford proxy of one program under one noise model: its noisy Stim circuit (the
protocol's detectors first, in the decision program's record order, then the ideal round), the decision
program that post-selects it, and metadata naming what it is (device, hashes, distance, noise). Its
`strong_id` is a hash of that content only, never of a file path: the key of its CSV rows and of the seeds
of its chunks (`chunk_seed`), so a chunk's numbers depend on what is sampled, the run's seed and the
chunk's index, and on nothing else (not the worker, the number of workers or the order chunks finish).

`sample(task, shots, seed)` post-selects with the decision program (`evaluate_batch`, as the FPGA
program decides) and scores accepted shots through the ideal round (minimum-weight table decoder).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import stim

from ctrl.collect.stats import Stats
from ctrl.realtime.decision import DecisionProgram, evaluate_batch, first_failures
from ctrl.codes.decode import decode_flips

# Part of every strong_id: a change to what `sample` counts or how seeds are derived must not resume old rows.
SAMPLER = "ctrl.collect/1"


@dataclass(frozen=True)
class Task:
    circuit: stim.Circuit
    decisions: DecisionProgram
    distance: int
    proxy: str  # "X" or "Z"
    n_faces: int  # syndrome bits per basis in the ideal round
    metadata: Mapping[str, Any]  # JSON: what the task is, for the CSV and plots

    def __post_init__(self) -> None:
        # A circuit crosses to worker processes as its text, and Stim's text rounds probabilities: the
        # circuit sampled here must be that text's, or a chunk's numbers would depend on where it ran.
        object.__setattr__(self, "circuit", stim.Circuit(str(self.circuit)))

    def __repr__(self) -> str:
        return (f"Task(d={self.distance} proxy {self.proxy}, {self.circuit.num_detectors} detectors, "
                f"{self.decisions!r}, {self.strong_id[:12]}...)")  # fmt: skip

    @functools.cached_property
    def strong_id(self) -> str:
        h = hashlib.sha256()
        for part in (SAMPLER, str(self.circuit), _canonical(dataclasses.asdict(self.decisions)),
                     _canonical([self.distance, self.proxy, self.n_faces]), _canonical(self.metadata)):  # fmt: skip
            h.update(len(part).to_bytes(8, "little"))
            h.update(part.encode())
        return h.hexdigest()


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def chunk_seed(task_id: str, seed: int, index: int) -> int:
    """The seed of chunk `index` of the task with strong_id `task_id` in a run seeded `seed`. SeedSequence
    mixes the parts, so neighbouring indices give unrelated streams."""
    words = [int(task_id[i : i + 8], 16) for i in range(0, 32, 8)]
    return int(np.random.SeedSequence([int(seed), *words, int(index)]).generate_state(2, np.uint64)[0] >> 1)


def sample(task: Task, shots: int, seed: int) -> Stats:
    """`shots` attempts of `task`, seeded: aborted attempts by first failing check's kind, by decision point
    and where the controller really stops (real-time points), logical errors of the accepted ones.

    Works on Stim's bit-packed output: the protocol's detectors come first, so their bytes feed the batch
    evaluator as they are; only accepted shots are unpacked."""
    t0 = time.perf_counter()
    decisions = task.decisions
    k = len(decisions.record)
    det, obs = task.circuit.compile_detector_sampler(seed=seed).sample(shots, separate_observables=True, bit_packed=True)
    checks = det[:, : decisions.n_bytes]
    if k % 8:
        checks = checks.copy()
        checks[:, -1] &= np.uint8((1 << (k % 8)) - 1)
    aborts = evaluate_batch(decisions, checks)
    first = first_failures(decisions, checks, aborts)
    ok = aborts < 0
    start = k // 8
    bits = np.unpackbits(det[ok, start:], axis=1, bitorder="little")[:, k - 8 * start : k - 8 * start + 2 * task.n_faces]
    syn = bits[:, : task.n_faces] if task.proxy == "X" else bits[:, task.n_faces :]
    flips = (obs[ok, 0] & 1).astype(bool)
    errors = int((decode_flips(task.distance, syn) != flips).sum())

    counts: dict[str, int] = {"chunks": 1}
    for rule, n in zip(decisions.rules, np.bincount(first[first >= 0], minlength=len(decisions.rules))):
        if n:
            counts[f"abort:{rule.kind}"] = counts.get(f"abort:{rule.kind}", 0) + int(n)
    for i, n in enumerate(np.bincount(aborts[aborts >= 0], minlength=len(decisions.points))):
        if n:
            counts[f"point:{i}"] = int(n)
    realtime = decisions.realtime_only()
    if realtime is not decisions:
        stops = evaluate_batch(realtime, checks)
        for i, n in enumerate(np.bincount(stops[stops >= 0], minlength=len(realtime.points))):
            if n:
                counts[f"stop:{i}"] = int(n)
    accepted = int(ok.sum())
    return Stats(shots, errors, shots - accepted, time.perf_counter() - t0, counts)


def stops(task: Task, stats: Stats) -> np.ndarray:
    """Attempts stopped in real time at each real-time decision point (renumbered as `realtime_only`)."""
    realtime = task.decisions.realtime_only()
    key = "point" if realtime is task.decisions else "stop"
    out = np.zeros(len(realtime.points), dtype=np.int64)
    for i, n in stats.prefixed(key).items():
        out[int(i)] = n
    return out


__all__ = ["Task", "sample", "chunk_seed", "stops", "SAMPLER"]
