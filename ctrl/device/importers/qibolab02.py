"""qibolab >= 0.2 platforms (format `qibolab`, detected from the content): `parameters.json`, with the
qibocal `calibration.json` beside it when there is one.

    ctrl import qibolab my_platform/parameters.json --out chip.yaml

A 0.2 platform is a folder: `platform.py` (the instruments and the qubits' channels, Python code, which
ctrl never runs or reads), `parameters.json` (`settings`, `configs` keyed by channel name, `native_gates`
{single_qubit, coupler, two_qubit} as pulse sequences [[channel, {kind: pulse | delay | virtualz |
readout | acquisition | align, ...}], ...]) and, from qibocal, `calibration.json` (`single_qubits`: T1, T2,
T2 echo, readout fidelity, RB fidelity, each a [mean, error] pair; `two_qubits`: the CZ's interleaved-RB
fidelity). calibration.json is read when it sits in the same folder as the parameters file; its name and
hash go into the header.

What the native gates give, read from the sequences themselves: a qubit's drive channel is the channel
of its RX pulse, its readout the acquisition channel of its MZ; the channel configs they name give the
frequencies (RX, RX12: the anharmonicity), the acquisition's delay, threshold and IQ angle. Only the probe
channel (the readout tone's frequency) and a qubit's flux channel are not named by any native: they are
found by qibolab's own default channel names (`Qubit.default`: `<qubit>/probe`, `<qubit>/flux`).

Units: durations in ns (floats), frequencies in Hz, angles in rad, T1/T2 in ns. A gate's duration is its
sequence's duration as qibolab computes it (the longest channel: pulses, delays and readouts one after
the other; virtual Z's take no time, and an align read from a file synchronises only its own channel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ctrl.device.importers import MAX_SOURCE_BYTES, Imported, source_line
from ctrl.device.importers.qibolab import (
    DEFAULT_1Q_ERROR_FLOOR,
    DEFAULT_2Q_ERROR_FLOOR,
    DEFAULT_READOUT_ERROR,
    LAYOUT_SCALE,
    LAYOUT_SEED,
    Reader,
    coherence_limit_2q,
    default_error,
    device_name,
    fail,
    is_number,
    layout,
    load_document,
    names_list,
    one_qubit_gates,
    qubit_name,
    require_connected,
    scaled,
)
from ctrl.files import read_limited

CALIBRATION = "calibration.json"  # qibocal's file name (qibocal.calibration.calibration.CALIBRATION)
# qibocal's standard RB records the fidelity per Clifford; it counts 1.875 native pulses per Clifford
# (qibocal.protocols.randomized_benchmarking.utils.NPULSES_PER_CLIFFORD) to give a fidelity per pulse.
PULSES_PER_CLIFFORD = Decimal("1.875")
_TIMED = ("pulse", "delay", "acquisition")


def _dec(x) -> Decimal:
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(int(x))


def _seconds(ns: Decimal) -> float:
    return float(ns.scaleb(-9))


@dataclass(frozen=True)
class _Sequence:
    """One native gate's pulse sequence: its (channel, instruction) pairs and its duration."""

    path: str
    items: tuple[tuple[str, dict], ...]
    duration_ns: Decimal

    def of_kind(self, kind: str) -> list[tuple[str, dict]]:
        return [(ch, op) for ch, op in self.items if op["kind"] == kind]

    def first_on(self, channel: str) -> dict:
        return next(op for ch, op in self.items if ch == channel)


