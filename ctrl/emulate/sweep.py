"""Parameter sweeps (device, distance, noise) as `ctrl.collect` tasks: any executor, sinter CSV, resumable.

Each task is one Clifford proxy of one compiled program under one noise model (`emulation_task`). Its
identity (`Task.strong_id`) is content only: the circuit, the decision program, and metadata naming the
device file's sha256, its name, calibration and wiring hashes, the protocol and its distance, and the
noise (canonical spec and its numeric `p` or calibration `scale`). No file path is in it, so the same
device given at another path resumes the same CSV rows instead of adding new ones. Chunks are seeded
from that identity, so a sweep's statistics are the same on one process or a cluster. The CSV is
sinter's: `discards` are aborted attempts, `errors` logical errors of accepted states, abort counts by
check kind in `custom_counts`; a rerun continues where it stopped.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from pathlib import Path

import sinter

from ctrl.collect.run import collect, sinter_stats
from ctrl.collect.stats import binomial_ci, either_fails
from ctrl.collect.task import Task
from ctrl.compile.pipeline import compile_program
from ctrl.device import load_device
from ctrl.emulate.budget import baseline
from ctrl.emulate.run import calibration_scale, emulation_task, noise_for
from ctrl.errors import CtrlError
from ctrl.noise.models import parse_noise

PAPER = [  # (distance, p, logical error per accepted state, acceptance): the paper's data
    # (CN20, npj QI 6, 91, 2020), as docs/protocol.md "Against the paper" lists it
    (3, 1e-4, 3.45e-6, 0.970), (3, 1e-3, 3.40e-4, 0.741), (5, 1e-4, 3.6e-8, 0.811), (5, 1e-3, 4.6e-5, 0.124),
]  # fmt: skip


PROTOCOL = "cn20"
CONFIDENCE = 0.95


def file_sha256(path: str | Path) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


@lru_cache(maxsize=16)
def _compiled(device_path: str, distance: int, sha: str):
    # `sha` is in the key so that a file rewritten between two calls is compiled again, not served stale.
    device = load_device(device_path)
    return device, compile_program(device, distance).program


def noise_params(spec: str) -> dict:
    """Canonical spec, family and numeric parameter of a noise spec, for the metadata and the plot axes:
    uniform:P -> {"noise": "uniform:P", "family": "uniform", "p": P}; calibration[*S] -> {"noise":
    "calibration*S", "family": "calibration", "scale": S}. Canonical, so "uniform:1e-3" and
    "uniform:0.001" are one task."""
    scale = calibration_scale(spec)
    if scale is None:
        if spec.partition(":")[0] != "uniform":
            raise CtrlError(f"unknown noise {spec!r}: expected uniform:P, calibration or calibration*SCALE")
        p = parse_noise(spec).p
        return {"noise": f"uniform:{p!r}", "family": "uniform", "p": p}
    return {"noise": f"calibration*{scale!r}", "family": "calibration", "scale": scale}


def tasks(devices: list[str], distances: list[int], noises: list[str]) -> list[Task]:
    """A task for every (device content, distance, noise, proxy) asked, each once however often it is named."""
    out, ids = [], set()
    noise_meta = [noise_params(n) for n in noises]
    for path in devices:
        resolved = str(Path(path).resolve())
        sha = file_sha256(resolved)
        for d in distances:
            device, program = _compiled(resolved, d, sha)
            for nm in noise_meta:
                model = noise_for(nm["noise"], device, program)
                # |H> on the device's best physical qubit under the same scaled calibration: the figure the
                # protocol must beat (`ctrl.emulate.budget.baseline`); fixed by what is already in the id
                base = {"baseline_error": baseline(device, nm["scale"])["state_error"]} if "scale" in nm else {}
                for proxy in "XZ":
                    meta = {"name": device.name, "device_sha256": sha, "calibration_hash": device.calibration_hash,
                            "wiring_hash": device.wiring_hash, "protocol": PROTOCOL, "d": d, **nm, **base,
                            "proxy": proxy}  # fmt: skip
                    task = emulation_task(device, program, proxy, model, meta)
                    if task.strong_id not in ids:  # a device or noise listed twice (or by two paths)
                        ids.add(task.strong_id)
                        out.append(task)
    return out


def run(task_list: list[Task], csv: Path, max_shots: int, max_errors: int | None, executor=None,
        on_commit=None) -> list[sinter.TaskStats]:
    """Collect into `csv` (appending; rows already there count towards the limits, so a rerun resumes) and
    return the asked tasks' statistics as sinter records (rows of other tasks in the file are left alone)."""
    stats = collect(task_list, max_shots=max_shots, max_errors=max_errors, executor=executor, csv=csv,
                    on_commit=on_commit)  # fmt: skip
    return [sinter_stats(t, s) for t, s in zip(task_list, stats)]


