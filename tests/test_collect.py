"""ctrl.collect: the one sampler, seeded chunks committed in order, resumable CSVs, any executor.

The sampler's counts are checked against a plain reading of the same Stim samples (every check detector,
no decision program); the statistics against each other across executors (this process, local processes,
a real Dask scheduler with two workers, one of them killed mid-run), chunk orders and resumes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import sinter

from ctrl.collect.cluster import Loopback, executor, local
from ctrl.collect.run import collect
from ctrl.collect.stats import Stats
from ctrl.collect.task import chunk_seed, sample
from ctrl.errors import CtrlError
from ctrl.noise.models import UniformNoise
from ctrl.codes.decode import decode_flips
from ctrl.sim.lower import IDEAL
from ctrl.sim.report import protocol_task

P = 4e-3  # many discards and some logical errors in few shots


@pytest.fixture(scope="module")
def tasks():
    return [protocol_task(3, UniformNoise(P), proxy) for proxy in "XZ"]


def _numbers(stats: list[Stats]) -> list[tuple]:
    """Everything but the time spent."""
    return [(s.shots, s.errors, s.discards, s.custom_counts) for s in stats]


def test_sample_counts_what_a_plain_reading_of_the_detectors_gives(tasks):
    for task in tasks:
        s = sample(task, 4000, seed=5)
        det, obs = task.circuit.compile_detector_sampler(seed=5).sample(4000, separate_observables=True)
        tags = [i.tag for i in task.circuit.flattened() if i.name == "DETECTOR"]
        ideal = np.array([t == IDEAL for t in tags])
        ok = ~det[:, ~ideal].any(axis=1)  # accepted: no check fired, whatever the decision points
        syn = det[ok][:, ideal]
        n = task.n_faces
        syn = syn[:, :n] if task.proxy == "X" else syn[:, n:]
        wrong = decode_flips(3, syn) != obs[ok, 0]
        assert s.shots == 4000 and s.accepted == ok.sum() and s.errors == wrong.sum()
        assert 0 < s.discards and sum(s.prefixed("abort").values()) == s.discards
        assert sum(s.prefixed("point").values()) == s.discards
        assert s.count("chunks") == 1


def test_chunk_seeds_depend_on_task_seed_and_index_only(tasks):
    a, b = tasks
    seeds = {chunk_seed(t.strong_id, s, i) for t in tasks for s in (0, 1) for i in range(50)}
    assert len(seeds) == 200
    assert chunk_seed(a.strong_id, 3, 7) == chunk_seed(protocol_task(3, UniformNoise(P), "X").strong_id, 3, 7)
    assert a.strong_id != b.strong_id != protocol_task(3, UniformNoise(2 * P), "Z").strong_id


def test_statistics_do_not_depend_on_workers_or_completion_order(tasks):
    one = collect(tasks, max_shots=9000, chunk_shots=2000, seed=4, executor=local(1))
    pool = local(2)
    try:
        two = collect(tasks, max_shots=9000, chunk_shots=2000, seed=4, executor=pool)
    finally:
        pool.close()
    shuffled = collect(tasks, max_shots=9000, chunk_shots=2000, seed=4, executor=_Reversed())
    assert _numbers(one) == _numbers(two) == _numbers(shuffled)
    assert [s.shots for s in one] == [9000, 9000] and [s.count("chunks") for s in one] == [5, 5]
    # the record is the sum of the chunks, each seeded by (task, seed, index)
    for task, s in zip(tasks, one):
        parts = [sample(task, n, chunk_seed(task.strong_id, 4, i)) for i, n in enumerate([2000] * 4 + [1000])]
        total = sum(parts, Stats())
        assert _numbers([total]) == _numbers([s])


def test_error_stop_is_global_and_exact(tasks):
    runs = [collect(tasks, max_shots=10**6, max_errors=3, chunk_shots=1000, seed=1, executor=e)
            for e in (local(1), _Reversed())]  # fmt: skip
    assert _numbers(runs[0]) == _numbers(runs[1])
    for task, s in zip(tasks, runs[0]):
        assert s.errors >= 3 and s.shots < 10**6
        # the smallest prefix of chunks that reaches the stop: without its last chunk it had fewer errors
        last = sample(task, 1000, chunk_seed(task.strong_id, 1, s.count("chunks") - 1))
        assert s.errors - last.errors < 3


def test_csv_resumes_and_equals_one_long_run(tmp_path, tasks):
    csv = tmp_path / "s.csv"
    collect(tasks, max_shots=4000, chunk_shots=2000, csv=csv)
    resumed = collect(tasks, max_shots=8000, chunk_shots=2000, csv=csv)
    straight = collect(tasks, max_shots=8000, chunk_shots=2000)
    assert _numbers(resumed) == _numbers(straight)
    rows = sinter.read_stats_from_csv_files(str(csv))
    assert sorted(r.shots for r in rows) == [8000, 8000]
    assert len(csv.read_text().splitlines()) == 1 + 8, "one row per chunk, under sinter's header"
    again = collect(tasks, max_shots=8000, chunk_shots=2000, csv=csv)
    assert _numbers(again) == _numbers(straight) and len(csv.read_text().splitlines()) == 9, "nothing to add"


def test_a_torn_last_row_is_dropped_and_sampled_again(tmp_path, tasks, capsys):
    csv = tmp_path / "s.csv"
    collect(tasks, max_shots=4000, chunk_shots=2000, csv=csv)
    text = csv.read_text()
    csv.write_text(text[: len(text) - 25])  # a crash in the middle of writing the last row
    again = collect(tasks, max_shots=4000, chunk_shots=2000, csv=csv)
    assert "cut short" in capsys.readouterr().err
    assert _numbers(again) == _numbers(collect(tasks, max_shots=4000, chunk_shots=2000))


def test_a_locked_csv_is_refused(tmp_path, tasks):
    import fcntl

    csv = tmp_path / "s.csv"
    with open(csv, "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(CtrlError, match="locked"):
            collect(tasks, max_shots=1000, csv=csv)


def test_cluster_specs_are_checked():
    for bad in ("local:0", "local:x", "slurm:0", "ftp://h:1", "tcp://nohost"):
        with pytest.raises(CtrlError, match="--cluster"):
            executor(bad)
    assert executor("local:1").workers == 1
    assert executor("local:8", chunks_hint=1).workers == 1, "one chunk runs in this process"


def test_slurm_without_settings_says_what_is_missing(monkeypatch, tmp_path):
    pytest.importorskip("dask_jobqueue")
    monkeypatch.setenv("DASK_CONFIG", str(tmp_path))  # no jobqueue.yaml of the user's
    with pytest.raises(CtrlError, match=r"--cluster slurm: .*cores and memory") as e:
        executor("slurm")
    assert "\n" not in str(e.value)


class _Reversed:
    """An executor that finishes chunks in the reverse of the order they were submitted."""

    workers = 3

    def __init__(self) -> None:
        self.inner = local(1)

    def submit(self, fn, *args):
        return self.inner.submit(fn, *args)

    def done_first(self, futures):
        return list(reversed(futures))[:2]

    def cancel(self, future) -> None:
        pass

    def share(self, obj):
        return obj

    def close(self) -> None:
        pass


# --- a real Dask cluster on loopback: `dask scheduler` and two `dask worker` processes started here


@pytest.fixture
def dask_cluster(monkeypatch):
    pytest.importorskip("distributed")
    # the workers import this ctrl, installed or not
    root = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    with Loopback(workers=2) as cluster:
        yield cluster.address, cluster.workers


def test_a_dask_cluster_gives_the_local_statistics_and_survives_a_killed_worker(dask_cluster, tasks, tmp_path):
    address, workers = dask_cluster
    want = collect(tasks, max_shots=24_000, chunk_shots=1000, seed=9, executor=local(1))
    cluster = executor(address)
    try:
        assert cluster.workers == 2
        killed = []

        def kill_one(task: int, chunk: Stats) -> None:
            if not killed:  # mid-run: after the first committed chunk, one worker dies with work in hand
                os.killpg(workers[0].pid, signal.SIGKILL)
                killed.append(time.monotonic())

        csv = tmp_path / "dask.csv"
        got = collect(tasks, max_shots=24_000, chunk_shots=1000, seed=9, executor=cluster, csv=csv, on_commit=kill_one)
    finally:
        cluster.close()
    assert killed and workers[0].wait(timeout=30) is not None
    assert _numbers(got) == _numbers(want), "nothing lost, nothing counted twice"
    rows = sinter.read_stats_from_csv_files(str(csv))
    assert sorted(r.shots for r in rows) == [24_000, 24_000]
    assert sorted(_numbers([Stats(r.shots, r.errors, r.discards, 0, dict(r.custom_counts)) for r in rows])) == sorted(
        _numbers(want))
