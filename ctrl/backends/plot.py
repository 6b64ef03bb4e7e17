"""Pulse-diagram plot of a timed program (program.json): one row per qubit, one per channel.

Drive pulses are thin bars, two-qubit gates are bars on both qubits joined by a line, readouts show
the pulse with the integration window, decision points are vertical lines with the readout-to-decision
latency shaded before them. Output format follows the file suffix (.png, .svg, .pdf).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ctrl.compile.timed import read_program_doc
from ctrl.errors import CtrlError
from ctrl.files import atomic_file

COLORS = {"RX": "#1f77b4", "RY": "#4c9be8", "CZ": "#d62728", "ECR": "#d62728", "MEASURE": "#2ca02c"}


def plot_timeline(program_json, out: Path, window_us: tuple[float, float] | None = None) -> None:
    """Draw a timed program (a program.json path, or the TimedProgram itself) into `out` (.png/.svg/.pdf)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doc = json.loads(program_json.to_json()) if hasattr(program_json, "to_json") else read_program_doc(program_json)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise CtrlError(f"{out}: output must end in .png, .svg or .pdf")
    qubits = [q["device"] for q in doc["qubits"]]
    roles = {q["device"]: q["role"] for q in doc["qubits"]}
    channels = sorted(
        {c for op in doc["ops"] for c in op["channels"] if "/gen" in c or "/ro" in c},
        key=lambda c: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", c)],
    )
    rows = {q: i for i, q in enumerate(qubits)}
    for j, c in enumerate(channels):
        rows[c] = len(qubits) + 1 + j
    us = 1e6
    fig_h = max(4.0, 0.28 * (len(rows) + 2))
    fig, ax = plt.subplots(figsize=(16, fig_h))
    for op in doc["ops"]:
        if op["name"] in ("PREP", "VZ"):
            continue
        x0, w = op["start_s"] * us, max(op["duration_s"] * us, 1e-4)
        color = COLORS.get(op["name"], "#777777")
        ys = [rows[q] for q in op["qubits"]]
        for y in ys:
            ax.barh(y, w, left=x0, height=0.6, color=color, edgecolor="none")
        if len(ys) == 2:
            ax.plot([x0 + w / 2] * 2, ys, color=color, lw=0.6)
        for c in op["channels"]:
            if c in rows:
                ax.barh(rows[c], w, left=x0, height=0.6, color=color, alpha=0.6, edgecolor="none")
    lat = None
    for d in doc["decisions"]:
        x = d["time_s"] * us
        ax.axvline(x, color="#9467bd" if d["realtime"] else "#bbbbbb", lw=0.6, ls="--")
        lat = lat if lat is not None else _latency_us(doc)
        if lat:
            ax.axvspan(x - lat, x, color="#9467bd", alpha=0.06)
    labels = [f"{q} ({roles[q][0]})" for q in qubits] + [""] + channels
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time (us)")
    ax.set_title(
        f"{doc['device']}  CN20 d={doc['protocol']['distance']}  attempt {doc['duration_s'] * us:.2f} us  "
        f"({len(doc['decisions'])} decision points; blue pulses, red two-qubit gates, green readouts)",
        fontsize=9,
    )
    if window_us:
        ax.set_xlim(*window_us)
    fig.tight_layout()
    with atomic_file(out) as f:
        fig.savefig(f, format=out.suffix.lower()[1:], dpi=130,
                    metadata={"Date": None} if out.suffix.lower() == ".svg" else None)  # fmt: skip
    plt.close(fig)


def _latency_us(doc: dict) -> float:
    ready = {op["key"]: op["ready"] for op in doc["ops"] if "key" in op}
    check_keys = {c["name"]: c["measurements"] for c in doc["checks"]}
    d = doc["decisions"][0]
    last = max(ready[k] for name in d["checks"] for k in check_keys[name])
    return (d["time"] - last) / doc["clock_hz"] * 1e6