def _finite(x):
    """JSON has no NaN: undefined numbers are None."""
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def summarize(stats: list[sinter.TaskStats], task_list: list[Task]) -> list[dict]:
    """One row per asked (device content, distance, noise), also when it has no shots yet.

    acceptance: accepted/shots of proxy X (the proxy the lab's attempts match), Clopper-Pearson 95%.
    p_L: logical error per accepted state, 1 - (1 - e_X)(1 - e_Z) over the two proxies' components, with
    `either_fails`' interval (>= 95% coverage); None when a proxy accepted nothing."""
    by_id = {s.strong_id: s for s in stats}
    rows: dict[tuple, dict] = {}
    for t in task_list:
        m = t.metadata
        key = (m["name"], m["device_sha256"], m["d"], m["noise"])
        row = rows.setdefault(key, {
            "device": m["name"], "device_sha256": m["device_sha256"], "calibration_hash": m["calibration_hash"],
            "distance": m["d"], "noise": m["noise"], "family": m["family"],
            "p": m.get("p"), "scale": m.get("scale"), "baseline_error": m.get("baseline_error"),
        })  # fmt: skip
        s = by_id.get(t.strong_id)
        shots, discards, errors = (s.shots, s.discards, s.errors) if s else (0, 0, 0)
        row[f"shots_{m['proxy']}"] = shots
        row[f"accepted_{m['proxy']}"] = shots - discards
        row[f"errors_{m['proxy']}"] = errors
    for row in rows.values():
        rate, ci = either_fails([(row["errors_X"], row["accepted_X"]), (row["errors_Z"], row["accepted_Z"])], CONFIDENCE)
        row["p_L"], row["p_L_ci95"] = _finite(rate), ci
        n, k = row["shots_X"], row["accepted_X"]
        row["acceptance"] = k / n if n else None
        row["acceptance_ci95"] = list(binomial_ci(k, n, CONFIDENCE)) if n else None
        b = row["baseline_error"]
        row["beats_baseline"] = (None if b is None or ci is None else True if ci[1] < b else False if ci[0] > b
                                 else None)  # fmt: skip
    return [rows[k] for k in sorted(rows)]


def break_even(rows: list[dict]) -> list[dict]:
    """The sampled break-even per (device, distance) of a calibration-scale sweep: the largest swept scale
    at which the protocol's logical error per accepted state is below the physical baseline (its whole
    95% interval) and the smallest larger one at which it is above; the crossing lies between them. None
    where the sweep does not decide it (a side missing or an interval straddling the baseline)."""
    out = []
    curves = sorted({(r["device"], r["device_sha256"], r["distance"]) for r in rows if r["family"] == "calibration"})
    for dev, sha, d in curves:
        pts = sorted((r["scale"], r["beats_baseline"]) for r in rows
                     if r["family"] == "calibration" and (r["device"], r["device_sha256"], r["distance"]) == (dev, sha, d))  # fmt: skip
        below = [s for s, beats in pts if beats is True]
        lo = max(below) if below else None
        above = [s for s, beats in pts if beats is False and (lo is None or s > lo)]
        hi = min(above) if above else None
        out.append({"device": dev, "device_sha256": sha, "distance": d, "beats_up_to_scale": lo, "loses_from_scale": hi})
    return out


def _x(family: str, m: dict) -> float:
    return m["p"] if family == "uniform" else m["scale"]


XLABEL = {"uniform": "p (uniform circuit noise)", "calibration": "scale of the device's calibrated noise"}
# Wilks: a likelihood ratio of exp(chi2_1(0.95)/2) ~ 6.83 bounds the 95% interval, so sinter's highlight
# (for the discard panels) means the same confidence as the error bars of the logical error panels.
LIKELIHOOD_95 = math.exp(3.841458820694124 / 2)


