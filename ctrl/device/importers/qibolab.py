"""qibolab platform parameters (format `qibolab`): qibolab 0.1.x runcards here, qibolab >= 0.2
`parameters.json` in `qibolab02` (told apart by their content: a 0.1 runcard lists `qubits`, 0.2
parameters have `configs`).

    ctrl import qibolab parameters.json --out chip.yaml

qibolab 0.1.x runcards: `qubits`, `topology`, `native_gates.single_qubit` {RX, MZ},
`native_gates.two_qubit` {"a-b": {CZ: [flux pulses, virtual_z ...]}}, `characterization.single_qubit`,
`settings.relaxation_time`, as JSON (parameters.json) or YAML (the older runcard.yml). A file with neither
shape is refused with one line naming it.

Units: qibolab 0.1 gives durations and coherence times in ns, frequencies in Hz, angles in rad. qibolab
writes 0 for what it has not measured (T2: 0.0, assignment_fidelity: 0.0, anharmonicity: 0), so a 0 there
is read as unknown, not as a measurement; a threshold and an IQ angle that are both exactly 0 are the
uncalibrated defaults and are left out too.

What the runcard does not give and the device file requires is filled in with the documented defaults
below and said so in the header: gate errors (runcards carry no benchmarking), and readout errors when no
fidelity was measured. Layout positions are computed from the topology.
"""

from __future__ import annotations

import functools
import json
import math
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import networkx as nx
import yaml

from ctrl.device.importers import Imported, source_line
from ctrl.errors import CtrlError

# Gate errors are required by the device file but absent from qibolab runcards. The default is never
# better than the coherence limit of the gate (amplitude and phase damping over its duration, below),
# nor better than a fixed floor typical of a working but un-benchmarked transmon gate: 1e-3 for a
# single-qubit gate, 1e-2 for a CZ. Taking the larger of the two keeps the default pessimistic: the
# coherence limit alone is the best the qubit could do, the floor alone ignores a short T1.
DEFAULT_1Q_ERROR_FLOOR = 1e-3
DEFAULT_2Q_ERROR_FLOOR = 1e-2
# Readout error per state when the runcard has no fidelity: a few percent is what an uncalibrated but
# working dispersive readout gives; 5 % is on the pessimistic side of published transmon numbers.
DEFAULT_READOUT_ERROR = 0.05
LAYOUT_SEED = 1
LAYOUT_SCALE = 10.0

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_SHAPE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$")


# ------------------------------------------------------------------------------------- shared helpers


class Fail(CtrlError):
    """A malformed source: the message is one line naming the file."""


def fail(source: str, msg: str) -> Fail:
    return Fail(f"{source}: {msg}".replace("\n", " "))


def scaled(x, exponent: int) -> float:
    """x * 10**exponent computed on the decimal spelling of x, then rounded once to the nearest float:
    4210 ns -> 4.21e-06 s exactly as if 4.21e-06 had been written (x * 1e-9 would give 4.2100000000000006e-06)."""
    try:
        return float(Decimal(repr(x) if isinstance(x, float) else int(x)).scaleb(exponent))
    except (InvalidOperation, ValueError, OverflowError):
        raise ValueError(f"{x!r} is not a number") from None


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def device_name(source: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(source).stem)[:64] or "imported"
    return stem if stem[0].isalnum() else ("d" + stem)[:64]


def qubit_name(qid) -> str:
    """'Q3' for id 3 or '3'; an id that is a valid name already ('q0', 'D1') is kept; anything else is
    sanitised ('q-0' -> 'q_0') and prefixed with Q if it does not start with a letter."""
    s = str(qid)
    if s.isdigit():
        return f"Q{s}"[:32]
    if _NAME.match(s):
        return s
    s = re.sub(r"[^A-Za-z0-9_]", "_", s)
    return (s if s[:1].isalpha() else "Q" + s)[:32]


def layout(names: list[str], edges: list[tuple[str, str]]) -> dict[str, list[float]]:
    """Deterministic positions: networkx spring layout with a fixed seed, scaled and rounded to 0.001."""
    g = nx.Graph()
    g.add_nodes_from(names)
    g.add_edges_from(edges)
    if len(names) == 1:
        return {names[0]: [0.0, 0.0]}
    pos = nx.spring_layout(g, seed=LAYOUT_SEED)
    return {n: [round(float(pos[n][0]) * LAYOUT_SCALE, 3) + 0.0, round(float(pos[n][1]) * LAYOUT_SCALE, 3) + 0.0]
            for n in names}


