"""Checks across fields of a well-typed device file: names, the coupling graph, frequency collisions, and
the wiring against the QICK firmware it references (channels exist, are the right kind, tone counts,
Nyquist zones, mixer bandwidth, envelope memory, shortest pulse, real-time readout paths).

Each finding is (path into the file, message); the loader turns paths into lines and columns.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from ctrl.device.firmware import FirmwareError, FirmwareInfo, GenInfo, read_firmware
from ctrl.device.model import COMPILED_KINDS, Channel, CrossResonanceGate, DeviceFile
from ctrl.device.units import fmt

DEFAULT_FREQUENCY_GUARD_HZ = 20e6
NYQUIST_GUARD_HZ = 50e6  # a tone this close to a Nyquist boundary (or to its LO) has an image next to it
MIN_PULSE_CYCLES = 3  # QICK refuses pulses shorter than 3 fabric cycles
CZ_PHASE_TOLERANCE_RAD = 0.35
SWAP_ANGLE_TOLERANCE_RAD = 0.2


def _mhz(x: float) -> str:
    return f"{x / 1e6:.4g} MHz"


def _ghz(x: float) -> str:
    return f"{x / 1e9:.6g} GHz"


def coupler_name(pair) -> str:
    return f"{pair[0]}-{pair[1]}"


@dataclass(frozen=True)
class _Use:
    role: str  # drive, flux, readout
    element: str
    path: tuple


@dataclass(frozen=True)
class _Tone:
    what: str
    freq_hz: float
    path: tuple


@dataclass(frozen=True)
class _Env:
    what: str
    pulse: object
    duration_s: float
    path: tuple


def stored_seconds(pulse, duration_s: float) -> float:
    """Length of the envelope QICK must keep in memory for a pulse of this shape."""
    if pulse.shape == "const":
        return 0.0
    if pulse.shape == "flat_top":
        return 2 * pulse.rise_s
    return duration_s


class _Checker:
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
                self.problem(where, f"frequency collision: {a} ({_ghz(qa.frequency_hz)}) and {b} "
                                    f"({_ghz(qb.frequency_hz)}) are coupled and {_mhz(d)} apart (guard {_mhz(guard)})")
            for x, y in ((qa, qb), (qb, qa)):
                if y.anharmonicity_hz is None:
                    continue
                d = abs(x.frequency_hz - (y.frequency_hz + y.anharmonicity_hz))
                if d < guard:
                    self.problem(where, f"frequency collision: {x.name}'s 0-1 transition is {_mhz(d)} from "
                                        f"{y.name}'s 1-2 transition (coupled; guard {_mhz(guard)})")
        for n in sorted(nbrs):
            ns = sorted(nbrs[n], key=lambda m: self.q[m])
            for i, x in enumerate(ns):
                for y in ns[i + 1:]:
                    d = abs(self.qubit[x].frequency_hz - self.qubit[y].frequency_hz)
                    if d < guard:  # a spectator collision: real devices run with some
                        self.warn(("calibration", "qubits", self.q[y], "frequency_hz"),
                                  f"frequency collision: {x} and {y} share neighbour {n} and are {_mhz(d)} apart "
                                  f"(guard {_mhz(guard)})")

    # ------------------------------------------------------------------------------ wiring

    def qick_fields(self):
        """The numbers only QICK programs need, on every wired qubit and its usable compiled gates."""
        wired = {w.name for w in self.spec.wiring.qubits} & set(self.q)
        need = ("frequency_hz", "anharmonicity_hz", "x90.pulse", "x180.pulse", "readout.frequency_hz",
                "readout.pulse", "readout.window_s", "readout.time_of_flight_s", "readout.iq_rotation_rad",
                "readout.threshold", "readout.reset")  # fmt: skip
        for name in sorted(wired, key=self.q.get):
            q = self.qubit[name]
            for field in need:
                obj = q
                for part in field.split("."):
                    obj = getattr(obj, part)
                if obj is None:
                    self.problem(("calibration", "qubits", self.q[name]) + tuple(field.split(".")),
                                 f"{name} is wired to QICK, whose programs need its {field}: give it, or drop "
                                 "the wiring section to compile without QICK programs")  # fmt: skip
        for i in self.entries:
            c = self.spec.calibration.couplers[i]
            if not (c.usable and set(c.qubits) <= wired) or c.gate not in COMPILED_KINDS:
                continue
            fields = ("cr_pulse", "cr_segment_s", "cr_phase_rad") if isinstance(c, CrossResonanceGate) else ("flux_pulse",)
            for field in fields + (("conditional_phase_rad",) if c.gate == "cz" else ()):
                if getattr(c, field) is None:
                    self.problem(("calibration", "couplers", i, field),
                                 f"{c.gate} on {coupler_name(c.qubits)} is wired to QICK, whose programs need its "
                                 f"{field}: give it, mark the gate usable: false, or drop the wiring section")

    def boards(self):
        w = self.spec.wiring
        self.board_names: dict[str, int] = {}
        for i, b in enumerate(w.boards):
            if b.name in self.board_names:
                self.problem(("wiring", "boards", i, "name"), f"duplicate board '{b.name}'")
                continue
            self.board_names[b.name] = i
            try:
                self.firmware[b.name] = read_firmware(self.base_dir / b.firmware)
            except FirmwareError as e:
                self.problem(("wiring", "boards", i, "firmware"), f"firmware '{b.firmware}': {e.reason}")
        ctl = w.controller
        if len(w.boards) > 1 and ctl.alignment.reference != "shared":
            self.problem(("wiring", "controller", "alignment", "reference"),
                         f"{len(w.boards)} boards need a shared reference clock and start trigger to stay aligned")
        if len(w.boards) > 1 and ctl.inter_board_latency_s is not None:
            for name, fw in self.firmware.items():
                if not fw.has_link:
                    self.problem(("wiring", "controller", "inter_board_latency_s"),
                                 f"board {name}'s firmware ({fw.path.name}) has neither qnet nor qcom: no real-time "
                                 "link between boards exists; set inter_board_latency_s: null")
                    break

    def _gen(self, path: tuple, ch: Channel) -> GenInfo | None:
        if ch.board not in self.board_names:
            self.problem(path + ("board",), f"unknown board '{ch.board}' (wiring.boards has: "
                                            f"{', '.join(self.board_names) or 'none'})")
            return None
        fw = self.firmware.get(ch.board)
        if fw is None:
            return None
        if ch.gen >= len(fw.gens):
            self.problem(path + ("gen",), f"generator {ch.gen} does not exist on board {ch.board} "
                                          f"({fw.path.name} has gens 0..{len(fw.gens) - 1})")
            return None
        return fw.gens[ch.gen]

    def _envelope_gen(self, path, ch, what) -> GenInfo | None:
        g = self._gen(path, ch)
        if g is not None and g.mux:
            self.problem(path + ("gen",), f"{what} on gen {g.index} ({g.type}): a multiplexed generator plays "
                                          f"{g.n_tones} constant tones and no shaped envelopes")
        return g

    def wiring(self):
        w, cal = self.spec.wiring, self.spec.calibration
        self.uses: dict[tuple, list[_Use]] = defaultdict(list)
        self.tones: dict[tuple, list[_Tone]] = defaultdict(list)
        self.envs: dict[tuple, list[_Env]] = defaultdict(list)
        self.los: dict[tuple, dict] = defaultdict(dict)
        self.drive: dict[str, tuple] = {}
        self.flux: dict[str, tuple] = {}
        self.flux_declared: set[str] = set()
        ro_users: dict[tuple, list] = defaultdict(list)
        tone_users: dict[tuple, list] = {}
        resonators: dict[tuple, list] = defaultdict(list)
        seen: dict[str, int] = {}
        for i, qw in enumerate(w.qubits):
            path = ("wiring", "qubits", i)
            if qw.name not in self.q:
                self.problem(path + ("name",), f"wiring for unknown qubit '{qw.name}'")
                continue
            if qw.name in seen:
                self.problem(path + ("name",), f"qubit {qw.name} is wired twice (also wiring.qubits[{seen[qw.name]}])")
                continue
            seen[qw.name] = i
            q = self.qubit[qw.name]
            qcal = ("calibration", "qubits", self.q[qw.name])
            g = self._envelope_gen(path + ("drive",), qw.drive, f"{qw.name}'s drive")
            if g is not None:
                key = (qw.drive.board, g.index)
                self.drive[qw.name] = key
                self._use(key, _Use("drive", qw.name, path + ("drive",)), qw.drive)
                if q.frequency_hz is not None:
                    self.tones[key].append(_Tone(f"{qw.name}'s drive", q.frequency_hz, path + ("drive",)))
                for gname in ("x90", "x180"):
                    gate = getattr(q, gname)
                    if gate.pulse is not None:
                        self.envs[key].append(_Env(f"{qw.name} {gname}", gate.pulse, gate.duration_s, qcal + (gname, "duration_s")))
            if qw.flux is not None:
                self.flux_declared.add(qw.name)
                g = self._envelope_gen(path + ("flux",), qw.flux, f"{qw.name}'s flux line")
                if g is not None:
                    key = (qw.flux.board, g.index)
                    self.flux[qw.name] = key
                    self._use(key, _Use("flux", qw.name, path + ("flux",)), qw.flux)
            self._readout(path + ("readout",), qw, q, qcal, ro_users, tone_users, resonators)
        for name, i in self.q.items():
            if name not in seen:
                self.problem(("wiring", "qubits"), f"qubit {name} has no wiring entry")
        self._coupler_wiring()
        self._two_qubit_pulses()
        for key, users in ro_users.items():
            fw = self.firmware[key[0]]
            ro = fw.readouts[key[1]]
            names = sorted({u[0] for u in users})
            if not ro.dynamic and len(names) > 1:
                self.problem(users[1][1], f"readout {ro.index} on {key[0]} ({ro.type}) has one frequency per program "
                                          f"and cannot read both {names[0]} and {names[1]}; only tProc-controlled "
                                          "readouts (axis_dyn_readout) can be shared")
        for key, items in resonators.items():
            items.sort(key=lambda t: t[1])
            for (n1, f1, _), (n2, f2, p2) in zip(items, items[1:]):
                if f2 - f1 < self.guard:
                    self.problem(p2, f"readout collision: resonators of {n1} and {n2} on the same ADC ({key[0]} "
                                     f"adc {key[1]}) are {_mhz(f2 - f1)} apart (guard {_mhz(self.guard)})")

    def _use(self, key, use: _Use, ch: Channel):
        self.uses[key].append(use)
        lo = ch.lo_frequency_hz
        self.los[key].setdefault(lo, use)

    def _readout(self, path, qw, q, qcal, ro_users, tone_users, resonators):
        ch = qw.readout
        if q.readout.frequency_hz is None or q.readout.pulse is None or q.readout.window_s is None:
            return  # qick_fields reports what is missing
        g = self._gen(path, ch)
        if g is not None:
            key = (ch.board, g.index)
            self._use(key, _Use("readout", qw.name, path), ch)
            self.tones[key].append(_Tone(f"{qw.name}'s readout", q.readout.frequency_hz, path))
            if g.mux:
                if ch.tone is None:
                    self.problem(path + ("gen",), f"gen {g.index} ({g.type}) is multiplexed with {g.n_tones} tones: "
                                                  "give the tone (0.."f"{g.n_tones - 1})")
                elif ch.tone >= g.n_tones:
                    self.problem(path + ("tone",), f"tone {ch.tone} does not exist: gen {g.index} ({g.type}) has "
                                                   f"{g.n_tones} tones (0..{g.n_tones - 1})")
                elif (key, ch.tone) in tone_users:
                    self.problem(path + ("tone",), f"tone {ch.tone} of gen {g.index} is already used by {tone_users[key, ch.tone]}")
                else:
                    tone_users[key, ch.tone] = qw.name
                if q.readout.pulse.shape != "const":
                    self.problem(qcal + ("readout", "pulse", "shape"),
                                 f"{qw.name}'s readout plays on multiplexed gen {g.index}, which has no envelope "
                                 f"memory: the pulse shape must be const, not {q.readout.pulse.shape}")
            else:
                if ch.tone is not None:
                    self.problem(path + ("tone",), f"gen {g.index} ({g.type}) is not multiplexed: remove tone")
                self.envs[key].append(_Env(f"{qw.name} readout", q.readout.pulse, q.readout.pulse_duration_s,
                                           qcal + ("readout", "pulse_duration_s")))
        fw = self.firmware.get(ch.board)
        if fw is None:
            return
        if ch.ro >= len(fw.readouts):
            self.problem(path + ("ro",), f"readout channel {ch.ro} does not exist on board {ch.board} "
                                         f"({fw.path.name} has readouts 0..{len(fw.readouts) - 1})")
            return
        ro = fw.readouts[ch.ro]
        ro_users[(ch.board, ch.ro)].append((qw.name, path + ("ro",)))
        resonators[(ch.board, ro.adc)].append((qw.name, q.readout.frequency_hz, qcal + ("readout", "frequency_hz")))
        if ch.feedback and not ro.feeds_tproc:
            self.problem(path + ("ro",), f"readout {ro.index} on {ch.board} ({ro.type}, tproc_ch {ro.tproc_ch}) does not "
                                         "reach the tProc, so it cannot feed real-time decisions; use another "
                                         "readout or set feedback: false (end-of-shot reads only)")
        f_if = abs(q.readout.frequency_hz - ch.lo_frequency_hz) if ch.lo_frequency_hz is not None else q.readout.frequency_hz
        half = ro.fs_hz / 2
        k = max(1, round(f_if / half))
        if abs(f_if - k * half) < NYQUIST_GUARD_HZ:
            self.problem(qcal + ("readout", "frequency_hz"),
                         f"{qw.name}'s readout reaches ADC {ro.adc} ({fmt(ro.fs_hz / 1e6)} MS/s) at {_ghz(f_if)}, within "
                         f"{_mhz(NYQUIST_GUARD_HZ)} of the Nyquist boundary {_ghz(k * half)}: it would fold onto its image")
        min_window = MIN_PULSE_CYCLES / ro.f_output_hz
        if q.readout.window_s < min_window:
            self.problem(qcal + ("readout", "window_s"),
                         f"window of {fmt(q.readout.window_s)} s is shorter than {MIN_PULSE_CYCLES} output cycles of "
                         f"readout {ro.index} ({fmt(min_window)} s)")

    def _coupler_wiring(self):
        self.coupler_flux: dict[frozenset, tuple] = {}
        for i, cw in enumerate(self.spec.wiring.couplers):
            path = ("wiring", "couplers", i)
            key = frozenset(cw.qubits)
            if key not in self.c:
                self.problem(path + ("qubits",), f"wiring for {coupler_name(cw.qubits)}, which is not a coupler")
                continue
            if key in self.coupler_flux:
                self.problem(path + ("qubits",), f"coupler {coupler_name(cw.qubits)} is wired twice")
                continue
            g = self._envelope_gen(path + ("flux",), cw.flux, f"{coupler_name(cw.qubits)}'s flux line")
            if g is not None:
                k = (cw.flux.board, g.index)
                self.coupler_flux[key] = k
                self._use(k, _Use("flux", coupler_name(cw.qubits), path + ("flux",)), cw.flux)
            else:
                self.coupler_flux[key] = None

    def _two_qubit_pulses(self):
        for i in self.entries:
            c = self.spec.calibration.couplers[i]
            key = frozenset(c.qubits)
            path = ("calibration", "couplers", i)
            name = coupler_name(c.qubits)
            if isinstance(c, CrossResonanceGate):
                if c.control not in c.qubits or c.cr_pulse is None or c.cr_segment_s is None:
                    continue
                target = c.qubits[1] if c.control == c.qubits[0] else c.qubits[0]
                gk = self.drive.get(c.control)
                if gk is not None and self.qubit[target].frequency_hz is not None:
                    self.tones[gk].append(_Tone(f"{name}'s CR tone (at {target}'s frequency)",
                                                self.qubit[target].frequency_hz, path + ("control",)))
                    self.envs[gk].append(_Env(f"{name} CR", c.cr_pulse, c.cr_segment_s, path + ("cr_segment_s",)))
                tk = self.drive.get(target)
                if tk is not None and c.cancellation_pulse is not None:
                    self.envs[tk].append(_Env(f"{name} cancellation", c.cancellation_pulse, c.cr_segment_s,
                                              path + ("cr_segment_s",)))
                continue
            if c.flux_pulse is None:
                continue
            el = c.flux_pulse.element
            if el == "coupler":
                if key not in self.coupler_flux:
                    self.problem(path + ("flux_pulse", "element"),
                                 f"{name}'s {c.gate} pulses the coupler's flux line, but wiring.couplers has none for {name}")
                    continue
                fk = self.coupler_flux[key]
            elif el in c.qubits:
                if el not in self.flux:
                    if el not in self.flux_declared:
                        self.problem(path + ("flux_pulse", "element"),
                                     f"{name}'s {c.gate} pulses {el}'s flux line, but wiring.qubits has no flux for {el}")
                    continue
                fk = self.flux[el]
            else:
                continue
            if fk is not None:
                self.envs[fk].append(_Env(f"{name} flux", c.flux_pulse.pulse, c.duration_s, path + ("duration_s",)))

    def generators(self):
        for key in sorted(self.uses):
            uses = self.uses[key]
            board, idx = key
            g = self.firmware[board].gens[idx]
            roles = sorted({u.role for u in uses})
            if len(roles) > 1:
                who = ", ".join(f"{u.role} of {u.element}" for u in uses)
                self.problem(uses[-1].path + ("gen",), f"gen {idx} on {board} feeds one line but is used for {who}")
                continue
            if roles == ["flux"] and len(uses) > 1:
                self.problem(uses[1].path + ("gen",), f"gen {idx} on {board} is the flux line of both "
                                                      f"{uses[0].element} and {uses[1].element}")
            if len(self.los[key]) > 1:
                self.problem(uses[-1].path + ("lo_frequency_hz",),
                             f"gen {idx} on {board} feeds one line, so all its users need the same lo_frequency_hz")
                continue
            lo = next(iter(self.los[key]))
            self._tones(key, g, lo)
            self._envelopes(key, g)

    def _tones(self, key, g: GenInfo, lo):
        board = key[0]
        ifs = []
        for t in self.tones[key]:
            f = abs(t.freq_hz - lo) if lo is not None else t.freq_hz
            ifs.append(f)
            if f >= g.fs_hz:
                self.problem(t.path, f"{t.what} at {_ghz(t.freq_hz)} needs {_ghz(f)} from gen {g.index} on {board} "
                                     f"({g.type}, {fmt(g.fs_hz / 1e6)} MS/s), beyond Nyquist zone 2 (< {_ghz(g.fs_hz)}); "
                                     "add an external LO (lo_frequency_hz) or use a faster generator")
                continue
            edges = [g.fs_hz / 2, g.fs_hz] + ([0.0] if lo is not None else [])
            near = min(edges, key=lambda e: abs(f - e))
            if abs(f - near) < NYQUIST_GUARD_HZ:
                edge = "its LO" if near == 0.0 else f"the Nyquist boundary {_ghz(near)}"
                self.problem(t.path, f"{t.what} needs {_ghz(f)} from gen {g.index} on {board}, within "
                                     f"{_mhz(NYQUIST_GUARD_HZ)} of {edge}: its image would sit next to it")
        if g.has_mixer and ifs and max(ifs) - min(ifs) > g.f_dds_hz:
            self.problem(self.tones[key][-1].path,
                         f"gen {g.index} on {board} ({g.type}) must play tones {_mhz(max(ifs) - min(ifs))} apart, "
                         f"but one mixer setting covers only {_mhz(g.f_dds_hz)}")

    def _envelopes(self, key, g: GenInfo):
        board = key[0]
        min_len = MIN_PULSE_CYCLES / g.f_fabric_hz
        total = 0
        for e in self.envs[key]:
            if e.duration_s < min_len * (1 - 1e-9):
                self.problem(e.path, f"{e.what} lasts {fmt(e.duration_s)} s, shorter than {MIN_PULSE_CYCLES} fabric "
                                     f"cycles of gen {g.index} on {board} ({fmt(min_len)} s): QICK refuses it")
            total += math.ceil(stored_seconds(e.pulse, e.duration_s) * g.envelope_rate_hz)
        if not g.mux and total > g.maxlen:
            names = ", ".join(e.what for e in self.envs[key])
            self.problem(self.envs[key][-1].path,
                         f"envelopes on gen {g.index} on {board} need {total} samples but it has {g.maxlen} "
                         f"(at {fmt(g.envelope_rate_hz / 1e6)} MS/s; pulses: {names})")


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