def _sequence(container: dict, key: str, path: str, r: Reader) -> _Sequence | None:
    """The native `key` of `container`, checked; None where it is null or absent (qibolab: not defined)."""
    items, path = container.get(key), f"{path}.{key}"
    if items is None:
        return None
    if not isinstance(items, list) or not all(
            isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], dict)
            and isinstance(x[1].get("kind"), str) for x in items):
        raise fail(r.source, f"{path}: expected a pulse sequence [[channel, {{kind: ...}}], ...]")
    per_channel: dict[str, Decimal] = {}
    for ch, op in items:
        kind = op["kind"]
        if kind in _TIMED:
            ns = _dec(r.num(op, "duration", f"{path}.{ch}.{kind}"))
        elif kind == "readout":
            acq = r.map(op, "acquisition", f"{path}.{ch}.readout.acquisition")
            ns = _dec(r.num(acq, "duration", f"{path}.{ch}.readout.acquisition"))
            ns += _dec(r.num(op, "time_of_flight", f"{path}.{ch}.readout", required=False) or 0)
        elif kind in ("virtualz", "align"):
            ns = Decimal(0)
        else:
            raise fail(r.source, f"{path}.{ch}: unknown instruction kind {kind!r} (pulse, delay, virtualz, "
                                 "readout, acquisition, align)"[:300])
        per_channel[ch] = per_channel.get(ch, Decimal(0)) + ns
    return _Sequence(path, tuple((ch, op) for ch, op in items), max(per_channel.values(), default=Decimal(0)))


def _envelope(pulse: dict, path: str, r: Reader):
    """(ctrl pulse or None, why not) for a qibolab 0.2 pulse: rectangular -> const; gaussian(rel_sigma) and
    drag(rel_sigma, beta) -> sigma = rel_sigma * duration (qibolab's sigma is relative to the duration)."""
    amplitude = float(r.num(pulse, "amplitude", path))
    env = r.map(pulse, "envelope", path + ".envelope")
    kind = env.get("kind")
    if kind == "rectangular":
        return {"shape": "const", "amplitude": amplitude}, None
    if kind in ("gaussian", "drag"):
        rel = r.num(env, "rel_sigma", path + ".envelope")
        sigma = _seconds(_dec(rel) * _dec(r.num(pulse, "duration", path)))
        if kind == "gaussian":
            return {"shape": "gaussian", "amplitude": amplitude, "sigma_s": sigma}, None
        beta = r.num(env, "beta", path + ".envelope")
        return {"shape": "drag", "amplitude": amplitude, "sigma_s": sigma, "drag_coefficient": beta + 0.0}, None
    return None, f"envelope {kind}"


def _one_pulse(seq: _Sequence, r: Reader):
    """(channel, pulse dict, ctrl pulse or None, why not) of a sequence that should be one drive pulse."""
    pulses = seq.of_kind("pulse")
    if not pulses:
        raise fail(r.source, f"{seq.path}: no pulse in the sequence")
    ch, op = pulses[0]
    if len(seq.items) != 1:
        return ch, op, None, f"{len(seq.items)} instructions"
    return (ch, op) + _envelope(op, f"{seq.path}.{ch}", r)


def _calibration(source: str):
    """(calibration.json beside `source` as a mapping, its header line), or ({}, None) where there is none."""
    path = Path(source).parent / CALIBRATION
    if not path.is_file():
        return {}, None
    raw = read_limited(path, MAX_SOURCE_BYTES, "qibocal calibration")
    doc, _ = load_document(raw, CALIBRATION)
    if not isinstance(doc, dict):
        raise fail(CALIBRATION, "expected qibocal's calibration (a mapping with single_qubits, two_qubits)")
    return doc, source_line(raw, str(path))


def _measure(d: dict, key: str, path: str, r: Reader):
    """The mean of a qibocal [mean, error] measure; None where null, absent or 0 (qibocal: not measured)."""
    v = d.get(key)
    if v is None:
        return None
    if not (isinstance(v, list) and len(v) == 2 and (v[0] is None or is_number(v[0]))):
        raise fail(r.source, f"{path}.{key}: expected [mean, error] numbers, got {v!r}"[:300])
    return v[0] or None


