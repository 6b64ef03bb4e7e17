"""Where chunks run: this process, local worker processes, or a Dask cluster (`--cluster SPEC`).

- `local` / `local:N`: N worker processes on this machine (all cores by default; 1 runs in this process).
  No service is started, nothing listens.
- `tcp://HOST:PORT` / `tls://HOST:PORT`: an existing Dask scheduler, used only when named. Dask's own
  settings apply (`distributed.comm.tls.*` in the Dask config or `DASK_DISTRIBUTED__COMM__TLS__...`
  variables): ctrl passes no security of its own and warns when a plain `tcp://` address is not loopback,
  since Dask's messages carry pickled code and data and only TLS with client certificates authenticates
  the peers.
- `slurm` / `slurm:N`: a dask-jobqueue `SLURMCluster` configured as dask-jobqueue users already configure
  it (`jobqueue.slurm.*` in ~/.config/dask/jobqueue.yaml), scaled to N jobs (default 1). Its scheduler runs
  in this process and must be reachable from the compute nodes, so it listens where that configuration
  says (`jobqueue.slurm.scheduler-options`), not on loopback; ctrl prints the address.

Every executor answers `submit`, `done_first`, `cancel`, `share` and `close`, and counts `workers`.
Workers must run the same ctrl, stim and numpy versions as this process (a chunk checks, since the
numbers depend on them).
"""

from __future__ import annotations

import concurrent.futures as cf
import ipaddress
import os
import sys
import urllib.parse
from typing import Any, Callable, Protocol

from ctrl.errors import CtrlError


class Executor(Protocol):
    workers: int

    def submit(self, fn: Callable, *args) -> Any: ...
    def done_first(self, futures: list) -> list: ...
    def cancel(self, future) -> None: ...
    def share(self, obj) -> Any: ...
    def close(self) -> None: ...


class _Inline:
    """Runs each chunk when it is submitted, in this process: no pickling, no start-up."""

    workers = 1

    def submit(self, fn, *args):
        future: cf.Future = cf.Future()
        future.set_result(fn(*args))
        return future

    def done_first(self, futures):
        return list(futures)

    def cancel(self, future) -> None:
        pass

    def share(self, obj):
        return obj

    def close(self) -> None:
        pass


class _Processes:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = cf.ProcessPoolExecutor(max_workers=workers)

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def done_first(self, futures):
        return sorted(cf.wait(futures, return_when=cf.FIRST_COMPLETED).done, key=futures.index)

    def cancel(self, future) -> None:
        future.cancel()

    def share(self, obj):
        return obj

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class _Dask:
    def __init__(self, client, cluster=None) -> None:
        self.client, self.cluster = client, cluster
        self.versions = _versions()

    @property
    def workers(self) -> int:
        n = sum(w.get("nthreads", 1) for w in self.client.scheduler_info().get("workers", {}).values())
        return max(1, n)

    def submit(self, fn, *args):
        # pure=False: two chunks never share a key, even if their arguments were equal
        return self.client.submit(_checked, self.versions, fn, *args, pure=False)

    def done_first(self, futures):
        import distributed

        return sorted(distributed.wait(futures, return_when="FIRST_COMPLETED").done, key=futures.index)

    def cancel(self, future) -> None:
        future.cancel()

    def share(self, obj):
        # sent once to every worker instead of with every chunk
        return self.client.scatter(obj, broadcast=True, hash=False)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _versions() -> tuple[str, ...]:
    from ctrl.versions import version

    return tuple(version(p) for p in ("ctrl", "stim", "numpy"))


def _checked(expected: tuple[str, ...], fn, *args):
    here = _versions()
    if here != expected:
        raise RuntimeError(f"worker runs ctrl/stim/numpy {here}, the client {expected}: install the same versions")
    return fn(*args)


def local(workers: int | None = None) -> Executor:
    n = workers or os.cpu_count() or 1
    return _Inline() if n == 1 else _Processes(n)


MAX_LOCAL_WORKERS = 1024


def executor(spec: str | None, *, chunks_hint: int | None = None) -> Executor:
    """The executor SPEC names (module docstring); `chunks_hint`, the number of chunks the run needs at
    most, keeps a one-chunk local run in this process."""
    spec = spec or "local"
    n = _local_count(spec)
    if n is not None:
        if chunks_hint is not None:
            n = max(1, min(n, chunks_hint))
        return local(n)
    if spec.startswith(("tcp://", "tls://")):
        return _remote(spec)
    if spec == "slurm" or spec.startswith("slurm:"):
        return _slurm(_count(spec, "slurm", 1, 10_000))
    raise CtrlError(f"--cluster {spec!r}: expected local, local:N, tcp://HOST:PORT, tls://HOST:PORT, slurm or slurm:N")