def plot(rows: list[dict], stats: list[sinter.TaskStats], out: Path):
    """Logical error per accepted state (top) and discard rate (bottom), one panel column per noise family
    present (x: p for uniform:P, the scale for calibration*SCALE), one curve per (device, distance) with
    its 95% interval as error bars; a point with no logical error is drawn as its upper bound (a downward
    triangle), not at an invented floor. The paper's points go on the uniform panels. Written to `out`
    (PNG) and returned as a matplotlib Figure; no pyplot state is touched, so the session's backend stays.

    `rows` is `summarize`'s output, `stats` `run`'s."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    families = [f for f in ("uniform", "calibration") if any(r["family"] == f for r in rows)]
    fig = Figure(figsize=(5.5 * max(1, len(families)), 8.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, max(1, len(families)), squeeze=False)
    curves = sorted({(r["device"], r["device_sha256"], r["distance"]) for r in rows})
    colors = {c: f"C{i % 10}" for i, c in enumerate(curves)}
    markers = "osD^p"
    for col, family in enumerate(families):
        a1, a2 = axes[0][col], axes[1][col]
        for c in curves:
            dev, sha, d = c
            pts = sorted((_x(family, r), r) for r in rows
                         if r["family"] == family and (r["device"], r["device_sha256"], r["distance"]) == c)  # fmt: skip
            pts = [(x, r) for x, r in pts if r["p_L_ci95"] is not None]
            if not pts:
                continue
            color, marker = colors[c], markers[d // 2 % len(markers)]
            label = f"ctrl {dev} d={d}" + (f" [{sha[7:15]}]" if sum(k[0] == dev and k[2] == d for k in curves) > 1 else "")
            seen = [(x, r) for x, r in pts if r["errors_X"] + r["errors_Z"] > 0]
            zero = [(x, r) for x, r in pts if r["errors_X"] + r["errors_Z"] == 0]
            if seen:
                xs = [x for x, _ in seen]
                ys = [r["p_L"] for _, r in seen]
                lo = [r["p_L"] - r["p_L_ci95"][0] for _, r in seen]
                hi = [r["p_L_ci95"][1] - r["p_L"] for _, r in seen]
                a1.errorbar(xs, ys, yerr=[lo, hi], color=color, marker=marker, capsize=3, label=label)
            if zero:
                a1.plot([x for x, _ in zero], [r["p_L_ci95"][1] for _, r in zero], linestyle="none", marker="v",
                        color=color, label=f"{label}: no error seen, 95% upper bound")  # fmt: skip
            base = [(x, r["baseline_error"]) for x, r in pts if r.get("baseline_error") is not None]
            if base:
                a1.plot([x for x, _ in base], [b for _, b in base], linestyle="--", color=color,
                        label=f"{dev}: |H> on its best physical qubit")  # fmt: skip
        # Discards through sinter: proxy X stats of this family, sinter's binomial fit as the band.
        fam = [s for s in stats if s.json_metadata["family"] == family and s.json_metadata["proxy"] == "X"]
        if fam:
            sinter.plot_discard_rate(
                ax=a2, stats=fam, x_func=lambda s, f=family: _x(f, s.json_metadata),
                group_func=lambda s: (s.json_metadata["name"], s.json_metadata["device_sha256"], s.json_metadata["d"]),
                plot_args_func=lambda i, g, _s: {"color": colors.get(g, "C9"), "marker": markers[g[2] // 2 % len(markers)],
                                                 "label": f"ctrl {g[0]} d={g[2]}"},
                highlight_max_likelihood_factor=LIKELIHOOD_95,
            )  # fmt: skip
        if family == "uniform":
            for d, p, pl, acc in PAPER:
                mk = "k*" if d == 3 else "kP"
                a1.plot([p], [pl], mk, ms=10, label=f"paper d={d}" if p == 1e-4 else None)
                a2.plot([p], [1 - acc], mk, ms=10, label=f"paper d={d}" if p == 1e-4 else None)
        a1.set_xscale("log")
        a1.set_yscale("log")
        a2.set_xscale("log")
        a1.set_ylabel("logical error per accepted state (95%)")
        a2.set_ylabel("discard rate (1 - acceptance)")
        a1.set_title(f"{family} noise")
        for a in (a1, a2):
            a.set_xlabel(XLABEL[family])
            a.grid(True, which="both", alpha=0.3)
            if a.get_legend_handles_labels()[0]:
                a.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    fig.savefig(tmp, dpi=120, format="png")
    tmp.replace(out)
    return fig


def read(csv: Path) -> list[sinter.TaskStats]:
    if not csv.exists():
        raise CtrlError(f"{csv}: no such file")
    return sinter.read_stats_from_csv_files(str(csv))


__all__ = ["tasks", "run", "summarize", "break_even", "plot", "read", "noise_params"]