def convert(doc: dict, raw: bytes, source: str, r: Reader) -> Imported:
    natives = r.map(doc, "native_gates", "native_gates")
    single = r.map(natives, "single_qubit", "native_gates.single_qubit")
    two = r.map(natives, "two_qubit", "native_gates.two_qubit", required=False)
    coupler_natives = r.map(natives, "coupler", "native_gates.coupler", required=False)
    configs = r.map(doc, "configs", "configs")
    settings = r.map(doc, "settings", "settings", required=False)
    cal, cal_line = _calibration(source)
    cr = Reader(CALIBRATION)
    cal_single = cr.map(cal, "single_qubits", "single_qubits", required=False)
    cal_two = cr.map(cal, "two_qubits", "two_qubits", required=False)

    names: dict[str, str] = {}
    # an element with neither RX nor MZ is no qubit ctrl can use: a coupler listed among the qubits (older
    # files), or a qubit not calibrated yet
    idle = [q for q in single if all(r.map(single, q, f"native_gates.single_qubit.{q}").get(k) is None
                                     for k in ("RX", "MZ"))]
    for q in single:
        if q in idle:
            continue
        n = qubit_name(q)
        if n in names.values():
            raise fail(r.source, f"native_gates.single_qubit: ids {q!r} and another both become the name {n}")
        names[q] = n
    if not names:
        raise fail(r.source, "native_gates.single_qubit: no qubit with an RX and an MZ")

    def config_number(channel: str | None, key: str):
        if channel is None or channel not in configs:
            return None
        return r.num(r.map(configs, channel, f"configs.{channel}"), key, f"configs.{channel}", required=False)

    header = [source_line(raw, source)]
    header.append(cal_line.replace("imported from", "coherence and fidelities from") if cal_line else
                  f"no {CALIBRATION} beside it: T1, T2, readout and gate fidelities not measured")
    header.append("format: qibolab 0.2 parameters.json; ns -> s, Hz and rad kept; platform.py not read")
    renamed = [f"{q} -> {n}" for q, n in names.items() if not (q.isdigit() and n == f"Q{q}") and q != n]
    header.append("qubit names: Q<id> for numeric ids, other ids kept" +
                  (f"; sanitised: {names_list(renamed)}" if renamed else ""))

    relax = r.num(settings, "relaxation_time", "settings", required=False)
    reset = {"method": "passive", "duration_s": scaled(relax, -9)} if relax else None

    qubits, t12, drive_of = [], {}, {}
    notes: dict[str, list[str]] = {k: [] for k in (
        "f_cal", "f_differs", "anh_cal", "no_probe", "probe_cal", "no_thr", "ro_fid", "ro_default", "rb",
        "rx90", "no_pulse", "spectator_z", "drag", "no_t2", "unusable")}
    for q, n in names.items():
        p = f"native_gates.single_qubit.{q}"
        nat = r.map(single, q, p)
        cq = cr.map(cal_single, q, f"single_qubits.{q}", required=False)
        cal_qubit = cr.map(cq, "qubit", f"single_qubits.{q}.qubit", required=False)
        rx = _sequence(nat, "RX", p, r)
        mz = _sequence(nat, "MZ", p, r)
        if rx is None or mz is None:
            raise fail(r.source, f"{p}: RX and MZ are needed (the x180 and the readout), got null")
        entry = {"name": n, "position": None}

        t1 = _measure(cq, "t1", f"single_qubits.{q}", cr)
        t2r = _measure(cq, "t2", f"single_qubits.{q}", cr)
        t2e = _measure(cq, "t2_spin_echo", f"single_qubits.{q}", cr)
        if t1 is None:
            entry["usable"] = False
            entry["note"] = f"imported: T1 not measured (no {CALIBRATION}, or its t1 is null or 0)"
            notes["unusable"].append(n)

        drive, rx_op, pulse, why = _one_pulse(rx, r)
        drive_of[drive] = n
        f01 = config_number(drive, "frequency")
        f01_cal = cr.num(cal_qubit, "frequency_01", f"single_qubits.{q}.qubit", required=False) or None
        if f01 is None and f01_cal is not None:
            f01 = f01_cal
            notes["f_cal"].append(n)
        elif f01 is not None and f01_cal is not None and f01_cal != f01:
            notes["f_differs"].append(n)
        if f01 is not None:
            entry["frequency_hz"] = float(f01)
        rx12 = _sequence(nat, "RX12", p, r)
        f12 = config_number(rx12.of_kind("pulse")[0][0], "frequency") if rx12 and rx12.of_kind("pulse") else None
        if f12 is None:
            f12 = cr.num(cal_qubit, "frequency_12", f"single_qubits.{q}.qubit", required=False) or None
            if f12 is not None:
                notes["anh_cal"].append(n)
        if f01 is not None and f12 is not None:
            entry["anharmonicity_hz"] = float(f12) - float(f01)  # exact: two floats within a factor 2
        if t1 is not None:
            entry["t1_s"] = scaled(t1, -9)
        if t2r is not None:
            entry["t2_ramsey_s"] = scaled(t2r, -9)
        if t2e is not None:
            entry["t2_echo_s"] = scaled(t2e, -9)
        if t2r is None and t2e is None:
            notes["no_t2"].append(n)
        t1_s, t2_s = entry.get("t1_s"), entry.get("t2_ramsey_s", entry.get("t2_echo_s"))
        t12[n] = (t1_s, t2_s)

        if pulse is None:
            notes["no_pulse"].append(f"{n} RX ({why})")
        elif pulse["shape"] == "drag":
            notes["drag"].append(n)
        amp = float(r.num(rx_op, "amplitude", f"{p}.RX.{drive}"))
        entry["x90"], entry["x180"] = one_qubit_gates(_seconds(rx.duration_ns), t1_s, t2_s, pulse, amp)
        rx90 = _sequence(nat, "RX90", p, r)
        if rx90 is not None:
            ch90, op90, pulse90, why90 = _one_pulse(rx90, r)
            amp90 = float(r.num(op90, "amplitude", f"{p}.RX90.{ch90}"))
            # its own pulse at its own amplitude, the default error over its own duration
            entry["x90"] = one_qubit_gates(_seconds(rx90.duration_ns), t1_s, t2_s, pulse90, amp90)[1]
            if pulse90 is None:
                notes["no_pulse"].append(f"{n} RX90 ({why90})")
            notes["rx90"].append(n)
        rb = _measure(cq, "rb_fidelity", f"single_qubits.{q}", cr)
        if rb is not None:
            err = float((1 - _dec(rb)) / PULSES_PER_CLIFFORD)
            entry["x90"]["error"] = entry["x180"]["error"] = err
            notes["rb"].append(n)

        entry["readout"] = _readout(mz, n, q, cq, cr, configs, config_number, reset, notes, r)
        qubits.append(entry)

    couplers, gate_pairs, left_out = [], [], []
    measured_2q = []
    for key, gates in two.items():
        parts = key.split("-")
        path = f"native_gates.two_qubit.{key}"
        if len(parts) != 2 or not all(x in single for x in parts):
            raise fail(r.source, f"{path}: expected 'a-b' with a and b among native_gates.single_qubit "
                                 f"({names_list(single, 6)})")
        gates = r.map(two, key, path)
        if parts[0] in idle or parts[1] in idle:
            left_out += [f"{kind} on {key} (no RX and MZ on {' '.join(x for x in parts if x in idle)})"
                         for kind, seq in gates.items() if seq]
            continue
        a, b = names[parts[0]], names[parts[1]]
        for kind in gates:
            seq = _sequence(gates, kind, path, r)
            if seq is None:
                continue
            if not seq.items:
                left_out.append(f"{kind} on {a}-{b} (empty: not calibrated)")
            elif kind not in ("CZ", "iSWAP"):
                left_out.append(f"{kind} on {a}-{b}")
            else:
                gate = _two_qubit_gate(seq, kind, (a, b), (parts[0], parts[1]), names, drive_of, t12, notes, r)
                fid = _two_qubit_fidelity(cal_two, key, cr) if kind == "CZ" else None
                if fid is not None:
                    gate["error"] = float(1 - _dec(fid))
                    measured_2q.append(f"{a}-{b}")
                couplers.append(gate)
                gate_pairs.append((a, b))
    require_connected(r, list(names.values()), gate_pairs, "CZ and iSWAP gates",
                      "import a platform whose CZ or iSWAP natives connect every qubit",
                      f" (two-qubit natives left out: {names_list(left_out, 6)})" if left_out else "")

    pos = layout(list(names.values()), gate_pairs)
    for entry in qubits:
        entry["position"] = pos[entry["name"]]

    header.append(f"positions: not in the parameters; networkx spring layout of the gates (seed {LAYOUT_SEED}), "
                  f"scaled by {LAYOUT_SCALE:g}, rounded to 0.001")
    if idle:
        header.append(f"elements without RX and MZ left out (couplers, or qubits not calibrated): {names_list(idle)}")
    header += _header(notes, t12, reset, relax, couplers, measured_2q, left_out, coupler_natives)
    # a platform is known by its folder's name; every 0.2 platform's file is called parameters.json
    folder = Path(source).absolute().parent.name
    data = {"schema_version": 3, "name": device_name(folder if Path(source).name == "parameters.json" and folder
                                                     else source)}
    data["calibration"] = {"qubits": qubits, "couplers": couplers}
    return Imported(data, tuple(header))


