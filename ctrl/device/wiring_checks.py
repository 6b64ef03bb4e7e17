"""The wiring checks of a device file (`checks.py` runs them after the calibration's): every channel exists on
its board's firmware and is the right kind, tone counts, Nyquist zones, mixer bandwidth, envelope memory,
the shortest pulse, real-time readout paths, and the numbers only QICK programs need.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from ctrl.device.firmware import FirmwareError, GenInfo, read_firmware
from ctrl.device.model import COMPILED_KINDS, Channel, CrossResonanceGate
from ctrl.device.units import fmt, ghz, mhz

NYQUIST_GUARD_HZ = 50e6  # a tone this close to a Nyquist boundary (or to its LO) has an image next to it
MIN_PULSE_CYCLES = 3  # QICK refuses pulses shorter than 3 fabric cycles


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



class WiringChecks:
    """The wiring half of the device checker (`checks._Checker`): it reads the calibration checker's
    `spec`, `base_dir`, `q`, `qubit` and `entries`, and reports through its `problem` and `warn`."""

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
                                     f"adc {key[1]}) are {mhz(f2 - f1)} apart (guard {mhz(self.guard)})")

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
                         f"{qw.name}'s readout reaches ADC {ro.adc} ({fmt(ro.fs_hz / 1e6)} MS/s) at {ghz(f_if)}, within "
                         f"{mhz(NYQUIST_GUARD_HZ)} of the Nyquist boundary {ghz(k * half)}: it would fold onto its image")
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
                self.problem(t.path, f"{t.what} at {ghz(t.freq_hz)} needs {ghz(f)} from gen {g.index} on {board} "
                                     f"({g.type}, {fmt(g.fs_hz / 1e6)} MS/s), beyond Nyquist zone 2 (< {ghz(g.fs_hz)}); "
                                     "add an external LO (lo_frequency_hz) or use a faster generator")
                continue
            edges = [g.fs_hz / 2, g.fs_hz] + ([0.0] if lo is not None else [])
            near = min(edges, key=lambda e: abs(f - e))
            if abs(f - near) < NYQUIST_GUARD_HZ:
                edge = "its LO" if near == 0.0 else f"the Nyquist boundary {ghz(near)}"
                self.problem(t.path, f"{t.what} needs {ghz(f)} from gen {g.index} on {board}, within "
                                     f"{mhz(NYQUIST_GUARD_HZ)} of {edge}: its image would sit next to it")
        if g.has_mixer and ifs and max(ifs) - min(ifs) > g.f_dds_hz:
            self.problem(self.tones[key][-1].path,
                         f"gen {g.index} on {board} ({g.type}) must play tones {mhz(max(ifs) - min(ifs))} apart, "
                         f"but one mixer setting covers only {mhz(g.f_dds_hz)}")

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
