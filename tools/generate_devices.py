"""Writes the shipped device files. Run from the repository root: `python tools/generate_devices.py`.

The devices are illustrative, not measurements of one chip: every number is drawn, with a fixed seed, from
a distribution centred on published figures for that kind of device (the header of each file says which),
then rounded to what a lab would record. Only `random.random()` is used (its sequence is the one Python
promises to keep), so the same code writes the same bytes. tests/device checks that it still does and
that every file validates; edit this script, not the YAML, to change a shipped device.
"""

from __future__ import annotations

import math
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "device_configs"
sys.path.insert(0, str(ROOT))

import networkx as nx  # noqa: E402

from ctrl.device.model import SCHEMA_VERSION  # noqa: E402
from ctrl.device.units import yaml_float  # noqa: E402
from ctrl.protocol.cn20 import cn20_protocol, variants  # noqa: E402

FIRMWARE = "firmware/zcu216_tprocv2_rev21_mux_pfb_fw20240928.json"
READOUT_LO_HZ = 6.6e9
TAU = 2 * math.pi

# Gens and readouts of the ZCU216 rev21 firmware (see firmware/README.md)
FULL_SPEED = (0, 1, 2, 3)  # axis_signal_gen_v6, 9584.64 MS/s, fs/2 = 4.79232 GHz
MUX_GEN = 4  # axis_sg_mixmux8_v1: 8 constant tones, DAC 10
INT4 = tuple(range(5, 16))  # axis_sg_int4_v2, 6881.28 MS/s
DYN_RO = (0, 1)  # axis_dyn_readout_v1 on ADC 20 and 22: tProc-controlled frequency, shareable
PFB_RO = (2, 3, 4, 5, 6, 7)  # PFB outputs 0..5 on ADC 21 that reach the tProc (tproc_ch 2..7)
PFB_RO_NO_TPROC = (8, 9)  # PFB outputs 6, 7: tproc_ch -1, end-of-shot reads only


# ------------------------------------------------------------------------------------------ randomness