def _readout(mz: _Sequence, n: str, q: str, cq: dict, cr: Reader, configs: dict, config_number,
             reset, notes, r: Reader) -> dict:
    reads = mz.of_kind("readout")
    if len(reads) != 1:
        raise fail(r.source, f"{mz.path}: expected one readout instruction, got {len(reads)}")
    acq_ch, op = reads[0]
    probe = r.map(op, "probe", f"{mz.path}.{acq_ch}.probe")
    acq = r.map(op, "acquisition", f"{mz.path}.{acq_ch}.acquisition")
    ro: dict = {}
    probe_ch = acq_ch[: -len("acquisition")] + "probe" if acq_ch.endswith("/acquisition") else None
    f = config_number(probe_ch, "frequency")
    res = cr.map(cq, "resonator", f"single_qubits.{q}.resonator", required=False)
    f_cal = cr.num(res, "dressed_frequency", f"single_qubits.{q}.resonator", required=False) or None
    if f is None and f_cal is not None:
        f = f_cal
        notes["probe_cal"].append(n)
    if f is not None:
        ro["frequency_hz"] = float(f)
    else:
        notes["no_probe"].append(n)
    pulse, why = _envelope(probe, f"{mz.path}.{acq_ch}.probe", r)
    if pulse is not None:
        ro["pulse"] = pulse
    else:
        notes["no_pulse"].append(f"{n} MZ ({why})")
    ro["pulse_duration_s"] = scaled(r.num(probe, "duration", f"{mz.path}.{acq_ch}.probe"), -9)
    ro["window_s"] = scaled(r.num(acq, "duration", f"{mz.path}.{acq_ch}.acquisition"), -9)
    where = f"configs.{acq_ch}"
    acq_cfg = r.map(configs, acq_ch, where, required=False)
    delay = r.num(acq_cfg, "delay", where, required=False)
    if delay is not None:
        ro["time_of_flight_s"] = scaled(delay, -9)
    iq, thr = r.num(acq_cfg, "iq_angle", where, required=False), r.num(acq_cfg, "threshold", where, required=False)
    if iq is not None:
        ro["iq_rotation_rad"] = float(iq)
    if thr is not None:
        ro["threshold"] = float(thr)
    if iq is None or thr is None:
        notes["no_thr"].append(n)
    rd = cr.map(cq, "readout", f"single_qubits.{q}.readout", required=False)
    fid = cr.num(rd, "fidelity", f"single_qubits.{q}.readout", required=False)
    if fid:
        e = float((1 - _dec(fid)) / 2)
        notes["ro_fid"].append(n)
    else:
        e = DEFAULT_READOUT_ERROR
        notes["ro_default"].append(n)
    ro["error_0to1"] = ro["error_1to0"] = e
    if reset is not None:
        ro["reset"] = dict(reset)
    return ro


