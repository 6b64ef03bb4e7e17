"""Checks across fields of a well-typed device file: names, the coupling graph, frequency collisions, and
(`wiring_checks.py`) the wiring against the QICK firmware it references (channels exist, are the right
kind, tone counts, Nyquist zones, mixer bandwidth, envelope memory, shortest pulse, real-time readout paths).

Each finding is (path into the file, message); the loader turns paths into lines and columns.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import networkx as nx

from ctrl.device.firmware import FirmwareInfo
from ctrl.device.model import CrossResonanceGate, DeviceFile
from ctrl.device.units import fmt, ghz, mhz
from ctrl.device.wiring_checks import WiringChecks

DEFAULT_FREQUENCY_GUARD_HZ = 20e6
CZ_PHASE_TOLERANCE_RAD = 0.35
SWAP_ANGLE_TOLERANCE_RAD = 0.2


class _Checker(WiringChecks):
    def __init__(self, spec: DeviceFile, base_dir: Path, guard_hz: float):
        self.spec, self.base_dir, self.guard = spec, base_dir, guard_hz
        self.out: list[tuple[tuple, str]] = []
        self.notes: list[tuple[tuple, str]] = []
        self.firmware: dict[str, FirmwareInfo] = {}

    def problem(self, path: tuple, msg: str) -> None:
        self.out.append((path, msg))

    def warn(self, path: tuple, msg: str) -> None:
        """Implausible but real: measured snapshots of working devices show it (`--strict` refuses it)."""
        self.notes.append((path, msg))

    def coherence(self):
        # T2 <= 2 T1 holds for any Markovian decoherence, yet fitted snapshots of real devices report T2/T1
        # up to 20 on a few qubits (fit scatter on a short T1); the noise model takes the numbers as given
        for i, q in enumerate(self.spec.calibration.qubits):
            if q.t1_s is None:
                if q.usable:
                    self.problem(("calibration", "qubits", i, "t1_s"),
                                 f"{q.name} is usable but its T1 is unknown: give t1_s, or mark it usable: false")
                continue
            for field in ("t2_ramsey_s", "t2_echo_s"):
                t2 = getattr(q, field)
                if t2 is not None and t2 > 2.1 * q.t1_s:
                    self.warn(("calibration", "qubits", i, field),
                              f"{field} = {fmt(t2)} s exceeds 2*T1 = {fmt(2 * q.t1_s)} s, which no Markovian "
                              "decoherence allows: a fit's scatter, or the units of T1 or T2")  # fmt: skip

    def defaults(self):
        """One warning per unknown number the noise model or the schedule replaces by its default."""
        rules = (
            ("t2_ramsey_s", lambda q: q.t2_ramsey_s is None and q.t2_echo_s is not None,
             "the noise model uses the echo T2 for idles outside echo sequences (optimistic)"),
            ("t2_echo_s", lambda q: q.t2_echo_s is None and q.t2_ramsey_s is not None,
             "the noise model uses the Ramsey T2 inside echo sequences (pessimistic)"),
            ("t2_ramsey_s", lambda q: q.t2_ramsey_s is None and q.t2_echo_s is None,
             "neither T2 is known: the noise model takes T2 = T1"),
            ("readout.window_s", lambda q: q.readout.window_s is None,
             "the result is taken to be in at the end of the readout pulse (window = pulse, time of flight 0)"),
            ("readout.reset", lambda q: q.readout.reset is None,
             "the reset is taken to be active: one readout plus one x180"),
        )
        for field, unknown, default in rules:
            where = [(i, q.name) for i, q in enumerate(self.spec.calibration.qubits) if q.usable and unknown(q)]
            if where:
                names = ", ".join(n for _, n in where[:6]) + (f" and {len(where) - 6} more" if len(where) > 6 else "")
                path = ("calibration", "qubits", where[0][0]) + tuple(field.split("."))
                self.warn(path, f"{field} unknown on {len(where)} usable qubit(s) ({names}): {default}")

    # ------------------------------------------------------------------------------ calibration

    def names(self):
        cal = self.spec.calibration
        self.q: dict[str, int] = {}
        for i, q in enumerate(cal.qubits):
            if q.name in self.q:
                self.problem(("calibration", "qubits", i, "name"),
                             f"duplicate qubit '{q.name}' (also calibration.qubits[{self.q[q.name]}])")
            else:
                self.q[q.name] = i
        self.qubit = {q.name: q for q in cal.qubits}
        self.c: dict[frozenset, int] = {}  # pair -> its first gate
        self.entries: list[int] = []  # every gate with valid names
        kinds: dict[tuple, int] = {}
        for i, c in enumerate(cal.couplers):
            path = ("calibration", "couplers", i)
            a, b = c.qubits
            ok = True
            for j, n in enumerate(c.qubits):
                if n not in self.q:
                    self.problem(path + ("qubits", j), f"coupler {a}-{b} references unknown qubit '{n}'")
                    ok = False
            if a == b:
                self.problem(path + ("qubits",), f"coupler {a}-{b} couples a qubit to itself")
                ok = False
            key = frozenset(c.qubits)
            kind = (key, c.gate, c.control)
            if ok and kind in kinds:
                what = c.gate + (f" controlled by {c.control}" if kind[2] else "")
                self.problem(path + ("qubits",),
                             f"duplicate {what} on coupler {a}-{b} (also calibration.couplers[{kinds[kind]}])")
                ok = False
            if ok:
                kinds[kind] = i
                self.c.setdefault(key, i)
                self.entries.append(i)
            self._gate(path, c)
        zz: dict[frozenset, int] = {}
        for i, z in enumerate(cal.static_zz):
            path = ("calibration", "static_zz", i, "qubits")
            a, b = z.qubits
            unknown = [n for n in z.qubits if n not in self.q]
            if unknown:
                self.problem(path, f"static ZZ of {a}-{b} references unknown qubit '{unknown[0]}'")
            elif a == b:
                self.problem(path, f"static ZZ of {a}-{b} pairs a qubit with itself")
            elif frozenset(z.qubits) in zz:
                self.problem(path, f"static ZZ of {a}-{b} given twice (also calibration.static_zz[{zz[frozenset(z.qubits)]}])")
            else:
                zz[frozenset(z.qubits)] = i

    def _gate(self, path, c):
        a, b = c.qubits
        for n in c.phase_corrections_rad:
            if n not in c.qubits:
                self.problem(path + ("phase_corrections_rad", n), f"phase correction for '{n}', which is not on coupler {a}-{b}")
        if isinstance(c, CrossResonanceGate):
            if c.control not in c.qubits:
                self.problem(path + ("control",), f"control '{c.control}' is not one of the coupler's qubits {a}, {b}")
            return
        if c.flux_pulse is not None and c.flux_pulse.element not in ("coupler", a, b):
            self.problem(path + ("flux_pulse", "element"),
                         f"flux pulse element must be 'coupler', '{a}' or '{b}', got '{c.flux_pulse.element}'")
        if not c.usable:
            return
        if c.gate == "cz" and c.conditional_phase_rad is not None:
            off = abs((c.conditional_phase_rad - math.pi + math.pi) % (2 * math.pi) - math.pi)
            if off > CZ_PHASE_TOLERANCE_RAD:
                self.problem(path + ("conditional_phase_rad",),
                             f"a CZ's conditional phase must be near pi (within {CZ_PHASE_TOLERANCE_RAD} rad), got "
                             f"{fmt(c.conditional_phase_rad)} rad: recalibrate, or call it fsim")
        elif c.gate in ("iswap", "sqrt_iswap"):
            want = math.pi / 2 if c.gate == "iswap" else math.pi / 4
            if abs(c.swap_angle_rad - want) > SWAP_ANGLE_TOLERANCE_RAD:
                self.problem(path + ("swap_angle_rad",),
                             f"an {c.gate} has swap angle {fmt(want)} rad, got {fmt(c.swap_angle_rad)}: use gate: fsim")

    def graph(self):
        cal = self.spec.calibration
        g = nx.Graph()
        g.add_nodes_from(self.q)
        for key in self.c:
            g.add_edges_from([tuple(key)])
        if len(g) > 1 and not nx.is_connected(g):
            comps = sorted((sorted(cc) for cc in nx.connected_components(g)), key=lambda cc: (-len(cc), cc))
            cut = ", ".join(", ".join(cc) for cc in comps[1:])
            self.problem(("calibration", "couplers"),
                         f"the coupling graph is not connected: {cut} cannot reach {comps[0][0]}")
        for i, ex in enumerate(cal.crosstalk_exclusions):
            seen = set()
            for j, pair in enumerate(ex.couplers):
                key = frozenset(pair)
                if key not in self.c:
                    self.problem(("calibration", "crosstalk_exclusions", i, "couplers", j),
                                 f"crosstalk exclusion names {pair[0]}-{pair[1]}, which is not a coupler")
                elif key in seen:
                    self.problem(("calibration", "crosstalk_exclusions", i, "couplers", j),
                                 f"coupler {pair[0]}-{pair[1]} listed twice")
                seen.add(key)

    def collisions(self):
        cal, guard = self.spec.calibration, self.guard
        good = {n for n, q in self.qubit.items() if q.usable}
        nbrs: dict[str, set] = defaultdict(set)
        for key, i in self.c.items():
            c = cal.couplers[i]
            a, b = c.qubits
            if not (c.usable and a in good and b in good):
                continue
            qa, qb = self.qubit[a], self.qubit[b]
            if qa.frequency_hz is None or qb.frequency_hz is None:
                continue  # an unknown frequency collides with nothing we can tell
            nbrs[a].add(b)
            nbrs[b].add(a)
            where = ("calibration", "qubits", self.q[b], "frequency_hz")
            d = abs(qa.frequency_hz - qb.frequency_hz)
            if d < guard:
                self.problem(where, f"frequency collision: {a} ({ghz(qa.frequency_hz)}) and {b} "
                                    f"({ghz(qb.frequency_hz)}) are coupled and {mhz(d)} apart (guard {mhz(guard)})")
            for x, y in ((qa, qb), (qb, qa)):
                if y.anharmonicity_hz is None:
                    continue
                d = abs(x.frequency_hz - (y.frequency_hz + y.anharmonicity_hz))
                if d < guard:
                    self.problem(where, f"frequency collision: {x.name}'s 0-1 transition is {mhz(d)} from "
                                        f"{y.name}'s 1-2 transition (coupled; guard {mhz(guard)})")
        for n in sorted(nbrs):
            ns = sorted(nbrs[n], key=lambda m: self.q[m])
            for i, x in enumerate(ns):
                for y in ns[i + 1:]:
                    d = abs(self.qubit[x].frequency_hz - self.qubit[y].frequency_hz)
                    if d < guard:  # a spectator collision: real devices run with some
                        self.warn(("calibration", "qubits", self.q[y], "frequency_hz"),
                                  f"frequency collision: {x} and {y} share neighbour {n} and are {mhz(d)} apart "
                                  f"(guard {mhz(guard)})")



def check(spec: DeviceFile, base_dir: Path, guard_hz: float = DEFAULT_FREQUENCY_GUARD_HZ):
    """(problems, warnings) as [(path, message)], and the firmware summaries by board name."""
    ch = _Checker(spec, Path(base_dir), guard_hz)
    ch.coherence()
    ch.defaults()
    ch.names()
    ch.graph()
    ch.collisions()
    if spec.wiring is not None:
        ch.qick_fields()
        ch.boards()
        ch.wiring()
        ch.generators()
    return ch.out, ch.notes, ch.firmware
