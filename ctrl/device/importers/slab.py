"""Schuster-lab `slab_qick_calib` configuration YAML (format `qick-lab`).

    ctrl import qick-lab llotsa05.yml --out llotsa05.yaml

The file keeps one list per quantity, indexed by qubit (`device.qubit.f_ge[i]` is qubit i's frequency),
in MHz and us, phases in degrees. Qubit i becomes `Q<i>`.

Such a file describes no two-qubit gates. ctrl needs a connected coupling graph (`ctrl/device/checks.py`
refuses a disconnected one), so a file with more than one qubit is refused with one line saying so rather
than imported with invented couplers; a one-qubit file imports.

Mapping (every measured number kept exactly, converted on its decimal spelling; 0 in a list is slab's
"not measured"):
- frequency_hz = f_ge MHz; anharmonicity_hz = f_ef - f_ge; t1_s, t2_ramsey_s (T2r), t2_echo_s (T2e) from us
- x180 = pulses.pi_ge {gain -> amplitude, sigma -> sigma_s, duration = sigma * sigma_inc, gauss -> gaussian};
  x90 = the same pulse at half the gain (slab_qick_calib plays pi/2 that way), said in the header
- readout: pulse const at `gain`, pulse_duration_s = window_s = readout_length, time_of_flight_s =
  trig_offset, iq_rotation_rad = phase (deg), threshold as is, frequency = LO + frequency where a readout LO
  is given (hw.soc.dacs.readout.lo_freq, or hw.soc.lo.mixer_freq), upper sideband assumed (the file does
  not say) and said in the header; with no LO the DAC synthesises the tone directly and `frequency` is it
- readout errors: slab's `fidelity` is the histogram contrast at the threshold, 1 - P(1|0) - P(0|1); split
  equally, error_0to1 = error_1to0 = (1 - fidelity) / 2 (only the sum is known)
- reset: active_reset -> active (duration unknown: left out, ctrl's default is one readout plus one x180,
  which is the active reset), else passive for final_delay
- tuned_up: false, or no T1 -> usable: false with a note
- gate errors: the defaults of `ctrl.device.importers.qibolab` (max of a floor and the coherence limit),
  said in the header as not measured
"""

from __future__ import annotations

import math
from decimal import Decimal


from ctrl.device.importers import Imported, source_line
from ctrl.device.importers.qibolab import (
    DEFAULT_1Q_ERROR_FLOOR,
    DEFAULT_READOUT_ERROR,
    Fail,
    device_name,
    fail,
    is_number,
    layout,
    load_document,
    names_list,
    one_qubit_gates,
    scaled,
)


def _dec(x) -> Decimal:
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(int(x))


class _Lists:
    """Per-qubit values of the file's lists, with the path in every message."""

    def __init__(self, source: str, n: int):
        self.source, self.n = source, n

    def section(self, d, path: str, required=True) -> dict:
        cur = d
        for key in path.split("."):
            cur = cur.get(key) if isinstance(cur, dict) else None
        if cur is None and not required:
            return {}
        if not isinstance(cur, dict):
            raise fail(self.source, f"{path}: expected a mapping")
        return cur

    def values(self, d: dict, key: str, path: str, kind="number", required=True) -> list:
        v = d.get(key)
        if v is None and not required:
            return [None] * self.n
        if not isinstance(v, list) or len(v) != self.n:
            got = f"{len(v)} values" if isinstance(v, list) else repr(v)[:40]
            raise fail(self.source, f"{path}.{key}: expected a list of {self.n} values (one per qubit), got {got}")
        for i, x in enumerate(v):
            ok = (is_number(x) if kind == "number" else isinstance(x, bool) if kind == "bool"
                  else isinstance(x, str) if kind == "text" else True)
            if not ok and not (kind == "number" and x in (None, "None")):
                raise fail(self.source, f"{path}.{key}[{i}]: expected a {kind}, got {x!r}"[:300])
        return [None if x == "None" else x for x in v]


def convert(raw: bytes, source: str) -> Imported:
    from pathlib import Path

    name = Path(source).name
    doc, _ = load_document(raw, name)  # a slab file is YAML (JSON reads as well)
    if not isinstance(doc, dict):
        raise fail(name, "expected a slab_qick_calib configuration (a mapping with device.qubit, device.readout)")
    try:
        return _convert(doc, raw, source, name)
    except Fail:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError, OverflowError) as e:
        raise fail(name, f"unexpected file structure: {e}"[:300]) from None


