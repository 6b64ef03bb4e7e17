"""Pulse-diagram plot of a timed program (program.json): one row per qubit, one per QICK channel.

Drive pulses are bars, two-qubit gates are bars on both qubits joined by a line, readout pulses are
filled bars and the readout (ro) channels' acquisition windows are hatched outlines, decision points are
marks in a row of their own with the readout-to-decision latency before them. A legend says which is
which. Output format follows the file suffix (.png, .svg, .pdf).

A program on several boards also has one page per board (`plot_boards`; `ctrl plot -o timeline.png`
writes them as `timeline_<board>.png` beside the whole-device page): the qubits the board drives, every
qubit a two-qubit gate on one of them reaches (labelled with its own board), and the board's channels, at
the same height per row as the whole page, so at d >= 7 each page stays readable where the whole one
is capped at MAX_HEIGHT_IN.

The figure is built on its own canvas (`matplotlib.figure.Figure` + `FigureCanvasAgg`), never through
pyplot: a notebook's backend and open figures are left as they were, and the returned Figure displays
inline. Every kind of mark is one collection for the whole plot (not a `barh` call per operation), so a
d=5 program draws in about the time of a d=3 one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ctrl.compile.timed import read_program_doc
from ctrl.errors import CtrlError
from ctrl.files import atomic_file

COLORS = {"RX": "#1f77b4", "RY": "#4c9be8", "CZ": "#d62728", "ECR": "#d62728", "MEASURE": "#2ca02c"}
OTHER = "#777777"
DECISION = "#9467bd"
US = 1e6
ROW_IN = 0.16  # inches per row: 11.5 pt, room for 8-pt labels
MAX_HEIGHT_IN = 30.0  # at 100 dpi 3000 px: a d=5 program (153 rows) fits at ROW_IN
FORMATS = (".png", ".svg", ".pdf")


def plot_timeline(program_json, out: Path | str | None = None, window_us: tuple[float, float] | None = None):
    """The pulse diagram of a timed program (a program.json path, or the TimedProgram itself) as a
    `matplotlib.figure.Figure`; with `out`, also written there (.png/.svg/.pdf). `window_us`: only the
    operations between those times (microseconds) are drawn, and the title says so."""
    out = _checked_out(out)
    window_us = _checked_window(window_us)
    fig = timeline_figure(_doc(program_json), window_us)
    if out is not None:
        save_figure(fig, out)
    return fig


def plot_boards(program_json, out: Path | str | None = None, window_us: tuple[float, float] | None = None) -> dict:
    """One page per board of the program: {board: Figure}, boards in natural order (one entry for a
    single-board program). With `out` (e.g. timeline.png), page `b` is also written to timeline_b.png."""
    out = _checked_out(out)
    window_us = _checked_window(window_us)
    doc = _doc(program_json)
    pages = {b: timeline_figure(doc, window_us, board=b) for b in boards(doc)}
    if out is not None:
        for b, fig in pages.items():
            save_figure(fig, page_path(out, b))
    return pages


def page_path(out: Path | str, board: str) -> Path:
    """Where `plot_boards(..., out)` writes board `board`'s page: timeline.png -> timeline_<board>.png."""
    out = Path(out)
    return out.with_name(f"{out.stem}_{board}{out.suffix}")


def boards(doc: dict) -> list[str]:
    """The boards whose channels the program uses, in natural order (zcu216_2 before zcu216_10)."""
    return sorted({_board(c) for op in doc["ops"] for c in op["channels"] if _board(c)}, key=_natural)


def _board(channel: str) -> str | None:
    """The board of a QICK channel (`zcu216_1/gen4` -> zcu216_1); None for a resource that is no channel
    (the scheduler's exclusion groups)."""
    return channel.split("/")[0] if "/gen" in channel or "/ro" in channel else None


def _home_boards(doc: dict) -> dict[str, str]:
    """qubit -> the board that drives and reads it (its single-qubit ops' channels); a two-qubit gate's
    channel may sit on a neighbour's board, so those ops do not decide it."""
    home: dict[str, str] = {}
    for single in (True, False):  # a qubit with two-qubit gates only: the board of its first gate
        for op in doc["ops"]:
            where = [b for b in map(_board, op["channels"]) if b]
            if where and (len(op["qubits"]) == 1 or not single):
                for q in op["qubits"]:
                    home.setdefault(q, where[0])
    return home