def local_workers(spec: str | None, what: str) -> int:
    """N of a `local[:N]` spec, for work that runs on this machine's processes only (`what` says which);
    a CtrlError for any other spec."""
    spec = spec or "local"
    n = _local_count(spec)
    if n is not None:
        return n
    raise CtrlError(f"--cluster {spec}: {what} runs on this machine's processes only (--cluster local or local:N)")


def _local_count(spec: str) -> int | None:
    """N of `local` (every core) or `local:N`; None for a spec that is not local."""
    if spec == "local" or spec.startswith("local:"):
        return _count(spec, "local", os.cpu_count() or 1, MAX_LOCAL_WORKERS)
    return None


def _count(spec: str, name: str, default: int, most: int) -> int:
    _, colon, n = spec.partition(":")
    if not colon:
        return default
    try:
        value = int(n)
    except ValueError:
        value = 0
    if not 1 <= value <= most:
        raise CtrlError(f"--cluster {spec!r}: {name}:N takes N from 1 to {most}")
    return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _remote(address: str) -> Executor:
    parsed = urllib.parse.urlsplit(address)
    if not parsed.hostname or parsed.port is None:
        raise CtrlError(f"--cluster {address!r}: expected tcp://HOST:PORT or tls://HOST:PORT")
    if parsed.scheme == "tcp" and not is_loopback(parsed.hostname):
        print(f"warning: --cluster {address}: plain tcp to another host is neither encrypted nor authenticated; "
              "use tls:// with Dask's TLS settings", file=sys.stderr)  # fmt: skip
    distributed = _import("distributed", "a Dask scheduler")
    try:
        client = distributed.Client(address, timeout="10s")
    except (OSError, TimeoutError) as e:
        raise CtrlError(f"--cluster {address}: cannot reach the Dask scheduler: {e}") from None
    return _Dask(client)


def _slurm(jobs: int) -> Executor:
    distributed = _import("distributed", "--cluster slurm")
    jobqueue = _import("dask_jobqueue", "--cluster slurm")
    try:
        cluster = jobqueue.SLURMCluster()
    except (ValueError, KeyError, TypeError) as e:
        why = " ".join(str(e).split())
        raise CtrlError(f"--cluster slurm: dask-jobqueue's SLURM settings are incomplete ({why}); see "
                        "https://jobqueue.dask.org/en/latest/configuration.html") from None  # fmt: skip
    print(f"slurm: Dask scheduler at {cluster.scheduler_address}, {jobs} job(s) asked", file=sys.stderr)
    cluster.scale(jobs=jobs)
    return _Dask(distributed.Client(cluster), cluster)


class Loopback:
    """A Dask scheduler and `workers` single-threaded workers as processes of this machine, all on
    127.0.0.1 (nothing listens on another interface), for tests and benchmarks; `address` is what
    `executor` takes. Stopped (every process killed) on exit."""

    def __init__(self, workers: int = 2, start_timeout_s: float = 120.0) -> None:
        self.n_workers, self.start_timeout_s = workers, start_timeout_s
        self.address = ""
        self.scheduler = None
        self.workers: list = []

    def __enter__(self) -> Loopback:
        import socket
        import subprocess

        distributed = _import("distributed", "a loopback Dask cluster")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{port}"
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            self.scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                                               "127.0.0.1", "--port", str(port), "--dashboard-address",
                                               "127.0.0.1:0"], **quiet)  # fmt: skip
            for _ in range(self.n_workers):
                self.workers.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker",
                                                      self.address, "--host", "127.0.0.1", "--nthreads", "1",
                                                      "--no-nanny", "--no-dashboard"], **quiet))  # fmt: skip
            with distributed.Client(self.address, timeout=f"{self.start_timeout_s}s") as client:
                client.wait_for_workers(self.n_workers, timeout=self.start_timeout_s)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        import signal
        import subprocess

        procs = [p for p in [self.scheduler, *self.workers] if p is not None]
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _import(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise CtrlError(f"{what} needs {module}: pip install 'ctrl[cluster]'") from None


__all__ = ["Executor", "executor", "local", "local_workers", "is_loopback", "Loopback"]