def _two_qubit_gate(seq: _Sequence, kind: str, pair: tuple[str, str], ids: tuple[str, str], names: dict,
                    drive_of: dict, t12: dict, notes: dict, r: Reader) -> dict:
    a, b = pair
    duration_s = _seconds(seq.duration_ns)
    gate = {"qubits": [a, b], "gate": kind.lower(), "duration_s": duration_s,
            "error": default_error(DEFAULT_2Q_ERROR_FLOOR, coherence_limit_2q(duration_s, t12[a], t12[b]))}
    if kind == "iSWAP":
        gate["swap_angle_rad"], gate["conditional_phase_rad"] = math.pi / 2, 0.0
    phases: dict[str, float] = {}
    for ch, op in seq.of_kind("virtualz"):
        if ch not in drive_of:
            raise fail(r.source, f"{seq.path}.{ch}: virtual Z on a channel that is no qubit's RX channel")
        ph = float(r.num(op, "phase", f"{seq.path}.{ch}"))
        phases[drive_of[ch]] = phases[drive_of[ch]] + ph if drive_of[ch] in phases else ph
    # ctrl's gates correct only their own two qubits: a parked spectator's phase is reported instead
    for q in sorted(set(phases) - {a, b}):
        notes["spectator_z"].append(f"{kind} {a}-{b} on {q} ({phases.pop(q)!r} rad)")
    if phases:
        gate["phase_corrections_rad"] = phases
    pulses = seq.of_kind("pulse")
    owner = {f"{q}/flux": names[q] for q in ids}  # qibolab's default flux channel names
    why = f"{len(pulses)} pulses: {', '.join(sorted(c for c, _ in pulses))}"
    if len(pulses) == 1:
        ch, op = pulses[0]
        # ctrl plays a gate's flux pulse from the gate's start to its end
        if ch not in owner:
            why = f"pulse on {ch}"
        elif seq.first_on(ch) is not op or _dec(r.num(op, "duration", f"{seq.path}.{ch}")) != seq.duration_ns:
            why = f"{ch} pulse not the whole gate"
        else:
            shape, why = _envelope(op, f"{seq.path}.{ch}", r)
            if shape is not None:
                gate["flux_pulse"] = {"element": owner[ch], "pulse": shape}
                return gate
    notes["no_pulse"].append(f"{kind} {a}-{b} ({why})")
    return gate