def _convert(doc: dict, raw: bytes, source: str, name: str) -> Imported:
    probe = _Lists(name, 0)
    qd = probe.section(doc, "device.qubit")
    rd = probe.section(doc, "device.readout")
    f_ge_raw = qd.get("f_ge")
    if not isinstance(f_ge_raw, list) or not f_ge_raw:
        raise fail(name, "device.qubit.f_ge: expected a non-empty list of qubit frequencies (MHz)")
    n = len(f_ge_raw)
    L = _Lists(name, n)
    if n > 1:
        raise fail(name, f"this file describes {n} qubits and no two-qubit gates: ctrl's protocol needs couplers "
                         "(a connected coupling graph), and a slab_qick_calib file has none to import")
    pi = L.section(doc, "device.qubit.pulses.pi_ge")
    f_ge = L.values(qd, "f_ge", "device.qubit")
    f_ef = L.values(qd, "f_ef", "device.qubit", required=False)
    t1 = L.values(qd, "T1", "device.qubit", required=False)
    t2r = L.values(qd, "T2r", "device.qubit", required=False)
    t2e = L.values(qd, "T2e", "device.qubit", required=False)
    tuned = L.values(qd, "tuned_up", "device.qubit", kind="bool", required=False)
    gain = L.values(pi, "gain", "device.qubit.pulses.pi_ge")
    sigma = L.values(pi, "sigma", "device.qubit.pulses.pi_ge")
    sigma_inc = L.values(pi, "sigma_inc", "device.qubit.pulses.pi_ge")
    ptype = L.values(pi, "type", "device.qubit.pulses.pi_ge", kind="text", required=False)
    ro_f = L.values(rd, "frequency", "device.readout", required=False)
    ro_gain = L.values(rd, "gain", "device.readout", required=False)
    ro_len = L.values(rd, "readout_length", "device.readout")
    trig = L.values(rd, "trig_offset", "device.readout", required=False)
    phase = L.values(rd, "phase", "device.readout", required=False)
    thr = L.values(rd, "threshold", "device.readout", required=False)
    fid = L.values(rd, "fidelity", "device.readout", required=False)
    active = L.values(rd, "active_reset", "device.readout", kind="bool", required=False)
    delay = L.values(rd, "final_delay", "device.readout", required=False)
    dacs = L.section(doc, "hw.soc.dacs.readout", required=False)
    lo_dac = L.values(dacs, "lo_freq", "hw.soc.dacs.readout", required=False)
    los = L.section(doc, "hw.soc.lo", required=False)
    lo_mix = L.values(los, "mixer_freq", "hw.soc.lo", required=False)
    lo_ch = L.values(los, "ch", "hw.soc.lo", kind="any", required=False)

    header = [source_line(raw, source),
              ("format: slab_qick_calib configuration (qick-lab); MHz -> Hz, us -> s, degrees -> rad; "
              "0 in a list = not measured"),
              "qubit names: Q<i> for list index i",
              "positions: not in the file; one qubit at [0, 0]"]
    notes: dict[str, list] = {k: [] for k in ("unusable", "lo", "direct", "no_ro_f", "ro_default", "no_pulse",
                                              "active", "passive", "no_reset")}
    qubits = []
    for i in range(n):
        q = f"Q{i}"

        def known(lst, i=i):
            return lst[i] if lst[i] else None  # 0 and None: not measured

        entry: dict = {"name": q, "position": None}
        reasons = []
        if tuned[i] is False:
            reasons.append("tuned_up: false")
        if known(t1) is None:
            reasons.append("no T1")
        if reasons:
            entry["usable"] = False
            entry["note"] = "imported: " + " and ".join(reasons) + " in the slab_qick_calib file"
            notes["unusable"].append(f"{q} ({', '.join(reasons)})")
        if known(f_ge) is not None:
            entry["frequency_hz"] = scaled(f_ge[i], 6)
        if known(f_ef) is not None and known(f_ge) is not None:
            entry["anharmonicity_hz"] = float((_dec(f_ef[i]) - _dec(f_ge[i])).scaleb(6))
        for key, lst in (("t1_s", t1), ("t2_ramsey_s", t2r), ("t2_echo_s", t2e)):
            if known(lst) is not None:
                entry[key] = scaled(lst[i], -6)
        t1_s = entry.get("t1_s")
        t2_s = entry.get("t2_ramsey_s", entry.get("t2_echo_s"))

        if not known(sigma) or not known(sigma_inc):
            raise fail(name, f"device.qubit.pulses.pi_ge: qubit {i} has no sigma or sigma_inc: its pi pulse length is unknown")
        duration_s = float((_dec(sigma[i]) * _dec(sigma_inc[i])).scaleb(-6))
        sigma_s = scaled(sigma[i], -6)
        amp = float(gain[i])
        kind = ptype[i] if ptype[i] is not None else "gauss"
        if kind == "gauss":
            pulse = {"shape": "gaussian", "amplitude": amp, "sigma_s": sigma_s}
        elif kind == "const":
            pulse = {"shape": "const", "amplitude": amp}
        else:
            pulse = None
            notes["no_pulse"].append(f"{q} pi_ge type {kind}")
        entry["x90"], entry["x180"] = one_qubit_gates(duration_s, t1_s, t2_s, pulse, amp)

        ro: dict = {}
        lo = known(lo_dac)
        if lo is None and known(lo_mix) is not None and lo_ch[i] not in (None, "None"):
            lo = lo_mix[i]
        if known(ro_f) is not None:
            if lo is not None:
                ro["frequency_hz"] = float((_dec(lo) + _dec(ro_f[i])).scaleb(6))
                notes["lo"].append(q)
            else:
                ro["frequency_hz"] = scaled(ro_f[i], 6)
                notes["direct"].append(q)
        else:
            notes["no_ro_f"].append(q)
        if ro_gain[i] is not None:
            ro["pulse"] = {"shape": "const", "amplitude": float(ro_gain[i])}
        ro["pulse_duration_s"] = scaled(ro_len[i], -6)
        ro["window_s"] = scaled(ro_len[i], -6)
        if trig[i] is not None:
            ro["time_of_flight_s"] = scaled(trig[i], -6)
        if phase[i] is not None:
            ro["iq_rotation_rad"] = math.radians(phase[i])
        if thr[i] is not None:
            ro["threshold"] = float(thr[i])
        if known(fid) is not None:
            ro["error_0to1"] = ro["error_1to0"] = (1.0 - fid[i]) / 2.0
        else:
            ro["error_0to1"] = ro["error_1to0"] = DEFAULT_READOUT_ERROR
            notes["ro_default"].append(q)
        if active[i]:
            notes["active"].append(q)
        elif known(delay) is not None:
            ro["reset"] = {"method": "passive", "duration_s": scaled(delay[i], -6)}
            notes["passive"].append(q)
        else:
            notes["no_reset"].append(q)
        entry["readout"] = ro
        qubits.append(entry)

    pos = layout([e["name"] for e in qubits], [])
    for e in qubits:
        e["position"] = pos[e["name"]]

    header += [
        "x180: pulses.pi_ge (gain -> amplitude, sigma, duration = sigma * sigma_inc, gauss -> gaussian)",
        "x90: not in the file; the pi_ge pulse at half the gain, same duration and sigma",
        (f"gate errors: DEFAULTS, NOT MEASURED (the file has none): max({DEFAULT_1Q_ERROR_FLOOR:g}, coherence "
        "limit over the gate from T1 and T2)"),
        ("readout: const pulse at readout gain; pulse_duration_s = window_s = readout_length; time_of_flight_s = "
        "trig_offset; iq_rotation_rad = phase; threshold as given"),
        ("readout errors: fidelity read as 1 - P(1|0) - P(0|1) (slab's histogram contrast); error_0to1 = "
        "error_1to0 = (1 - fidelity)/2, the split is not in the file"),
    ]
    if notes["lo"]:
        header.append(f"readout.frequency_hz: LO + readout frequency (upper sideband ASSUMED, the file does not say) "
                      f"on {names_list(notes['lo'])}")
    if notes["direct"]:
        header.append(f"readout.frequency_hz: readout frequency as given (no LO in hw.soc: direct synthesis) on "
                      f"{names_list(notes['direct'])}")
    if notes["no_ro_f"]:
        header.append(f"readout.frequency_hz: not measured, left out on {names_list(notes['no_ro_f'])}")
    if notes["ro_default"]:
        header.append(f"readout errors: DEFAULT {DEFAULT_READOUT_ERROR:g} each, NOT MEASURED (fidelity 0 or absent) "
                      f"on {names_list(notes['ro_default'])}")
    if notes["active"]:
        header.append(f"reset: active_reset, duration not in the file: left out (ctrl's default, one readout plus "
                      f"one x180) on {names_list(notes['active'])}")
    if notes["passive"]:
        header.append(f"reset: passive for final_delay on {names_list(notes['passive'])}")
    if notes["no_reset"]:
        header.append(f"reset: not in the file, left out on {names_list(notes['no_reset'])}")
    if notes["unusable"]:
        header.append(f"usable: false: {names_list(notes['unusable'])}")
    if notes["no_pulse"]:
        header.append(f"pulses left out (no ctrl shape): {names_list(notes['no_pulse'])}")
    header.append("left out (not in the file): two-qubit gates, wiring (hw.soc channel numbers need a firmware "
                  "description: give --wiring)")

    data = {"schema_version": 3, "name": device_name(source),
            "calibration": {"qubits": qubits, "couplers": []}}
    return Imported(data, tuple(header))
