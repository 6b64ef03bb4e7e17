"""Parameter sweeps (device, distance, noise) as sinter tasks: multi-core, CSV statistics, resumable.

Each task is one Clifford proxy of one compiled program under one noise model; its circuit is the
program's Stim lowering and its `json_metadata` says how to rebuild the program. The `ctrl` sampler
(a `sinter.Sampler`) post-selects with the program's own decision points and scores accepted shots
through the ideal round, so sinter's `discards` are aborted attempts and its `errors` are logical errors
of accepted states. Abort counts by check kind go to `custom_counts`. sinter appends to the CSV as it
goes and, given the same CSV back, continues where it stopped.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from functools import lru_cache
from pathlib import Path

import sinter

from ctrl.backends.stim import timed_to_stim
from ctrl.compile.pipeline import compile_program
from ctrl.device import load_device
from ctrl.emulate.run import CHUNK, noise_for, sample_chunk
from ctrl.errors import CtrlError

PAPER = [  # (distance, p, logical error per accepted state, acceptance): the paper's data
    # (CN20, npj QI 6, 91, 2020), as docs/protocol.md "Against the paper" lists it
    (3, 1e-4, 3.45e-6, 0.970), (3, 1e-3, 3.40e-4, 0.741), (5, 1e-4, 3.6e-8, 0.811), (5, 1e-3, 4.6e-5, 0.124),
]  # fmt: skip


@lru_cache(maxsize=16)
def _compiled(device_path: str, distance: int):
    device = load_device(device_path)
    program = compile_program(device, distance).program
    return device, program, program.decisions


def tasks(devices: list[str], distances: list[int], noises: list[str]) -> list[sinter.Task]:
    out = []
    for path in devices:
        for d in distances:
            device, program, _ = _compiled(str(Path(path).resolve()), d)
            for noise in noises:
                model = noise_for(noise, device, program)
                for proxy in "XZ":
                    meta = {"device": str(Path(path).resolve()), "name": device.name, "d": d, "noise": noise,
                            "proxy": proxy, "calibration_hash": device.calibration_hash}  # fmt: skip
                    out.append(sinter.Task(circuit=timed_to_stim(program, proxy, model), json_metadata=meta))
    return out


class CtrlSampler(sinter.Sampler):
    def compiled_sampler_for_task(self, task: sinter.Task) -> sinter.CompiledSampler:
        m = task.json_metadata
        _, program, decisions = _compiled(m["device"], m["d"])
        return _Compiled(task.circuit, decisions, program, m["proxy"])


class _Compiled(sinter.CompiledSampler):
    def __init__(self, circuit, decisions, program, proxy) -> None:
        self.circuit, self.decisions, self.program, self.proxy = circuit, decisions, program, proxy
        self.kinds = [r.kind for r in decisions.rules]

    def sample(self, suggested_shots: int) -> sinter.AnonTaskStats:
        n = max(1, min(int(suggested_shots), CHUNK))
        t0 = time.monotonic()
        seed = int.from_bytes(os.urandom(8), "little") >> 1
        accepted, errors, _, by_rule = sample_chunk(self.circuit, self.decisions, self.program.distance, self.proxy, n, seed)
        counts = Counter()
        for kind, k in zip(self.kinds, by_rule):
            if k:
                counts[f"abort:{kind}"] += int(k)
        return sinter.AnonTaskStats(
            shots=n, errors=errors, discards=n - accepted, seconds=time.monotonic() - t0, custom_counts=counts
        )


def run(task_list: list[sinter.Task], csv: Path, max_shots: int, max_errors: int, workers: int | None = None):
    """Collect into `csv` (appending; existing rows count towards the limits, so a rerun resumes)."""
    if max_shots < 1:
        raise CtrlError(f"max shots must be positive, got {max_shots}")
    csv.parent.mkdir(parents=True, exist_ok=True)
    return sinter.collect(
        num_workers=workers or os.cpu_count() or 1,
        tasks=task_list,
        decoders=["ctrl"],
        custom_decoders={"ctrl": CtrlSampler()},
        max_shots=max_shots,
        max_errors=max_errors,
        save_resume_filepath=str(csv),
        print_progress=sys.stderr.isatty(),
    )


def summarize(stats: list[sinter.TaskStats]) -> list[dict]:
    """One row per (device, distance, noise): acceptance (proxy X) and logical error (Z + X type)."""
    rows: dict[tuple, dict] = {}
    for s in stats:
        m = s.json_metadata
        key = (m["name"], m["d"], m["noise"])
        row = rows.setdefault(key, {"device": m["name"], "distance": m["d"], "noise": m["noise"], "p_L": 0.0})
        kept = s.shots - s.discards
        row["p_L"] += s.errors / kept if kept else 0.0
        row[f"shots_{m['proxy']}"] = s.shots
        row[f"errors_{m['proxy']}"] = s.errors
        if m["proxy"] == "X":
            row["acceptance"] = kept / s.shots if s.shots else 0.0
    return [rows[k] for k in sorted(rows)]


def plot(rows: list[dict], out: Path) -> None:
    """Logical error per accepted state and acceptance against p (uniform:P rows), with the paper's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    groups: dict[tuple, list] = {}
    for r in rows:
        if r["noise"].startswith("uniform:"):
            groups.setdefault((r["device"], r["distance"]), []).append((float(r["noise"].split(":")[1]), r))
    for (dev, d), pts in sorted(groups.items()):
        pts.sort()
        ps = [p for p, _ in pts]
        a1.loglog(ps, [max(r["p_L"], 1e-12) for _, r in pts], "o-", label=f"ctrl {dev} d={d}")
        a2.semilogx(ps, [r["acceptance"] for _, r in pts], "o-", label=f"ctrl {dev} d={d}")
    for d, p, pl, acc in PAPER:
        a1.loglog([p], [pl], "k*" if d == 3 else "kP", ms=10, label=f"paper d={d}" if p == 1e-4 else None)
        a2.semilogx([p], [acc], "k*" if d == 3 else "kP", ms=10, label=f"paper d={d}" if p == 1e-4 else None)
    a1.set_xlabel("p (uniform circuit noise)")
    a1.set_ylabel("logical error per accepted state")
    a2.set_xlabel("p (uniform circuit noise)")
    a2.set_ylabel("acceptance")
    for a in (a1, a2):
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(out)


def read(csv: Path) -> list[sinter.TaskStats]:
    if not csv.exists():
        raise CtrlError(f"{csv}: no such file")
    return sinter.read_stats_from_csv_files(str(csv))


__all__ = ["tasks", "run", "summarize", "plot", "read", "CtrlSampler"]