def _checked_out(out):
    if out is None:
        return None
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise CtrlError(f"{out}: output must end in .png, .svg or .pdf")
    return out


def _checked_window(window_us):
    if window_us is None:
        return None
    lo, hi = (float(x) for x in window_us)
    if not lo < hi:
        raise CtrlError(f"--window-us {lo:g} {hi:g}: the window must start before it ends")
    return lo, hi


def _doc(program_json) -> dict:
    return json.loads(program_json.to_json()) if hasattr(program_json, "to_json") else read_program_doc(program_json)


def save_figure(fig, out: Path) -> None:
    """Write `fig` to `out` atomically (its format from the suffix), without pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # the figure's own canvas: no global backend is chosen or changed
    fmt = out.suffix.lower()[1:]
    with atomic_file(out) as f:
        fig.savefig(f, format=fmt, dpi=100, metadata={"Date": None} if fmt == "svg" else None)


def _natural(c: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", c)]


def timeline_figure(doc: dict, window_us: tuple[float, float] | None = None, board: str | None = None):
    """The Figure of a program.json document (see plot_timeline); with `board`, that board's page (see
    plot_boards)."""
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    qubits = [q["device"] for q in doc["qubits"]]
    roles = {q["device"]: q["role"] for q in doc["qubits"]}
    channels = sorted({c for op in doc["ops"] for c in op["channels"] if "/gen" in c or "/ro" in c}, key=_natural)
    names = {q: f"{q} ({roles[q][0]})" for q in qubits}
    if board is not None:
        home = _home_boards(doc)
        own = {q for q in qubits if home.get(q) == board}
        # a gate's partner on another board (or a gate played from this board's coupler channel) is drawn
        # too, so every two-qubit gate of the page has both ends
        near = own | {q for op in doc["ops"] if len(op["qubits"]) > 1 and (own & set(op["qubits"]) or any(
            c.startswith(board + "/") for c in op["channels"])) for q in op["qubits"]}  # fmt: skip
        qubits = [q for q in qubits if q in own] + [q for q in qubits if q in near - own]  # its own on top
        names.update({q: f"{q} ({roles[q][0]}, {home.get(q, '?')})" for q in qubits if q not in own})
        channels = [c for c in channels if _board(c) == board]
    # row 0: decision points; then the qubits, a gap, the channels (grouped by board by the sort)
    rows = {q: 1 + i for i, q in enumerate(qubits)}
    for j, c in enumerate(channels):
        rows[c] = len(qubits) + 2 + j
    n_rows = len(qubits) + 2 + len(channels)
    lo, hi = window_us if window_us else (0.0, doc["duration_s"] * US)

    bars: dict[tuple[str, str], list] = {}  # (style, color) -> rectangles as 4 vertices
    links = []  # two-qubit gates: a line between the two rows

    def bar(style: str, color: str, y: float, x0: float, w: float, h: float = 0.6) -> None:
        bars.setdefault((style, color), []).append(((x0, y - h / 2), (x0, y + h / 2), (x0 + w, y + h / 2),
                                                    (x0 + w, y - h / 2)))  # fmt: skip

    drawn = 0
    for op in doc["ops"]:
        if op["name"] in ("PREP", "VZ"):
            continue
        x0, w = op["start_s"] * US, max(op["duration_s"] * US, 1e-4)
        if x0 > hi or x0 + w < lo:  # outside the window: not drawn at all (what makes a window fast)
            continue
        ys = [rows[q] for q in op["qubits"] if q in rows]
        if not ys and not any(c in rows for c in op["channels"]):
            continue  # another board's operation
        color = COLORS.get(op["name"], OTHER)
        drawn += 1
        for y in ys:
            bar("qubit", color, y, x0, w)
        if len(ys) == 2:
            links.append(((x0 + w / 2, ys[0]), (x0 + w / 2, ys[1])))
        for c in op["channels"]:
            if c in rows:
                bar("window" if "/ro" in c else "channel", color, rows[c], x0, w)

    decisions = [d for d in doc["decisions"] if lo <= d["time_s"] * US <= hi]
    lat = _latency_us(doc) if doc["decisions"] else None
    for d in decisions:
        x = d["time_s"] * US
        if lat:
            bar("latency", DECISION, 0, x - lat, lat, 0.5)

    height = min(MAX_HEIGHT_IN, 1.8 + ROW_IN * n_rows)
    fig = Figure(figsize=(20, max(4.0, height)))
    ax = fig.add_subplot()
    styles = {
        "qubit": dict(edgecolor="none"),
        "channel": dict(edgecolor="none", alpha=0.55),
        "window": dict(facecolor="none", hatch="////", linewidth=0.8),  # acquisition, not a pulse
        "latency": dict(edgecolor="none", alpha=0.35),
    }
    for (style, color), polys in bars.items():
        kw = dict(styles[style])
        if style == "window":
            kw["edgecolor"] = color
        else:
            kw.setdefault("facecolor", color)
        ax.add_collection(PolyCollection(polys, **kw))
    if links:
        ax.add_collection(LineCollection(links, colors=COLORS["CZ"], linewidths=0.6))
    if decisions:
        # a mark in the decision row and a faint line down through the rows (real-time ones stronger)
        xs = [d["time_s"] * US for d in decisions]
        shade = [DECISION if d["realtime"] else "#a0a0a0" for d in decisions]  # as the legend says
        ax.add_collection(LineCollection([((x, -0.35), (x, 0.35)) for x in xs], colors=shade, linewidths=1.2))
        ax.add_collection(LineCollection([((d["time_s"] * US, 0.5), (d["time_s"] * US, n_rows - 0.5))
                                          for d in decisions],
                                         colors=[DECISION if d["realtime"] else "#c8c8c8" for d in decisions],
                                         linewidths=0.5, alpha=0.5))  # fmt: skip
    splits = [i for i in range(1, len(channels)) if channels[i].split("/")[0] != channels[i - 1].split("/")[0]]
    if splits:  # a rule between boards: 108 channel rows at d=5 read as 8 groups
        first = len(qubits) + 2
        ax.add_collection(LineCollection([((lo, first + i - 0.5), (hi, first + i - 0.5)) for i in splits],
                                         colors="#999999", linewidths=0.6))  # fmt: skip
    labels = ["decisions"] + [names[q] for q in qubits] + [""] + channels
    ax.set_yticks(range(n_rows))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(n_rows - 0.5, -0.7)  # the first row on top
    ax.set_xlim(lo, hi)
    ax.set_xlabel("time (us)")
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)
    title = (f"{doc['device']}  CN20 d={doc['protocol']['distance']}  attempt {doc['duration_s'] * US:.2f} us, "
             f"{len(doc['decisions'])} decision points")  # fmt: skip
    if board is not None:
        title += f"  |  board {board}: {len(qubits)} qubits, {len(channels)} channels"
    if window_us:
        title += f"  |  window {lo:g} to {hi:g} us: {drawn} operations, {len(decisions)} decision points"
    ax.set_title(title, fontsize=11, loc="left")
    legend = [
        Patch(color=COLORS["RX"], label="single-qubit pulse"),
        Patch(color=COLORS["CZ"], label="two-qubit gate"),
        Patch(color=COLORS["MEASURE"], label="readout pulse"),
        Patch(facecolor="none", edgecolor=COLORS["MEASURE"], hatch="////", label="readout window (ro)"),
        Patch(color=DECISION, alpha=0.35, label=f"readout-to-decision latency ({lat:.2f} us)" if lat else "latency"),
        Patch(color=DECISION, label="decision (real time)"),
        Patch(color="#c8c8c8", label="decision (not real time)"),
    ]
    ax.legend(handles=legend, loc="lower left", bbox_to_anchor=(0, 1.0 + 0.45 / fig.get_figheight()), ncol=7,
              fontsize=9, frameon=False, borderaxespad=0)  # fmt: skip
    ax.title.set_y(1.0 + 0.9 / fig.get_figheight())
    fig.subplots_adjust(left=0.07, right=0.99, top=1 - 1.3 / fig.get_figheight(), bottom=0.7 / fig.get_figheight())
    return fig


def _latency_us(doc: dict) -> float:
    ready = {op["key"]: op["ready"] for op in doc["ops"] if "key" in op}
    check_keys = {c["name"]: c["measurements"] for c in doc["checks"]}
    d = doc["decisions"][0]
    last = max(ready[k] for name in d["checks"] for k in check_keys[name])
    return (d["time"] - last) / doc["clock_hz"] * 1e6