def coherence_limit_1q(duration_s: float, t1_s: float | None, t2_s: float | None) -> float:
    """Average gate infidelity of amplitude and phase damping over `duration_s` (one qubit):
    1 - (3 + exp(-t/T1) + 2 exp(-t/T2)) / 6. Unknown T1: 0 (nothing to add); unknown T2: T2 = T1."""
    if t1_s is None:
        return 0.0
    t2_s = t2_s if t2_s is not None else t1_s
    return 1.0 - (3.0 + math.exp(-duration_s / t1_s) + 2.0 * math.exp(-duration_s / t2_s)) / 6.0


def _process_fidelity(duration_s, t1_s, t2_s) -> float:
    if t1_s is None:
        return 1.0
    t2_s = t2_s if t2_s is not None else t1_s
    return (1.0 + math.exp(-duration_s / t1_s)) / 4.0 + math.exp(-duration_s / t2_s) / 2.0


def coherence_limit_2q(duration_s: float, a: tuple, b: tuple) -> float:
    """Average gate infidelity of both qubits damping independently over `duration_s`:
    1 - (4 F_a F_b + 1) / 5 with F the single-qubit process fidelities; a, b = (T1, T2)."""
    f = _process_fidelity(duration_s, *a) * _process_fidelity(duration_s, *b)
    return 1.0 - (4.0 * f + 1.0) / 5.0


def default_error(floor: float, limit: float) -> float:
    return max(floor, limit)


def names_list(names, limit: int = 12) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def require_connected(r: Reader, names: list[str], gate_pairs, gates: str, advice: str, extra: str = ""):
    """Fail (one line) unless the imported gates connect every qubit: ctrl needs one coupling graph.
    `extra`: what the source has between the groups, said after them."""
    g = nx.Graph()
    g.add_nodes_from(names)
    g.add_edges_from(gate_pairs)
    if len(g) > 1 and not nx.is_connected(g):
        comps = sorted((sorted(c, key=names.index) for c in nx.connected_components(g)),
                       key=lambda c: (-len(c), names.index(c[0])))
        cut = "; ".join(" ".join(c) for c in comps)
        raise fail(r.source, f"the {gates} leave the qubits in {len(comps)} unconnected groups ({cut}){extra}: "
                             f"ctrl needs one connected coupling graph; {advice}")


# ---------------------------------------------------------------------------------------------- qibolab


def one_qubit_gates(duration_s: float, t1_s, t2_s, pulse: dict | None, amp: float) -> tuple[dict, dict]:
    """(x90, x180) from a calibrated pi pulse: a pi/2 is the same envelope at half amplitude, and both get
    the default error (no lab file here measures one)."""
    err = default_error(DEFAULT_1Q_ERROR_FLOOR, coherence_limit_1q(duration_s, t1_s, t2_s))
    x180 = {"duration_s": duration_s, "error": err}
    x90 = {"duration_s": duration_s, "error": err}
    if pulse is not None:
        x180["pulse"] = pulse
        x90["pulse"] = dict(pulse, amplitude=amp / 2)
    return x90, x180