def _two_qubit_fidelity(cal_two: dict, key: str, cr: Reader):
    a, b = key.split("-")
    for k in (key, f"{b}-{a}"):
        got = _measure(cr.map(cal_two, k, f"two_qubits.{k}", required=False), "cz_fidelity", f"two_qubits.{k}", cr)
        if got is not None:
            return got
    return None


def _header(notes, t12, reset, relax, couplers, measured_2q, left_out, coupler_natives) -> list[str]:
    h = ["frequency_hz: the frequency config of the RX pulse's channel" +
         (f" ({CALIBRATION} frequency_01 on {names_list(notes['f_cal'])}, where that config has none)"
          if notes["f_cal"] else "")]
    if notes["f_differs"]:
        h.append(f"  {CALIBRATION} frequency_01 differs from the RX channel's on {names_list(notes['f_differs'])}")
    h.append("anharmonicity_hz: RX12 channel's frequency - RX channel's" +
             (f" ({CALIBRATION} frequency_12 on {names_list(notes['anh_cal'])})" if notes["anh_cal"] else "") +
             "; the RX12 pulse itself has no ctrl field")
    h.append("readout: the MZ readout's probe (frequency from the config of <qubit>/probe, qibolab's default name), "
             "window = its acquisition, time_of_flight = the acquisition config's delay")
    if notes["probe_cal"]:
        h.append(f"  readout.frequency_hz: {CALIBRATION} resonator dressed_frequency (no probe config) on "
                 f"{names_list(notes['probe_cal'])}")
    if notes["no_probe"]:
        h.append(f"  readout.frequency_hz: left out (no probe config) on {names_list(notes['no_probe'])}")
    h.append("x180: RX (duration = the sequence's, amplitude; gaussian/drag: sigma = rel_sigma * duration, "
             "drag_coefficient = beta; rectangular: const)")
    if notes["drag"]:
        h.append(f"  DRAG: qibolab's beta copied as drag_coefficient on {names_list(notes['drag'])}; "
                 "qibolab's and QICK's DRAG conventions may differ in scale: check before playing it")
    if len(notes["rx90"]) == len(t12):
        h.append("x90: RX90")
    else:
        h.append("x90: " + (f"RX90 on {names_list(notes['rx90'])}; elsewhere " if notes["rx90"] else "") +
                 "RX at half amplitude, as qibolab 0.2 plays R(pi/2) without RX90")
    if notes["rb"]:
        h.append(f"x90/x180 error: (1 - rb_fidelity) / {PULSES_PER_CLIFFORD} ({CALIBRATION}: qibocal's standard RB, "
                 f"per Clifford, {PULSES_PER_CLIFFORD} pulses per Clifford) on {names_list(notes['rb'])}")
    h.append(f"gate errors: DEFAULTS, NOT MEASURED{' elsewhere' if notes['rb'] or measured_2q else ''}: "
             f"max({DEFAULT_1Q_ERROR_FLOOR:g}, coherence limit over the gate) for x90/x180, "
             f"max({DEFAULT_2Q_ERROR_FLOOR:g}, coherence limit of both qubits) for CZ and iSWAP; "
             "coherence limit = amplitude and phase damping from T1 and T2")
    if measured_2q:
        h.append(f"CZ error: 1 - cz_fidelity ({CALIBRATION}, interleaved RB) on {names_list(measured_2q)}")
    if notes["ro_fid"]:
        h.append(f"readout errors: error_0to1 = error_1to0 = (1 - fidelity)/2 ({CALIBRATION}; qibocal's "
                 f"assignment fidelity is (1 + fidelity)/2) on {names_list(notes['ro_fid'])}")
    if notes["ro_default"]:
        h.append(f"readout errors: DEFAULT {DEFAULT_READOUT_ERROR:g} each, NOT MEASURED (no readout fidelity) on "
                 f"{names_list(notes['ro_default'])}")
    if notes["no_thr"]:
        h.append(f"readout threshold or iq_rotation_rad: left out (null in the acquisition config) on "
                 f"{names_list(notes['no_thr'])}")
    if notes["no_t2"]:
        h.append(f"T2: not measured on {names_list(notes['no_t2'])}")
    h.append("reset: " + (f"passive, settings.relaxation_time ({relax} ns)" if reset else
                          "settings.relaxation_time absent or 0: left out"))
    if notes["unusable"]:
        h.append(f"usable: false (T1 not measured): {names_list(notes['unusable'])}")
    if notes["no_pulse"]:
        h.append(f"pulses left out (ctrl shapes: rectangular -> const, gaussian, drag; a gate's flux pulse must be "
                 f"its one pulse, on <qubit>/flux, over the whole gate): {names_list(notes['no_pulse'], 8)}")
    if couplers:
        h.append("CZ, iSWAP: duration = the sequence's; flux_pulse = its one pulse on <qubit>/flux (qibolab's "
                 "default name); phase_corrections_rad = its virtual Z's; iSWAP: swap angle pi/2 and conditional "
                 "phase 0 by definition; CZ conditional phase not in the parameters")
    if notes["spectator_z"]:
        h.append(f"virtual Z's on qubits outside the pair left out: {names_list(notes['spectator_z'], 6)}")
    if left_out:
        h.append(f"two-qubit gates left out (only CZ and iSWAP are imported): {names_list(left_out)}")
    if coupler_natives:
        h.append(f"coupler natives left out (which pair a coupler serves is in platform.py): "
                 f"{names_list(coupler_natives)}")
    h.append("left out: wiring, channel configs other than frequencies and the acquisition's, RX12 pulses")
    return h