class Draw:
    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def u(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.r.random()

    def normal(self) -> float:
        # Box-Muller on random() alone: random.gauss is not promised to stay the same across versions
        u1 = 1.0 - self.r.random()
        return math.sqrt(-2 * math.log(u1)) * math.cos(TAU * self.r.random())

    def lognormal(self, median: float, spread: float) -> float:
        return median * math.exp(spread * self.normal())

    def pick(self, seq):
        return seq[int(self.r.random() * len(seq))]


def sig(x: float, digits: int) -> float:
    """Round to `digits` significant digits (what a lab would write down)."""
    return float(f"{x:.{digits}g}")


# ------------------------------------------------------------------------------------------ YAML writer

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def scalar(key: str, v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return yaml_float(v, 7)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _YAML_WORDS:
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def flow(key: str, v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {flow(k, x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(flow(key, x) for x in v) + "]"
    return scalar(key, v)


def block(obj: dict, indent: int, out: list[str], width: int = 118) -> None:
    pad = " " * indent
    for k, v in obj.items():
        if isinstance(v, dict) and v:
            f = flow(k, v)
            if len(pad) + len(k) + 2 + len(f) <= width:
                out.append(f"{pad}{k}: {f}")
            else:
                out.append(f"{pad}{k}:")
                block(v, indent + 2, out, width)
        elif isinstance(v, (list, tuple)) and v and isinstance(v[0], dict):
            out.append(f"{pad}{k}:")
            for item in v:
                f = flow(k, item)
                if len(pad) + 4 + len(f) <= width and len(item) <= 3:
                    out.append(f"{pad}  - {f}")
                else:
                    sub: list[str] = []
                    block(item, indent + 4, sub, width)
                    sub[0] = f"{pad}  - " + sub[0].lstrip()
                    out.extend(sub)
        else:
            out.append(f"{pad}{k}: {flow(k, v)}")


# ------------------------------------------------------------------------------------------ physics


def frequencies(g: nx.Graph, d: Draw, groups: dict, spread_hz: float, alpha_hz: float, guard_hz: float,
                avoid=()) -> dict:
    """Idle frequencies with no neighbour, next-neighbour or 01-12 collision within `guard_hz`.

    groups: node -> base frequency; nodes sharing a base are spread by a distance-2 colouring, then
    jittered; redrawn (deterministically) until clean. `avoid`: bands (lo, hi) no qubit may sit in.
    """
    square = nx.power(g, 2)
    offset = {}
    for b in sorted(set(groups.values())):
        members = [n for n in g if groups[n] == b]
        colour = nx.coloring.greedy_color(square.subgraph(members), strategy="largest_first")
        k = max(colour.values()) + 1
        offset.update({n: colour[n] - (k - 1) / 2 for n in members})
    for _ in range(10000):
        f = {n: sig(groups[n] + (offset[n] + d.u(-0.2, 0.2)) * spread_hz, 6) for n in g}
        ok = all(not (lo <= x <= hi) for x in f.values() for lo, hi in avoid)
        for a, b in g.edges:
            ok &= abs(f[a] - f[b]) >= guard_hz
            # each qubit's anharmonicity is later drawn within +-10 MHz of alpha_hz: keep that much margin
            ok &= min(abs(f[a] - (f[b] + alpha_hz)), abs(f[b] - (f[a] + alpha_hz))) >= guard_hz + 10e6
        for n in g:
            ns = list(g[n])
            ok &= all(abs(f[x] - f[y]) >= guard_hz for i, x in enumerate(ns) for y in ns[i + 1:])
        if ok:
            return f
    raise RuntimeError("no collision-free frequency allocation found")


def drag_gate(d: Draw, duration: float, sigma: float, amp: float, err_median: float, beta: float) -> dict:
    return {
        "duration_s": duration,
        "error": sig(d.lognormal(err_median, 0.45), 2),
        "pulse": {"shape": "drag", "amplitude": sig(amp * d.u(0.95, 1.05), 4), "sigma_s": sigma,
                  "drag_coefficient": beta},
    }


def qubit(d: Draw, name: str, pos, f: float, p: dict, ro_freq: float, bad: str | None = None) -> dict:
    """One qubit's calibration; `p` holds the device-type medians."""
    t1 = d.lognormal(p["t1"], 0.3)
    t2e = min(1.9 * t1, d.lognormal(p["t2e"], 0.3))
    t2r = t2e * d.u(0.45, 0.9)
    x90_amp = d.u(0.08, 0.16)
    beta = sig(d.u(0.3, 1.2), 3)
    q = {"name": name, "position": [float(pos[0]), float(pos[1])]}
    if bad:
        q["usable"] = False
        q["note"] = bad
    ro_err = p["readout_error"]
    q.update({
        "frequency_hz": f,
        "anharmonicity_hz": sig(p["alpha"] + d.u(-10e6, 10e6), 4),
        "t1_s": sig(t1, 3),
        "t2_ramsey_s": sig(t2r, 3),
        "t2_echo_s": sig(t2e, 3),
        "x90": drag_gate(d, p["x90"], p["sigma"], x90_amp, p["x90_error"], beta),
        "x180": drag_gate(d, p["x90"], p["sigma"], 2 * x90_amp, 1.8 * p["x90_error"], beta),
        "readout": {
            "frequency_hz": ro_freq,
            "pulse": {"shape": "const", "amplitude": sig(d.u(0.1, 0.35), 3)},
            "pulse_duration_s": p["ro_pulse"],
            "window_s": p["ro_window"],
            "time_of_flight_s": sig(d.u(0.48e-6, 0.52e-6), 3),
            "iq_rotation_rad": sig(d.u(-math.pi, math.pi), 4),
            "threshold": sig(d.u(5, 25), 4),
            "error_0to1": sig(d.lognormal(0.4 * ro_err, 0.4), 2),
            "error_1to0": sig(d.lognormal(ro_err, 0.4), 2),
            "reset": {"method": p["reset"], "duration_s": p["reset_s"]},
        },
    })
    if bad:  # what made it bad shows in its numbers
        q["t1_s"] = sig(d.u(6e-6, 12e-6), 3)
        q["t2_echo_s"] = sig(q["t1_s"] * d.u(0.6, 1.2), 3)
        q["t2_ramsey_s"] = sig(q["t2_echo_s"] * 0.5, 3)
        q["readout"]["error_1to0"] = sig(d.u(0.2, 0.4), 2)
    return q


def readout_freqs(d: Draw, names, start_hz: float, step_hz: float) -> dict:
    return {n: sig(start_hz + i * step_hz + d.u(-4e6, 4e6), 6) for i, n in enumerate(names)}


def phase_corrections(d: Draw, pair) -> dict:
    return {n: sig(d.u(-math.pi, math.pi), 4) for n in pair}


def ecr(d: Draw, pair, control: str, p: dict, bad: str | None = None) -> dict:
    duration = sig(d.u(*p["ecr_range"]), 3)
    segment = sig((duration - p["x90"] - 2 * 4e-9) / 2, 4)
    c = {"qubits": list(pair)}
    if bad:
        c.update({"usable": False, "note": bad})
    c.update({
        "gate": "ecr",
        "duration_s": duration,
        "error": 1.0 if bad else sig(d.lognormal(p["ecr_error"], 0.4), 2),
        "control": control,
        "cr_pulse": {"shape": "flat_top", "amplitude": sig(d.u(0.2, 0.6), 3), "rise_s": 2.8e-8},
        "cr_segment_s": segment,
        "cr_phase_rad": sig(d.u(-math.pi, math.pi), 4),
        "cancellation_pulse": {"shape": "flat_top", "amplitude": sig(d.u(0.02, 0.1), 3), "rise_s": 2.8e-8},
        "cancellation_phase_rad": sig(d.u(-math.pi, math.pi), 4),
        "phase_corrections_rad": phase_corrections(d, pair),
    })
    return c


def cz(d: Draw, pair, element: str, p: dict, bad: str | None = None) -> dict:
    c = {"qubits": list(pair)}
    if bad:
        c.update({"usable": False, "note": bad})
    pulse = ({"shape": "net_zero", "amplitude": sig(d.u(0.25, 0.6), 3), "rise_s": 2.0e-9}
             if p["cz_shape"] == "net_zero" else
             {"shape": "flat_top", "amplitude": sig(d.u(0.15, 0.5), 3), "rise_s": 1.0e-8})
    c.update({
        "gate": "cz",
        "duration_s": p["cz"],
        "error": sig(d.lognormal(p["cz_error"], 0.4), 2) if not bad else sig(d.u(0.05, 0.12), 2),
        "leakage": sig(d.lognormal(p["cz_leakage"], 0.4), 2),
        "conditional_phase_rad": sig(math.pi + d.u(-0.03, 0.03), 5),
        "phase_corrections_rad": phase_corrections(d, pair),
        "flux_pulse": {"element": element, "pulse": pulse},
    })
    return c


def channel(board: str, gen: int, **kw) -> dict:
    return {"board": board, "gen": gen, **kw}


def readout_channel(board: str, gen: int, ro: int, tone: int | None = None, feedback: bool = True) -> dict:
    c = {"board": board, "gen": gen}
    if tone is not None:
        c["tone"] = tone
    c["ro"] = ro
    c["lo_frequency_hz"] = READOUT_LO_HZ
    if not feedback:
        c["feedback"] = False
    return c


def controller(n_boards: int) -> dict:
    return {
        "readout_to_decision_latency_s": 4.0e-7,
        "inter_board_latency_s": None,
        "alignment": {"reference": "shared" if n_boards > 1 else "independent",
                      "board_skew_s": 2.0e-9 if n_boards > 1 else 0.0},
    }


def document(name: str, description: str, boards: list[str], wiring_q, wiring_c, cal_q, cal_c, excl, date) -> dict:
    wiring = {
        "boards": [{"name": b, "firmware": FIRMWARE} for b in boards],
        "controller": controller(len(boards)),
        "qubits": wiring_q,
    }
    if wiring_c:
        wiring["couplers"] = wiring_c
    cal = {"calibrated_at": date, "qubits": cal_q, "couplers": cal_c}
    if excl:
        cal["crosstalk_exclusions"] = excl
    return {"schema_version": SCHEMA_VERSION, "name": name, "description": description, "wiring": wiring, "calibration": cal}


# Fixed-frequency transmons with cross resonance (IBM Falcon/Eagle class, 2021-2023 backend properties):
# T1 ~ 100-150 us, T2E ~ 100 us, sx 35.6 ns with error ~2.5e-4, ECR 300-650 ns with error ~7e-3,
# anharmonicity ~ -335 MHz, readout error ~1-2 %.
FIXED_CR = dict(t1=120e-6, t2e=100e-6, alpha=-335e6, x90=3.56e-8, sigma=8.9e-9, x90_error=2.5e-4,
                readout_error=1.5e-2, ro_pulse=1.5e-6, ro_window=1.4e-6, reset="active", reset_s=2.4e-6,
                ecr_range=(3.0e-7, 6.5e-7), ecr_error=7e-3)

# Flux-tunable transmons, fixed coupling, net-zero CZ (DiCarlo-lab Surface-17 class, 2021-2023 papers):
# T1 ~ 40 us, T2E ~ 50 us, 20 ns single-qubit gates at ~1e-3, 60 ns CZ at ~1 % with ~0.15 % leakage,
# readout 420-500 ns at ~1-2 %.
TUNABLE_NZ = dict(t1=40e-6, t2e=50e-6, alpha=-310e6, x90=2.0e-8, sigma=5.0e-9, x90_error=1.0e-3,
                  readout_error=1.5e-2, ro_pulse=5.0e-7, ro_window=4.2e-7, reset="active", reset_s=1.2e-6,
                  cz=6.0e-8, cz_error=1.0e-2, cz_leakage=1.5e-3, cz_shape="net_zero")

# Fixed-frequency transmons with tunable couplers and CZ (IBM Heron class, 2024 published medians):
# T1 ~ 150 us, T2E ~ 120 us, 2q error ~ 4e-3 at ~ 80 ns, sx ~2.5e-4, readout ~1.5 %.
TUNABLE_COUPLER = dict(t1=150e-6, t2e=120e-6, alpha=-320e6, x90=3.2e-8, sigma=8.0e-9, x90_error=2.5e-4,
                       readout_error=1.5e-2, ro_pulse=1.2e-6, ro_window=1.0e-6, reset="active", reset_s=2.0e-6,
                       cz=8.4e-8, cz_error=4.0e-3, cz_leakage=5.0e-4, cz_shape="flat_top")

SG_V6_NYQUIST_BAND = (4.74e9, 4.85e9)  # around fs/2 of the full-speed generators


# ------------------------------------------------------------------------------------------ devices


PLANAR16_SHARED = ((0, 10), (1, 2), (4, 6))


def planar16() -> tuple[str, dict]:
    c = cn20_protocol(3)
    d = Draw(16)
    g = nx.Graph()
    g.add_nodes_from(q.index for q in c.qubits)
    g.add_edges_from(c.couplers)
    roles = {q.index: q.role for q in c.qubits}
    f = frequencies(g, d, {n: 5.05e9 for n in g}, 55e6, FIXED_CR["alpha"], 30e6, avoid=(SG_V6_NYQUIST_BAND,))
    name = {n: f"Q{n}" for n in g}
    ancillas = [n for n in sorted(g) if roles[n] == "ancilla"]
    data = [n for n in sorted(g) if roles[n] == "data"]
    # Feedline A (PFB): 6 ancillas on the tProc-connected outputs, 2 data qubits on the outputs that are not.
    feed_a = ancillas[:6] + data[:2]
    feed_b = ancillas[6:7] + data[2:5]
    feed_c = ancillas[7:] + data[5:]
    ro_f = {**readout_freqs(d, feed_a, 7.0e9, 45e6), **readout_freqs(d, feed_b, 7.02e9, 60e6),
            **readout_freqs(d, feed_c, 7.04e9, 60e6)}
    board = "zcu216"
    # 13 generators for 16 qubits: three pairs time-share one, chosen among the pairs that the protocol
    # keeps busy together least often (a shared generator plays one pulse at a time).
    drive = {}
    gens = iter((2, 3) + INT4)
    for pair in PLANAR16_SHARED:
        gen = next(gens)
        for n in pair:
            drive[n] = gen
    for n in sorted(g):
        if n not in drive:
            drive[n] = next(gens)
    wq = []
    for n in sorted(g):
        if n in feed_a:
            k = feed_a.index(n)
            ro = readout_channel(board, MUX_GEN, (PFB_RO + PFB_RO_NO_TPROC)[k], tone=k, feedback=k < 6)
        elif n in feed_b:
            ro = readout_channel(board, 0, DYN_RO[0])
        else:
            ro = readout_channel(board, 1, DYN_RO[1])
        wq.append({"name": name[n], "drive": channel(board, drive[n]), "readout": ro})
    cq = [qubit(d, name[n], c.qubits[n].coords, f[n], FIXED_CR, ro_f[n]) for n in sorted(g)]
    cc = []
    for a, b in c.couplers:
        # the ancilla drives the CR tone: data lines are time-shared, so keep them quiet
        if roles[a] != roles[b]:
            control = a if roles[a] == "ancilla" else b
        else:
            control = a if f[a] > f[b] else b
        cc.append(ecr(d, (name[a], name[b]), name[control], FIXED_CR))
    excl = [{"couplers": [["Q8", "Q9"], ["Q5", "Q10"]], "note": "spectator ZZ on Q9-Q10 during simultaneous ECR"},
            {"couplers": [["Q11", "Q13"], ["Q14", "Q15"]], "note": "CR tone of Q13 leaks onto Q14's line"}]
    assert all(tuple(sorted(int(q[1:]) for q in pair)) in set(c.couplers) for e in excl for pair in e["couplers"])
    shared_text = ", ".join(f"Q{a}+Q{b}" for a, b in PLANAR16_SHARED)
    header = f"""
planar16_d3: the default device. 16 fixed-frequency transmons coupled exactly as the d=3 CN20 protocol
(ctrl.protocol.cn20.cn20_protocol(3)): qubit Qi is protocol qubit i, positions are the protocol's layout
coordinates, the {len(c.couplers)} couplers are its couplers (the shared-register layout: an ancilla tree, every ancilla of
degree 3). Native two-qubit gate: echoed cross resonance (no flux
lines, which is what lets one board drive it).

Numbers: illustrative, drawn (seed 16, tools/generate_devices.py) around published figures for
fixed-frequency cross-resonance transmons (IBM Falcon/Eagle backend properties 2021-2023): T1 ~120 us,
T2E ~100 us, sx 35.6 ns at ~2.5e-4, ECR 300-650 ns at ~7e-3, anharmonicity ~-335 MHz, readout ~1.5 %.
Frequencies 4.9-5.2 GHz, allocated so no coupled or next-nearest pair is within 30 MHz and no 0-1 line
is within 30 MHz of a neighbour's 1-2 line. Field conventions follow QICK labs' calibration files
(slab_qick_calib: trig_offset -> time_of_flight_s, phase -> iq_rotation_rad, threshold in accumulated I),
converted to SI.

Wiring: one ZCU216, firmware {FIRMWARE}
(tProc v2 rev 21: 4 full-speed gens, 1 eight-tone mux gen, 11 interpolated gens; 2 tProc-controlled
readouts, 8 PFB readouts of which 6 reach the tProc). Readout through an external mixer (LO {READOUT_LO_HZ / 1e9:g} GHz) on three feedlines:
  A: mux gen 4 tones 0-7 -> PFB readouts 2-9: ancillas Q7-Q12 (real-time), data Q0, Q1 on readouts 8, 9,
     which do not reach the tProc (feedback: false, end-of-shot only);
  B: gen 0 -> dynamic readout 0 (ADC 20): Q13, Q2, Q3, Q4, read one after another;
  C: gen 1 -> dynamic readout 1 (ADC 22): Q14, Q15, Q5, Q6, read one after another.
Drive: 13 generators left for 16 qubits. Pairs {shared_text} time-share one generator each (a
shared generator plays one pulse at a time; these pairs are busy together least often); every other qubit
has its own.
Controller: 0.4 us from the end of a readout window to the branch (docs/qick.md: wait_auto(0.1) + delay_auto(0.3)).
"""
    doc = document("planar16_d3", "16-qubit planar device for the d=3 CN20 protocol, ECR gates, one ZCU216",
                   [board], wq, [], cq, cc, excl, "2025-06-02T08:30:00Z")
    return header, doc


def _d5_with_spares(n_qubits: int = 55):
    """The d=5 protocol graph (the stored shared-register design, which the compiler prefers at d=5) plus
    spare qubits beside its lowest-degree qubits, up to `n_qubits`, and a few spare couplers."""
    c = cn20_protocol(5, dict(variants(5))["tree4"])
    g = nx.Graph()
    for q in c.qubits:
        g.add_node(q.index, pos=q.coords, role=q.role)
    g.add_edges_from(c.couplers)
    cx = sum(q.coords[0] for q in c.qubits) / len(c.qubits)
    cy = sum(q.coords[1] for q in c.qubits) / len(c.qubits)
    nxt = len(c.qubits)
    while nxt < n_qubits:  # each spare beside the outermost of the least-coupled protocol qubits
        n = min((m for m in g if g.nodes[m]["role"] != "spare" and g.degree(m) < 4),
                key=lambda m: (g.degree(m), -math.dist(g.nodes[m]["pos"], (cx, cy)), m))
        x, y = g.nodes[n]["pos"]
        dx, dy = x - cx, y - cy
        r = math.hypot(dx, dy) or 1.0
        turn = 0.35 * (g.degree(n) - 1)  # a second spare on one qubit goes beside the first, not on it
        ux, uy = dx / r, dy / r
        ux, uy = ux * math.cos(turn) - uy * math.sin(turn), ux * math.sin(turn) + uy * math.cos(turn)
        g.add_node(nxt, pos=(round(x + 0.6 * ux, 6), round(y + 0.6 * uy, 6)), role="spare")
        g.add_edge(n, nxt)
        nxt += 1
    # spare couplers between close pairs that the protocol leaves uncoupled, keeping degree <= 4
    pos = nx.get_node_attributes(g, "pos")
    extra = []
    for a in sorted(g):
        for b in sorted(g):
            if a < b and not g.has_edge(a, b) and math.dist(pos[a], pos[b]) < 0.75:
                if g.degree(a) < 4 and g.degree(b) < 4:
                    extra.append((a, b))
    for a, b in extra[:6]:
        g.add_edge(a, b)
    return g, len(c.qubits)


def grid55() -> tuple[str, dict]:
    g, n_protocol = _d5_with_spares()
    d = Draw(55)
    colour = nx.coloring.greedy_color(g, strategy="largest_first")
    base = {0: 6.4e9, 1: 5.7e9, 2: 4.9e9, 3: 4.2e9}
    f = frequencies(g, d, {n: base[colour[n] % 4] for n in g}, 45e6, TUNABLE_NZ["alpha"], 30e6)
    name = {n: f"Q{n}" for n in g}
    order = sorted(g, key=lambda n: (round(g.nodes[n]["pos"][1] * 2), g.nodes[n]["pos"][0]))
    boards = [f"zcu216_{k}" for k in range((len(order) + 6) // 7)]
    board_of, wq, ro_f = {}, {}, {}
    flux_gens = (0, 1, 2, 3, 12, 13, 14)
    for k, b in enumerate(boards):
        group = order[7 * k: 7 * k + 7]
        ro_f.update(readout_freqs(d, group, 7.0e9, 50e6))
        for i, n in enumerate(group):
            board_of[n] = b
            ro = (readout_channel(b, MUX_GEN, PFB_RO[i], tone=i) if i < 6 else readout_channel(b, 15, DYN_RO[0]))
            wq[n] = {"name": name[n], "drive": channel(b, INT4[i]), "flux": channel(b, flux_gens[i]), "readout": ro}
    cq = [qubit(d, name[n], g.nodes[n]["pos"], f[n], TUNABLE_NZ, ro_f[n]) for n in sorted(g)]
    cc = []
    for a, b in sorted(tuple(sorted(e)) for e in g.edges):
        hi = a if f[a] > f[b] else b  # the higher qubit is fluxed down to the |11>-|02> avoided crossing
        cc.append(cz(d, (name[a], name[b]), name[hi], TUNABLE_NZ))
    header = f"""
grid55_d5: 55 flux-tunable transmons for the d=5 CN20 protocol. Qubits Q0-Q{n_protocol - 1} are the protocol's
{n_protocol} qubits (the shared-register design of ctrl/protocol/designs/d5_degree4.json, the "tree4" family of
ctrl.protocol.cn20.variants(5), same indices, layout coordinates as positions) with its couplers; Q{n_protocol}-Q54
are spares beside its least-coupled qubits (degree <= 4 everywhere), and up to 6 spare couplers join close
pairs the protocol leaves uncoupled. {len(g.edges)} couplers in all.

Native gate: CZ by a net-zero flux pulse on the higher-frequency qubit of the pair (fixed capacitive
coupling, as in the DiCarlo-lab Surface-17 devices). Numbers: illustrative, drawn (seed 55) around published
figures for that class: T1 ~40 us, T2E ~50 us, 20 ns DRAG single-qubit gates at ~1e-3, 60 ns CZ at ~1 %
with ~0.15 % leakage, readout ~0.5 us at ~1.5 %. Idle frequencies in bands near 6.4, 5.7, 4.9 (and
4.2) GHz by graph colouring, no coupled or next-nearest pair within 30 MHz.

Wiring: {len(boards)} ZCU216 boards with firmware {FIRMWARE}, 7 qubits per board in
layout order (board k holds the k-th group of 7 by row). Per board: drive gens 5-11, flux gens 0-3 and
12-14 (one per qubit), readout by mux gen 4 tones 0-5 -> PFB readouts 2-7 and gen 15 -> dynamic readout 0
for the seventh qubit; external readout LO {READOUT_LO_HZ / 1e9:g} GHz. Boards share a reference clock and
start trigger (assumed residual skew 2 ns). inter_board_latency_s is null: this firmware has neither qnet nor
qcom, so boards cannot share measurement results in real time.
"""
    doc = document("grid55_d5", "55-qubit flux-tunable device for the d=5 CN20 protocol, CZ gates, 8 ZCU216 boards",
                   boards, [wq[n] for n in sorted(g)], [], cq, cc, [], "2025-06-02T08:30:00Z")
    return header, doc


def heavy_hex_65():
    """A 65-qubit heavy-hex lattice of the IBM Hummingbird shape: five rows of 10/11/11/11/10 qubits, three
    bridge qubits between consecutive rows (columns 0, 4, 8 below even rows, 2, 6, 10 below odd rows),
    numbered row by row with each row's bridges after it; 72 couplers."""
    rows = [range(0, 10), range(0, 11), range(0, 11), range(0, 11), range(1, 11)]
    at, pos = {}, {}
    for r, cols in enumerate(rows):
        for c in cols:
            at[(r, c)] = len(pos)
            pos[at[(r, c)]] = (float(c), float(8 - 2 * r))
        if r + 1 < len(rows):
            for c in ((0, 4, 8) if r % 2 == 0 else (2, 6, 10)):
                at[("bridge", r, c)] = len(pos)
                pos[at[("bridge", r, c)]] = (float(c), float(7 - 2 * r))
    edges = []
    for r, cols in enumerate(rows):
        cols = list(cols)
        edges += [(at[(r, c)], at[(r, c + 1)]) for c in cols[:-1]]
        if r + 1 < len(rows):
            for c in ((0, 4, 8) if r % 2 == 0 else (2, 6, 10)):
                edges += [(at[(r, c)], at[("bridge", r, c)]), (at[("bridge", r, c)], at[(r + 1, c)])]
    return pos, sorted(edges)


def heavyhex65() -> tuple[str, dict]:
    d = Draw(65)
    pos, edges = heavy_hex_65()
    g = nx.Graph(edges)
    # heavy-hex frequency plan: degree-3 qubits (always CR controls) in the middle band, the others above
    # and below by sublattice
    side = nx.bipartite.color(g)
    base = {n: 5.05e9 if g.degree(n) == 3 else (4.95e9 if side[n] else 5.15e9) for n in g}
    f = frequencies(g, d, base, 40e6, FIXED_CR["alpha"], 25e6)
    name = {n: f"Q{n}" for n in g}
    # chosen so that the d=3 protocol still fits on the usable part (checked by tests/device)
    bad_q = {10: "TLS near its frequency: T1 fluctuates below 10 us", 44: "readout resonator hybridised; 1->0 error ~30 %",
             62: "frequency drifted onto a neighbour's 1-2 line; parked"}
    bad_c = {(2, 3): "ECR calibration fails (error reported as 1)", (28, 29): "strong ZZ from a spectator collision",
             (51, 54): "CR tone drives a box mode (error reported as 1)"}
    boards = [f"zcu216_{k}" for k in range((len(g) + 8) // 9)]
    wq, ro_f = {}, {}
    for k, b in enumerate(boards):
        group = [n for n in sorted(g) if n // 9 == k]
        ro_f.update(readout_freqs(d, group[:6], 7.0e9, 50e6))
        ro_f.update(readout_freqs(d, group[6:8], 7.05e9, 70e6))
        ro_f.update(readout_freqs(d, group[8:], 7.1e9, 60e6))
        for i, n in enumerate(group):
            if i < 6:
                ro = readout_channel(b, MUX_GEN, PFB_RO[i], tone=i)
            elif i < 8:
                ro = readout_channel(b, 14, DYN_RO[0])
            else:
                ro = readout_channel(b, 15, DYN_RO[1])
            wq[n] = {"name": name[n], "drive": channel(b, INT4[i]), "readout": ro}
    cq = [qubit(d, name[n], pos[n], f[n], FIXED_CR, ro_f[n], bad_q.get(n)) for n in sorted(g)]
    cc = []
    for a, b in edges:
        control = a if g.degree(a) == 3 else (b if g.degree(b) == 3 else (a if f[a] > f[b] else b))
        c = ecr(d, (name[a], name[b]), name[control], FIXED_CR, bad_c.get((a, b)))
        if (a, b) == (28, 29):
            c["error"] = 0.085
        cc.append(c)
    cc[edges.index((30, 31))]["error"] = 0.031  # poor but usable
    excl = [{"couplers": [["Q4", "Q11"], ["Q17", "Q18"]], "note": "CR on Q11 excites Q18 through a shared box mode"},
            {"couplers": [["Q31", "Q39"], ["Q46", "Q47"]], "note": "simultaneous RB shows 2x error"},
            {"couplers": [["Q56", "Q57"], ["Q58", "Q59"]], "note": "spectator collision on Q57/Q58"}]
    header = f"""
heavyhex65_ecr: a 65-qubit heavy-hex device (the IBM Hummingbird shape: rows of 10/11/11/11/10 qubits joined
by 3 bridge qubits per gap, 72 couplers) with fixed-frequency transmons and echoed cross-resonance gates.
Qubits are numbered row by row, each row's bridges after it; position (column, height).

Numbers: illustrative, drawn (seed 65) around typical published IBM Falcon/Hummingbird backend properties
(2021-2023): T1 ~120 us, T2E ~100 us, sx 35.6 ns at ~2.5e-4, ECR 300-650 ns at ~7e-3, anharmonicity
~-335 MHz, readout ~1.5 %. Frequency plan: degree-3 qubits (always the CR control) near 5.05 GHz, the
others near 4.95 or 5.15 GHz by sublattice. Bad parts, as a backend would report them:
  Q10, Q44, Q62 usable: false; couplers Q2-Q3 and Q51-Q54 (error 1) and Q28-Q29 (error 8.5 %) usable: false;
  Q30-Q31 usable with a poor 3.1 % error. The d=3 protocol still fits on the usable part (a 27-qubit Falcon
  does not once two qubits are bad). Crosstalk exclusions list coupler pairs that must not run together.

Wiring: {len(boards)} ZCU216 boards ({FIRMWARE}),
qubits 9k..9k+8 on board k. Per board: drive gens 5-13; readout by mux gen 4 tones 0-5 -> PFB readouts 2-7 (six qubits), gen 14 -> dynamic
readout 0 (two qubits, one after the other) and gen 15 -> dynamic readout 1 (one qubit); external readout
LO {READOUT_LO_HZ / 1e9:g} GHz. No flux lines. Boards share a reference and start trigger (assumed skew 2 ns);
no real-time link between boards (inter_board_latency_s: null).
"""
    doc = document("heavyhex65_ecr", "65-qubit heavy-hex (Hummingbird shape), fixed frequency, ECR, 8 ZCU216 boards",
                   boards, [wq[n] for n in sorted(g)], [], cq, cc, excl, "2025-06-02T08:30:00Z")
    return header, doc


def grid25() -> tuple[str, dict]:
    d = Draw(25)
    side = 5
    g = nx.grid_2d_graph(side, side)
    idx = {(r, c): r * side + c for r, c in g}
    h = nx.relabel_nodes(g, idx)
    base = {idx[(r, c)]: (4.55e9 if (r + c) % 2 else 5.05e9) for r, c in g}
    f = frequencies(h, d, base, 40e6, TUNABLE_COUPLER["alpha"], 25e6)
    name = {n: f"Q{n}" for n in h}
    boards = [f"zcu216_{k}" for k in range(side)]
    wq, ro_f = {}, {}
    for r in range(side):
        b = boards[r]
        row = [r * side + c for c in range(side)]
        ro_f.update(readout_freqs(d, row, 7.0e9, 55e6))
        for c, n in enumerate(row):
            wq[n] = {"name": name[n], "drive": channel(b, INT4[c]), "readout": readout_channel(b, MUX_GEN, PFB_RO[c], tone=c)}
    # coupler flux lines: on the board of the coupler's first row if a slot is free, else the next board
    slots = {b: [0, 1, 2, 3, 10, 11, 12, 13, 14, 15] for b in boards}
    couplers = sorted(tuple(sorted(e)) for e in h.edges)
    wc = []
    for a, b2 in couplers:
        k = a // side
        while not slots[boards[k]]:
            k = (k + 1) % side
        wc.append({"qubits": [name[a], name[b2]], "flux": channel(boards[k], slots[boards[k]].pop(0))})
    cq = [qubit(d, name[n], (n % side, n // side), f[n], TUNABLE_COUPLER, ro_f[n]) for n in sorted(h)]
    bad_c = {(11, 12): "coupler flux line open at the mixing chamber"}
    cc = [cz(d, (name[a], name[b2]), "coupler", TUNABLE_COUPLER, bad_c.get((a, b2))) for a, b2 in couplers]
    excl = [{"couplers": [["Q6", "Q7"], ["Q8", "Q9"]], "note": "coupler flux crosstalk between lines"},
            {"couplers": [["Q16", "Q21"], ["Q17", "Q22"]], "note": "parallel CZs leak through Q16-Q17 coupler"}]
    header = f"""
grid25_cz: a 5x5 square grid of fixed-frequency transmons with tunable couplers (40 couplers) and CZ gates
by a flux pulse on the coupler. Qubit Q(5r+c) sits at position (c, r).

Numbers: illustrative, drawn (seed 25) around published medians for fixed-frequency, tunable-coupler CZ
processors (IBM Heron class, 2024): T1 ~150 us, T2E ~120 us, 32 ns single-qubit gates at ~2.5e-4, 84 ns CZ
at ~4e-3 with ~5e-4 leakage, readout ~1.2 us at ~1.5 %. Checkerboard frequency plan (4.55 / 5.05 GHz
sublattices, no coupled or next-nearest pair within 25 MHz). Coupler Q11-Q12 is marked usable: false.

Wiring: 5 ZCU216 boards ({FIRMWARE}), one row of 5 qubits each: drive gens 5-9, readout by mux gen 4
tones 0-4 -> PFB readouts 2-6 (external LO {READOUT_LO_HZ / 1e9:g} GHz); the 40 coupler flux lines on gens
0-3 and 10-15 of the row's board, overflowing to the next board. Boards share a reference and start
trigger (assumed skew 2 ns); no real-time link between boards (inter_board_latency_s: null).
"""
    doc = document("grid25_cz", "5x5 square grid, tunable couplers, CZ, 5 ZCU216 boards",
                   boards, [wq[n] for n in sorted(h)], wc, cq, cc, excl, "2025-06-02T08:30:00Z")
    return header, doc


DEVICES = {"planar16_d3.yaml": planar16, "grid55_d5.yaml": grid55, "heavyhex65_ecr.yaml": heavyhex65,
           "grid25_cz.yaml": grid25}


def render(name: str) -> str:
    """The text of one shipped file (also used by the test that checks the files are up to date)."""
    header, doc = DEVICES[name]()
    lines = ["# yaml-language-server: $schema=device.schema.json"]
    lines += [("# " + h).rstrip() for h in header.strip("\n").splitlines()]
    lines.append("")
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"{k}:")
            block(v, 2, lines)
            lines.append("")
        else:
            lines.append(f"{k}: {flow(k, v)}")
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    from ctrl.device import validate
    from ctrl.device.schema import json_schema_text

    (HERE / "device.schema.json").write_text(json_schema_text())
    for name in DEVICES:
        (HERE / name).write_text(render(name))
        problems = validate(HERE / name)
        print(f"{name}: {'ok' if not problems else f'{len(problems)} problems'}")
        for p in problems:
            print("  " + p)


if __name__ == "__main__":
    main()