def load_document(raw: bytes, source: str):
    """(the parsed document, "JSON" or "YAML"), or one-line Fail naming `source`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise fail(source, f"not UTF-8 text (byte {e.start})") from None
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text), "JSON"
        except json.JSONDecodeError as e:
            raise fail(source, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        except RecursionError:
            raise fail(source, "nested too deeply to be a calibration file") from None
    try:
        return yaml.safe_load(text), "YAML"
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        what = getattr(e, "problem", None) or type(e).__name__
        raise fail(source, f"invalid YAML{where}: {what}") from None
    except RecursionError:
        raise fail(source, "nested too deeply to be a calibration file") from None


class Reader:
    """Typed access into the runcard with the path in every message."""

    def __init__(self, source: str):
        self.source = source

    def map(self, d, key, path, required=True) -> dict:
        v = d.get(key) if isinstance(d, dict) else None
        if v is None and not required:
            return {}
        if not isinstance(v, dict):
            raise fail(self.source, f"{path}: expected a mapping, got {type(v).__name__}")
        return {str(k): x for k, x in v.items()}

    def num(self, d, key, path, required=True):
        v = d.get(key) if isinstance(d, dict) else None
        if v is None and not required:
            return None
        if not is_number(v):
            raise fail(self.source, f"{path}.{key}: expected a number, got {v!r}"[:300])
        return v


def _shape(spec, duration_ns, amplitude, r: Reader, path: str):
    """(pulse dict or None, why not). Gaussian(r): sigma = duration / r; Drag(r, beta): sigma as Gaussian,
    drag_coefficient = beta; Rectangular(): const."""
    if not isinstance(spec, str):
        raise fail(r.source, f"{path}.shape: expected text like 'Gaussian(5)', got {spec!r}"[:300])
    m = _SHAPE.match(spec)
    if not m:
        raise fail(r.source, f"{path}.shape: cannot read {spec!r}: expected Name(arguments)"[:300])
    kind, args = m.group(1), [a.strip() for a in m.group(2).split(",") if a.strip()]
    try:
        nums = [float(a) for a in args]
    except ValueError:
        return None, f"shape {spec} has non-numeric arguments"
    if kind == "Rectangular" and not nums:
        return {"shape": "const", "amplitude": amplitude}, None
    if kind in ("Gaussian", "Drag") and len(nums) == (1 if kind == "Gaussian" else 2) and nums[0] > 0:
        sigma = float((Decimal(int(duration_ns)) if isinstance(duration_ns, int) else Decimal(repr(duration_ns)))
                      / Decimal(args[0]) * Decimal("1e-9"))
        if kind == "Gaussian":
            return {"shape": "gaussian", "amplitude": amplitude, "sigma_s": sigma}, None
        return {"shape": "drag", "amplitude": amplitude, "sigma_s": sigma, "drag_coefficient": nums[1] + 0.0}, None
    return None, f"shape {spec} has no ctrl equivalent (const, gaussian, drag, flat_top, net_zero)"


def convert(raw: bytes, source: str) -> Imported:
    doc, syntax = load_document(raw, source)
    name = Path(source).name
    if not isinstance(doc, dict):
        raise fail(name, "expected qibolab platform parameters (a mapping with native_gates, ...)")
    if "qubits" in doc:
        version = functools.partial(_convert, syntax=syntax)
    elif "configs" in doc:
        # deferred: qibolab02 builds on the helpers of this module
        from ctrl.device.importers import qibolab02

        version = qibolab02.convert
    elif "single_qubits" in doc:
        raise fail(name, "this is a qibocal calibration.json: import the parameters.json beside it (the "
                         "calibration is read from the same folder)")
    else:
        raise fail(name, "neither a qibolab 0.1 runcard (no 'qubits' list) nor qibolab >= 0.2 parameters "
                         "(no 'configs' mapping)")
    try:
        return version(doc, raw, source, Reader(name))
    except Fail:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError, OverflowError) as e:
        raise fail(name, f"unexpected structure: {e}"[:300]) from None


def _convert(doc: dict, raw: bytes, source: str, r: Reader, syntax: str) -> Imported:
    ids = doc.get("qubits")
    if not isinstance(ids, list) or not ids:
        raise fail(r.source, "qubits: expected a non-empty list of qubit ids")
    for q in ids:
        if not (isinstance(q, str) or (isinstance(q, int) and not isinstance(q, bool))):
            raise fail(r.source, f"qubits: qubit id {q!r} is neither an integer nor a name"[:300])
    natives = r.map(doc, "native_gates", "native_gates")
    single = r.map(natives, "single_qubit", "native_gates.single_qubit")
    two = r.map(natives, "two_qubit", "native_gates.two_qubit", required=False)
    chars = r.map(r.map(doc, "characterization", "characterization", required=False),
                  "single_qubit", "characterization.single_qubit", required=False)
    settings = r.map(doc, "settings", "settings", required=False)

    names: dict[str, str] = {}
    for q in ids:
        n = qubit_name(q)
        if str(q) in names:
            raise fail(r.source, f"qubits: qubit id {q!r} listed twice")
        if n in names.values():
            raise fail(r.source, f"qubits: ids {q!r} and another both become the name {n}")
        names[str(q)] = n

    header = [source_line(raw, source),
              f"format: qibolab 0.1 runcard ({syntax}); ns -> s, Hz and rad kept; qibolab's 0 = not measured"]
    renamed = [f"{q} -> {n}" for q, n in names.items() if not (q.isdigit() and n == f"Q{q}") and q != n]
    header.append("qubit names: Q<id> for numeric ids, other ids kept" +
                  (f"; sanitised: {names_list(renamed)}" if renamed else ""))

    relax = r.num(settings, "relaxation_time", "settings", required=False)
    reset = {"method": "passive", "duration_s": scaled(relax, -9)} if relax else None

    qubits, t12 = [], {}
    notes = {"drive_differs": [], "ro_differs": [], "no_t2": [], "ro_default": [], "ro_assign": [], "ro_fid": [],
             "no_pulse": [], "drag": [], "anh_flip": [], "no_thr": [], "unusable": []}
    for q in map(str, ids):
        n = names[q]
        nat = r.map(single, q, f"native_gates.single_qubit.{q}")
        ch = r.map(chars, q, f"characterization.single_qubit.{q}", required=False)
        p = f"native_gates.single_qubit.{q}"
        rx = r.map(nat, "RX", p + ".RX")
        mz = r.map(nat, "MZ", p + ".MZ")

        def known(key, d=ch, where=f"characterization.single_qubit.{q}"):
            v = r.num(d, key, where, required=False)
            return v if v else None  # 0: not measured

        t1 = known("T1")
        t2r, t2e = known("T2"), known("T2_spin_echo")
        entry = {"name": n, "position": None}
        if t1 is None:
            entry["usable"] = False
            entry["note"] = "imported: T1 not measured in the runcard (0 or absent)"
            notes["unusable"].append(n)
        drive = known("drive_frequency")
        rx_f = known("frequency", rx, p + ".RX")
        if drive is not None:
            entry["frequency_hz"] = float(drive)
            if rx_f is not None and rx_f != drive:
                notes["drive_differs"].append(n)
        elif rx_f is not None:
            entry["frequency_hz"] = float(rx_f)
        anh = known("anharmonicity")
        if anh is not None:
            entry["anharmonicity_hz"] = -float(abs(anh))
            if anh > 0:
                notes["anh_flip"].append(n)
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

        dur = r.num(rx, "duration", p + ".RX")
        amp = float(r.num(rx, "amplitude", p + ".RX"))
        duration_s = scaled(dur, -9)
        pulse, why = _shape(rx.get("shape"), dur, amp, r, p + ".RX")
        if pulse is None:
            notes["no_pulse"].append(f"{n} RX ({why})")
        elif pulse["shape"] == "drag":
            notes["drag"].append(n)
        entry["x90"], entry["x180"] = one_qubit_gates(duration_s, t1_s, t2_s, pulse, amp)

        ro: dict = {}
        mz_f, ro_f = known("frequency", mz, p + ".MZ"), known("readout_frequency")
        if mz_f is not None:
            ro["frequency_hz"] = float(mz_f)
            if ro_f is not None and ro_f != mz_f:
                notes["ro_differs"].append(n)
        elif ro_f is not None:
            ro["frequency_hz"] = float(ro_f)
        mz_dur = r.num(mz, "duration", p + ".MZ")
        mz_pulse, why = _shape(mz.get("shape"), mz_dur, float(r.num(mz, "amplitude", p + ".MZ")), r, p + ".MZ")
        if mz_pulse is not None:
            ro["pulse"] = mz_pulse
        else:
            notes["no_pulse"].append(f"{n} MZ ({why})")
        ro["pulse_duration_s"] = scaled(mz_dur, -9)
        thr = r.num(ch, "threshold", f"characterization.single_qubit.{q}", required=False)
        iq = r.num(ch, "iq_angle", f"characterization.single_qubit.{q}", required=False)
        if thr == 0 and iq == 0:
            thr = iq = None
            notes["no_thr"].append(n)
        if iq is not None:
            ro["iq_rotation_rad"] = float(iq)
        if thr is not None:
            ro["threshold"] = float(thr)
        fa, fr = known("assignment_fidelity"), known("readout_fidelity")
        if fa is not None:
            e = 1.0 - fa
            notes["ro_assign"].append(n)
        elif fr is not None:
            e = (1.0 - fr) / 2.0
            notes["ro_fid"].append(n)
        else:
            e = DEFAULT_READOUT_ERROR
            notes["ro_default"].append(n)
        ro["error_0to1"] = ro["error_1to0"] = e
        if reset is not None:
            ro["reset"] = dict(reset)
        entry["readout"] = ro
        qubits.append(entry)

    couplers, left_out, gate_pairs = [], [], []
    for key, gates in two.items():
        parts = key.split("-")
        if len(parts) != 2 or parts[0] not in names or parts[1] not in names:
            raise fail(r.source, f"native_gates.two_qubit.{key}: expected 'a-b' with a and b among the qubits")
        a, b = names[parts[0]], names[parts[1]]
        if not isinstance(gates, dict):
            raise fail(r.source, f"native_gates.two_qubit.{key}: expected a mapping of gates")
        for kind in sorted(k for k in gates if k != "CZ"):
            left_out.append(f"{kind} on {a}-{b}")
        if "CZ" not in gates:
            continue
        seq = gates["CZ"]
        path = f"native_gates.two_qubit.{key}.CZ"
        if not isinstance(seq, list) or not all(isinstance(x, dict) for x in seq):
            raise fail(r.source, f"{path}: expected a list of pulses")
        flux = [x for x in seq if x.get("type") != "virtual_z"]
        if not flux:
            left_out.append(f"CZ on {a}-{b} (no flux pulse)")
            continue
        end = max((r.num(x, "relative_start", path, required=False) or 0) + r.num(x, "duration", path) for x in flux)
        duration_s = scaled(end, -9)
        gate = {"qubits": [a, b], "gate": "cz", "duration_s": duration_s,
                "error": default_error(DEFAULT_2Q_ERROR_FLOOR, coherence_limit_2q(duration_s, t12[a], t12[b]))}
        phases: dict[str, float] = {}
        for x in seq:
            if x.get("type") == "virtual_z":
                qz = str(x.get("qubit"))
                if qz not in names:
                    raise fail(r.source, f"{path}: virtual_z on unknown qubit {x.get('qubit')!r}"[:300])
                ph = float(r.num(x, "phase", path))
                phases[names[qz]] = phases[names[qz]] + ph if names[qz] in phases else ph
        if phases:
            gate["phase_corrections_rad"] = phases
        f = flux[0]
        if len(flux) == 1 and f.get("type") == "qf" and str(f.get("qubit")) in names and not f.get("relative_start"):
            shape, why = _shape(f.get("shape"), f["duration"], float(r.num(f, "amplitude", path)), r, path)
            if shape is not None:
                gate["flux_pulse"] = {"element": names[str(f.get("qubit"))], "pulse": shape}
            else:
                notes["no_pulse"].append(f"CZ {a}-{b} ({why})")
        else:
            notes["no_pulse"].append(f"CZ {a}-{b} ({len(flux)} flux pulse(s) of types "
                                     f"{sorted({str(x.get('type')) for x in flux})}: not one qubit flux pulse)")
        couplers.append(gate)
        gate_pairs.append((a, b))

    topo = doc.get("topology") or []
    if not isinstance(topo, list):
        raise fail(r.source, "topology: expected a list of qubit pairs")
    topo_pairs = []
    for e in topo:
        if not (isinstance(e, list) and len(e) == 2 and all(str(x) in names for x in e)):
            raise fail(r.source, f"topology: {e!r} is not a pair of the runcard's qubits"[:300])
        topo_pairs.append((names[str(e[0])], names[str(e[1])]))
    gated = {frozenset(p) for p in gate_pairs}
    no_gate = [f"{a}-{b}" for a, b in topo_pairs if frozenset((a, b)) not in gated]

    require_connected(r, list(names.values()), gate_pairs, "CZ gates", "import a runcard whose CZs connect every qubit",
                      f" (topology pairs without a CZ: {names_list(no_gate)})" if no_gate else "")

    pos = layout(list(names.values()), topo_pairs + gate_pairs)
    for entry in qubits:
        entry["position"] = pos[entry["name"]]

    header += [
        (f"positions: not in the runcard; networkx spring layout of the topology (seed {LAYOUT_SEED}), "
        f"scaled by {LAYOUT_SCALE:g}, rounded to 0.001"),
        "frequency_hz: characterization drive_frequency (RX frequency where that is 0 or absent)",
    ]
    if notes["drive_differs"]:
        header.append(f"  RX plays at another frequency than drive_frequency on {names_list(notes['drive_differs'])}")
    header.append("readout.frequency_hz: MZ frequency (characterization readout_frequency where that is 0 or absent)")
    if notes["ro_differs"]:
        header.append(f"  characterization readout_frequency differs from MZ on {names_list(notes['ro_differs'])}")
    if notes["anh_flip"]:
        header.append(f"anharmonicity_hz: the runcard's positive anharmonicity taken as a magnitude, written "
                      f"negative (f12 - f01) on {names_list(notes['anh_flip'])}")
    header.append("x180: RX (duration, amplitude; Gaussian(r): sigma = duration/r, Drag(r, beta): sigma likewise "
                  "and drag_coefficient = beta, Rectangular: const)")
    if notes["drag"]:
        header.append(f"  DRAG: qibolab's beta copied as drag_coefficient on {names_list(notes['drag'])}; "
                      "qibolab's and QICK's DRAG conventions may differ in scale: check before playing it")
    header.append("x90: not in the runcard; qibolab 0.1 plays RX90 as RX at half amplitude: same duration and "
                  "shape, half the amplitude")
    header.append(f"gate errors: DEFAULTS, NOT MEASURED (the runcard has none): max({DEFAULT_1Q_ERROR_FLOOR:g}, "
                  f"coherence limit over the gate) for x90/x180, max({DEFAULT_2Q_ERROR_FLOOR:g}, coherence limit of "
                  "both qubits) for CZ; coherence limit = amplitude and phase damping from T1 and T2")
    if notes["ro_assign"]:
        header.append(f"readout errors: error_0to1 = error_1to0 = 1 - assignment_fidelity (only the average is "
                      f"given) on {names_list(notes['ro_assign'])}")
    if notes["ro_fid"]:
        header.append(f"readout errors: error_0to1 = error_1to0 = (1 - readout_fidelity)/2 on "
                      f"{names_list(notes['ro_fid'])}")
    if notes["ro_default"]:
        header.append(f"readout errors: DEFAULT {DEFAULT_READOUT_ERROR:g} each, NOT MEASURED (no fidelity in the "
                      f"runcard) on {names_list(notes['ro_default'])}")
    if notes["no_thr"]:
        header.append(f"readout threshold and iq_rotation_rad: left out (both 0: uncalibrated) on "
                      f"{names_list(notes['no_thr'])}")
    if notes["no_t2"]:
        header.append(f"T2: not measured on {names_list(notes['no_t2'])}")
    header.append("reset: " + (f"passive, settings.relaxation_time ({relax} ns)" if reset else
                               "not in the runcard (settings.relaxation_time absent or 0): left out"))
    if notes["unusable"]:
        header.append(f"usable: false (T1 not measured): {names_list(notes['unusable'])}")
    if notes["no_pulse"]:
        header.append(f"pulses left out: {names_list(notes['no_pulse'], 6)}")
    if couplers:
        header.append("CZ: duration = the flux pulse's end, flux_pulse from it, phase_corrections_rad from its "
                      "virtual_z phases; conditional phase not in the runcard")
    if no_gate:
        header.append(f"topology pairs without a CZ (no coupler written): {names_list(no_gate)}")
    if left_out:
        header.append(f"two-qubit gates left out (only CZ is imported): {names_list(left_out)}")
    header.append("left out (not in the runcard): readout window, time of flight, wiring")

    data = {"schema_version": 3, "name": device_name(source)}
    desc = doc.get("description")
    if isinstance(desc, str) and desc.strip():
        data["description"] = " ".join(desc.split())
    data["calibration"] = {"qubits": qubits, "couplers": couplers}
    return Imported(data, tuple(header))
