"""Fan-out over worker processes for the exact check (single faults, sampled configurations), with
progress callbacks and one BLAS thread per worker."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor


def _map(fn, tasks: list, workers: int | None, done=None) -> list:
    """fn over tasks, in order, in `workers` processes (default: every CPU this process may use);
    `done()`, if given, is called as each result arrives (a progress bar)."""
    done = done or (lambda: None)
    workers = min(workers or len(os.sched_getaffinity(0)), len(tasks))
    if workers <= 1:
        return [_after(fn(t), done) for t in tasks]
    # forked workers inherit the registered targets and their checkpoints (see Target)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork") if "fork" in methods else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_one_blas_thread) as pool:
        return [_after(r, done) for r in pool.map(fn, tasks)]


def _after(result, done):
    done()
    return result


def _counter(progress, stage: str, total: int):
    """A `done` for `_map` that tells `progress(stage, done, total)`; None without `progress`."""
    if progress is None:
        return None
    progress(stage, 0, total)
    n = [0]

    def done() -> None:
        n[0] += 1
        progress(stage, n[0], total)

    return done


_SET_BLAS_THREADS = (
    "scipy_openblas_set_num_threads64_",  # numpy's wheels
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def _one_blas_thread() -> None:
    """Worker initializer: one BLAS thread per process. The fused kernels are matmuls, and workers that
    each start OpenBLAS's default thread per CPU oversubscribe the machine: single-fault runs of the
    compiled program went three times slower. Best effort: a BLAS this does not find keeps its threads."""
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SET_BLAS_THREADS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn(1)
                return
