"""Shared by the lab tests: `ctrl run` in a child process, watched until its results file holds batches."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ctrl.lab import journal as res_journal
from ctrl.lab import results as res_file

ROOT = Path(__file__).resolve().parents[1]


def run_until_batches(args: list[str], res: Path, batches: int, timeout_s: float = 60) -> subprocess.Popen:
    """Start `ctrl <args>` in a child process and return it, still running, once `res` holds `batches`
    completed batches (it fails the test if the child ends first)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "ctrl.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and proc.poll() is None:
        if batches_in(res) >= batches:
            break
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()
    return proc


def batches_in(res: Path) -> int:
    """Committed batches in a results file a run may be writing: a reader that opens it in the middle of
    a commit can fail (see ctrl.lab.results), or see a batch the commit has not finished, which a kill
    would roll back (the journal is not empty then): either way it looks again later."""
    try:
        r = res_file.read_results(res)
    except Exception:  # noqa: BLE001 - a commit in progress, whatever h5py makes of it
        return 0
    try:
        if res_journal.journal_path(res).stat().st_size:  # a batch in flight: what was read may be undone
            return 0
    except FileNotFoundError:
        pass
    return len(r.batches) if r is not None else 0
