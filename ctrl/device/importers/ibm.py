"""IBM backend properties (qiskit's `BackendProperties.to_dict()`, the `props_*.json` of the fake backends).

    {backend_name, backend_version, last_update_date,
     qubits: [[{date, name, unit, value}, ...] per qubit],
     gates: [{qubits, gate, parameters: [{name: gate_error | gate_length, unit, value}], name}],
     general: [{name: jq_AB | zz_AB | lf_N, unit, value}], general_qlists}

Qubit i becomes `Q{i}`. Every measured number is converted to SI by the unit its entry names (division by
an exact power of ten for ns, us, ms; multiplication for kHz, MHz, GHz: the result is the correctly rounded
SI value) and written exactly. What IBM does not give (positions, pulses, the QICK side of the readout) is
computed or left out, and the file's header says which. A number outside ctrl's plausible range is never
clamped silently: the qubit or gate is marked `usable: false` with a note, and an optional field leaves the
number out; a required one is replaced by the nearest plausible value, said in the note and the header.
"""

from __future__ import annotations

import json
import math
import re
import statistics

import networkx as nx

from ctrl.device import units as u
from ctrl.device.checks import DEFAULT_FREQUENCY_GUARD_HZ
from ctrl.device.importers import Imported, source_line
from ctrl.device.model import SCHEMA_VERSION
from ctrl.errors import CtrlError

# unit -> (dimension, multiply, divide): SI = value * multiply / divide, each factor exact in binary
UNITS = {
    "s": ("time", 1, 1), "ms": ("time", 1, 10**3), "us": ("time", 1, 10**6), "µs": ("time", 1, 10**6),
    "μs": ("time", 1, 10**6), "ns": ("time", 1, 10**9), "ps": ("time", 1, 10**12),
    "Hz": ("frequency", 1, 1), "kHz": ("frequency", 10**3, 1), "MHz": ("frequency", 10**6, 1),
    "GHz": ("frequency", 10**9, 1),
    "": ("number", 1, 1),
}
QUBIT_PARAMETERS = {  # IBM name -> dimension
    "T1": "time", "T2": "time", "frequency": "frequency", "anharmonicity": "frequency",
    "readout_error": "number", "prob_meas0_prep1": "number", "prob_meas1_prep0": "number",
    "readout_length": "time", "operational": "number",
}
GATE_PARAMETERS = {"gate_error": "number", "gate_length": "time", "operational": "number"}
TWO_QUBIT_KINDS = ("ecr", "cx", "cz", "rzz")
UNREADABLE_READOUT = 0.4  # readout_error at or above this: the qubit reads (nearly) at random


def _fail(source: str, msg: str):
    raise CtrlError(f"{source}: {msg}")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def to_si(value: float, unit: str) -> float:
    """`value` in `unit` as SI (a unit of UNITS)."""
    _, mul, div = UNITS[unit]
    try:
        x = float(value)
    except OverflowError:  # an integer beyond any float: implausible wherever it stands
        x = math.inf if value > 0 else -math.inf
    return x * mul / div if mul != 1 else (x / div if div != 1 else x)


class _Reader:
    """One IBM properties document, checked entry by entry; problems name the file and the entry."""

    def __init__(self, raw: bytes, source: str):
        self.source = source
        try:
            doc = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            _fail(source, f"not UTF-8 text ({e.reason} at byte {e.start}), expected IBM backend properties JSON")
        except json.JSONDecodeError as e:
            _fail(source, f"not JSON ({e.msg} at line {e.lineno} column {e.colno}), expected IBM backend properties")
        except RecursionError:
            _fail(source, "not IBM backend properties: JSON nested too deeply")
        if not isinstance(doc, dict):
            _fail(source, f"expected IBM backend properties (a JSON object), got a JSON {type(doc).__name__}")
        for key, kind in (("qubits", list), ("gates", list)):
            if not isinstance(doc.get(key), kind):
                _fail(source, f"expected IBM backend properties: '{key}' must be a list"
                              + ("" if key in doc else " and is missing"))
        if not doc["qubits"]:
            _fail(source, "no qubits listed")
        self.doc = doc

    def text(self, key: str) -> str | None:
        v = self.doc.get(key)
        if v is not None and not isinstance(v, str):
            _fail(self.source, f"'{key}' must be text, got {json.dumps(v)[:40]}")
        return v

    def parameter(self, entry, where: str, dims: dict) -> tuple[str, float, str] | None:
        """(name, SI value, unit) of one {name, unit, value} entry; None for a parameter not in `dims`."""
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            _fail(self.source, f"{where}: expected an object with name, unit and value, got {json.dumps(entry)[:60]}")
        name = entry["name"]
        if name not in dims:
            return None
        unit, value = entry.get("unit", ""), entry.get("value")
        if not isinstance(unit, str):
            _fail(self.source, f"{where} {name}: the unit must be text, got {json.dumps(unit)[:40]}")
        if not _number(value):
            _fail(self.source, f"{where} {name}: the value must be a number, got {json.dumps(value)[:40]}")
        if unit not in UNITS:
            _fail(self.source, f"{where} {name}: unknown unit {unit!r} (known: {', '.join(repr(k) for k in UNITS)})")
        if UNITS[unit][0] != dims[name]:
            _fail(self.source, f"{where} {name}: unit {unit!r} is not a {dims[name]} unit")
        return name, to_si(value, unit), unit

    def parameters(self, entries, where: str, dims: dict) -> tuple[dict, set]:
        """({name: SI value}, names not imported) of a parameter list."""
        if not isinstance(entries, list):
            _fail(self.source, f"{where}: expected a list of parameters, got {json.dumps(entries)[:60]}")
        out, ignored = {}, set()
        for j, e in enumerate(entries):
            p = self.parameter(e, f"{where} parameter {j}", dims)
            if p is None:
                ignored.add(e["name"])
                continue
            if p[0] in out:
                _fail(self.source, f"{where}: parameter {p[0]} given twice")
            out[p[0]] = p[1]
        return out, ignored


def _sanitised_name(name: str | None) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]", "_", name or "")
    s = re.sub(r"^[^A-Za-z0-9]+", "", s)[:64]
    return s or "ibm_backend"


def _layout(n: int, edges) -> list[list[float]]:
    """Deterministic 2-D positions: Kamada-Kawai of the coupling graph, scaled so the median coupler is 1
    long, rounded to 3 decimals."""
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(sorted(edges))
    if n == 1:
        return [[0.0, 0.0]]
    pos = nx.kamada_kawai_layout(g)
    lengths = sorted(math.dist(pos[a], pos[b]) for a, b in g.edges)
    scale = 1.0 / statistics.median(lengths) if lengths and statistics.median(lengths) > 0 else 1.0
    return [[round(float(pos[i][0]) * scale, 3) + 0.0, round(float(pos[i][1]) * scale, 3) + 0.0] for i in range(n)]


class _Item:
    """A qubit or gate being built: its fields, and why it is unusable (notes)."""

    def __init__(self, what: str):
        self.what = what
        self.reasons: list[str] = []

    def bad(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)


def _plausible(item: _Item, field: str, value: float, q: u.Quantity, required: bool, fixes: list) -> float | None:
    """`value` if plausible; otherwise `item` becomes unusable, and the value is left out (None) or, if
    `required`, replaced by the nearest plausible one (said in `fixes`)."""
    problem = q.problem(value)
    if problem is None:
        return value
    if not required:
        item.bad(f"{field} {u.fmt(value)} left out: {problem}")
        return None
    near = min(max(value, q.lo), q.hi) if math.isfinite(value) else q.hi
    if q.min_abs and abs(near) < q.min_abs:
        near = math.copysign(q.min_abs, near or 1.0)
    item.bad(f"{field} {u.fmt(value)} replaced by {u.fmt(near)}: {problem}")
    fixes.append(f"{item.what} {field}")
    return near


def convert(raw: bytes, source: str) -> Imported:
    r = _Reader(raw, source)
    doc = r.doc
    backend, version, updated = r.text("backend_name"), r.text("backend_version"), r.text("last_update_date")
    n = len(doc["qubits"])
    fixes: list[str] = []  # required numbers replaced by a plausible one
    ignored: set[str] = set()

    # ------------------------------------------------------------------ per-qubit parameters and gates
    qparams = []
    for i, entries in enumerate(doc["qubits"]):
        p, skip = r.parameters(entries, f"qubit {i}", QUBIT_PARAMETERS)
        qparams.append(p)
        ignored |= {f"qubit parameter {s}" for s in skip}
    one_q: dict[tuple[str, int], dict] = {}
    two_q: list[tuple[int, str, tuple[int, int], dict]] = []  # (order, kind, (a, b), params)
    ignored_gates: set[str] = set()
    for k, g in enumerate(doc["gates"]):
        if not isinstance(g, dict) or not isinstance(g.get("gate"), str) or not isinstance(g.get("qubits"), list):
            _fail(source, f"gate {k}: expected an object with gate, qubits and parameters, got {json.dumps(g)[:60]}")
        kind, qs = g["gate"], g["qubits"]
        where = f"gate {k} ({kind} on {qs})"
        if not qs or not all(isinstance(q, int) and not isinstance(q, bool) and 0 <= q < n for q in qs):
            _fail(source, f"{where}: qubits must be indices 0..{n - 1}")
        params, skip = r.parameters(g.get("parameters", []), where, GATE_PARAMETERS)
        ignored |= {f"gate parameter {s}" for s in skip}
        if len(qs) == 1 and kind in ("sx", "x", "reset"):
            if (kind, qs[0]) in one_q:
                _fail(source, f"{where}: {kind} on qubit {qs[0]} listed twice")
            one_q[(kind, qs[0])] = params
        elif len(qs) == 2 and kind in TWO_QUBIT_KINDS:
            if qs[0] == qs[1]:
                _fail(source, f"{where}: a two-qubit gate on one qubit")
            two_q.append((k, kind, (qs[0], qs[1]), params))
        else:
            ignored_gates.add(kind)

    edges = {tuple(sorted(pair)) for _, _, pair, _ in two_q}

    # ------------------------------------------------------------------ qubits
    def median_of(kind: str, field: str) -> float | None:
        vals = [p[field] for (k, _), p in sorted(one_q.items()) if k == kind and field in p]
        return statistics.median(vals) if vals else None

    x_from_sx, readout_from_total = [], []
    unmeasured: dict[str, list[str]] = {}
    qubits, q_items = [], []
    for i, p in enumerate(qparams):
        it = _Item(f"Q{i}")
        q: dict = {"name": f"Q{i}", "position": None}
        if "operational" in p and p["operational"] == 0:
            it.bad("operational = 0 in the IBM properties")
        for ibm, field, quantity in (("frequency", "frequency_hz", u.QUBIT_FREQUENCY),
                                     ("anharmonicity", "anharmonicity_hz", u.ANHARMONICITY),
                                     ("T1", "t1_s", u.COHERENCE), ("T2", "t2_echo_s", u.COHERENCE)):
            if ibm in ("frequency", "anharmonicity") and p.get(ibm) == 0:
                unmeasured.setdefault(ibm, []).append(it.what)  # Heron snapshots give 0: not measured
            elif ibm in p:
                v = _plausible(it, field, p[ibm], quantity, False, fixes)
                if v is not None:
                    q[field] = v
            elif ibm in ("T1", "T2"):
                it.bad(f"no {ibm} in the IBM properties")
        # single-qubit gates
        sx, x = one_q.get(("sx", i)), one_q.get(("x", i))
        gates = {}
        for name, params, base in (("x90", sx, None), ("x180", x, sx)):
            if params is not None and "gate_length" in params and "gate_error" in params:
                d, e = params["gate_length"], params["gate_error"]
            elif params is None and base is not None and "gate_length" in base and "gate_error" in base:
                d, e = base["gate_length"] * 2, base["gate_error"] * 2
                x_from_sx.append(it.what)
            else:
                kind = "sx" if name == "x90" else "x"
                med = median_of(kind, "gate_length") or median_of("sx", "gate_length")
                if med is None:
                    _fail(source, f"no gate_length of any sx or x gate: cannot give {it.what} its single-qubit gates")
                d, e = (med if kind == "sx" else med * (1 if median_of("x", "gate_length") else 2)), 1.0
                it.bad(f"no {kind} gate_length and gate_error in the IBM properties: {name} is a placeholder "
                       f"(median duration, error 1)")
                fixes.append(f"{it.what} {name}")
            if e >= 1:
                it.bad(f"{name} gate_error {u.fmt(e)} (IBM marks a broken gate with 1)")
            gates[name] = {
                "duration_s": _plausible(it, f"{name}.duration_s", d, u.GATE_1Q, True, fixes),
                "error": _plausible(it, f"{name}.error", e, u.PROBABILITY, True, fixes),
            }
            if params and params.get("operational", 1) == 0:
                it.bad(f"{name}'s gate operational = 0 in the IBM properties")
        # readout
        total = p.get("readout_error")
        e01, e10 = p.get("prob_meas1_prep0"), p.get("prob_meas0_prep1")
        if (e01 is None or e10 is None) and total is not None:
            readout_from_total.append(it.what)
            e01 = total if e01 is None else e01
            e10 = total if e10 is None else e10
        if e01 is None or e10 is None:
            it.bad("no readout errors in the IBM properties: 0.5 each (reads at random) put in their place")
            fixes.append(f"{it.what} readout errors")
            e01 = 0.5 if e01 is None else e01
            e10 = 0.5 if e10 is None else e10
        level = total if total is not None else (e01 + e10) / 2
        if level >= UNREADABLE_READOUT:
            it.bad(f"readout_error {u.fmt(level)} >= {UNREADABLE_READOUT}: reads (nearly) at random")
        length = p.get("readout_length")
        if length is None:
            meds = [qp["readout_length"] for qp in qparams if "readout_length" in qp]
            if not meds:
                _fail(source, f"no readout_length on any qubit: cannot give {it.what} a readout duration")
            length = statistics.median(meds)
            it.bad("no readout_length in the IBM properties: the median of the other qubits put in its place")
            fixes.append(f"{it.what} readout.pulse_duration_s")
        readout = {
            "pulse_duration_s": _plausible(it, "readout.pulse_duration_s", length, u.READOUT_TIME, True, fixes),
            "error_0to1": _plausible(it, "readout.error_0to1", e01, u.PROBABILITY, True, fixes),
            "error_1to0": _plausible(it, "readout.error_1to0", e10, u.PROBABILITY, True, fixes),
        }
        reset = one_q.get(("reset", i))
        if reset is not None and "gate_length" in reset:
            d = _plausible(it, "readout.reset.duration_s", reset["gate_length"], u.RESET_TIME, False, fixes)
            if d is not None:
                readout["reset"] = {"method": "active", "duration_s": d}
        q.update(gates)
        q["readout"] = readout
        qubits.append(q)
        q_items.append(it)

    # ------------------------------------------------------------------ two-qubit gates
    entries: dict[tuple, tuple] = {}  # (pair, kind, control) -> (error, duration, order, ibm kind, params)
    merged: dict[str, int] = {}
    for order, kind, (a, b), params in two_q:
        ctrl_kind = "ecr" if kind in ("ecr", "cx") else kind
        key = (tuple(sorted((a, b))), ctrl_kind, a if ctrl_kind == "ecr" else None)
        cand = (params.get("gate_error", math.inf), params.get("gate_length", math.inf), order, kind, params, (a, b))
        if key in entries:
            merged[kind] = merged.get(kind, 0) + 1
            if cand[:3] < entries[key][:3]:
                entries[key] = cand
        else:
            entries[key] = cand
    couplers = []
    g_items = []
    for key in sorted(entries, key=lambda k: (k[0], k[1], -1 if k[2] is None else k[2])):
        pair, kind, control = key
        err, dur, _, ibm_kind, params, (a, b) = entries[key]
        what = f"{ibm_kind} Q{a}-Q{b}"
        it = _Item(what)
        c: dict = {"qubits": [f"Q{a}", f"Q{b}"], "gate": kind}
        if control is not None:
            c["control"] = f"Q{control}"
        if params.get("operational", 1) == 0:
            it.bad("operational = 0 in the IBM properties")
        if "gate_error" not in params:
            it.bad("no gate_error in the IBM properties: error 1 put in its place")
            fixes.append(f"{what} error")
            err = 1.0
        if "gate_length" not in params:
            same = [v[4]["gate_length"] for k2, v in sorted(entries.items()) if k2[1] == kind and "gate_length" in v[4]]
            if not same:
                _fail(source, f"no gate_length of any {ibm_kind} gate: cannot give {what} a duration")
            dur = statistics.median(same)
            it.bad(f"no gate_length in the IBM properties: the median of the {kind} gates put in its place")
            fixes.append(f"{what} duration")
        if err >= 1:
            it.bad(f"gate_error {u.fmt(err)} (IBM marks a broken gate with 1)")
        c["duration_s"] = _plausible(it, "duration_s", dur, u.GATE_2Q, True, fixes)
        c["error"] = _plausible(it, "error", err, u.PROBABILITY, True, fixes)
        couplers.append(c)
        g_items.append(it)

    # frequency collisions of coupled qubits (ctrl validate refuses them on usable pairs): the pair's gates
    # are marked unusable, as IBM keeps such pairs but they are no place for the protocol's gates
    collided = 0
    for c, it in zip(couplers, g_items):
        qa, qb = (qubits[int(n[1:])] for n in c["qubits"])
        fa, fb = qa.get("frequency_hz"), qb.get("frequency_hz")
        if fa is None or fb is None:
            continue
        near = abs(fa - fb) < DEFAULT_FREQUENCY_GUARD_HZ or any(
            y.get("anharmonicity_hz") is not None
            and abs(x["frequency_hz"] - (y["frequency_hz"] + y["anharmonicity_hz"])) < DEFAULT_FREQUENCY_GUARD_HZ
            for x, y in ((qa, qb), (qb, qa))
        )
        if near:
            it.bad(f"frequency collision of {qa['name']} and {qb['name']} (within {DEFAULT_FREQUENCY_GUARD_HZ / 1e6:g} "
                   "MHz, 0-1 or 0-1 vs 1-2)")
            collided += 1

    # ------------------------------------------------------------------ static ZZ
    zz, zz_zero, zz_ambiguous, zz_bad, zz_dupe = [], 0, [], [], 0
    ignored_general: set[str] = set()
    general = doc.get("general", [])
    if not isinstance(general, list):
        _fail(source, f"'general' must be a list, got {json.dumps(general)[:40]}")
    seen_zz: set = set()
    for k, e in enumerate(general):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            _fail(source, f"general entry {k}: expected an object with name, unit and value, got {json.dumps(e)[:60]}")
        m = re.fullmatch(r"zz_(\d+)", e["name"])
        if not m:
            ignored_general.add(re.sub(r"\d+$", "", e["name"]) + ("N" if re.search(r"\d$", e["name"]) else ""))
            continue
        _, v, _ = r.parameter(e, f"general entry {k}", {e["name"]: "frequency"})
        if v == 0:
            zz_zero += 1
            continue
        pair = zz_pair(m.group(1), n, edges)
        if pair is None:
            zz_ambiguous.append(e["name"])
            continue
        if u.STATIC_ZZ.problem(v) is not None:
            zz_bad.append(f"{e['name']} = {u.fmt(v)} Hz")
            continue
        if pair in seen_zz:
            zz_dupe += 1
            continue
        seen_zz.add(pair)
        zz.append({"qubits": [f"Q{pair[0]}", f"Q{pair[1]}"], "zz_hz": v})
    zz.sort(key=lambda z: [int(s[1:]) for s in z["qubits"]])

    # ------------------------------------------------------------------ assemble
    positions = _layout(n, edges)
    for q, it, xy in zip(qubits, q_items, positions):
        q["position"] = xy
    for items, rows in ((q_items, qubits), (g_items, couplers)):
        for it, row in zip(items, rows):
            if it.reasons:
                head = {k: v for k, v in row.items() if k in ("name", "position", "qubits", "gate", "control")}
                rest = {k: v for k, v in row.items() if k not in head}
                row.clear()
                row.update(head | {"usable": False, "note": "; ".join(it.reasons)} | rest)

    calibration: dict = {}
    if updated is not None:
        calibration["calibrated_at"] = updated
    calibration["qubits"] = qubits
    calibration["couplers"] = couplers
    if zz:
        calibration["static_zz"] = zz
    data = {
        "schema_version": SCHEMA_VERSION,
        "name": _sanitised_name(backend),
        "description": f"IBM backend properties of {backend or 'an unnamed backend'}, last update {updated or 'not given'}",
        "calibration": calibration,
    }

    kinds = sorted({k for _, k, _, _ in two_q})
    header = [
        source_line(raw, source),
        f"IBM backend properties: {backend or 'unnamed'}" + (f" version {version}" if version else "")
        + f", last update {updated or 'not given'}; {n} qubits (qubit i is Q{{i}}), two-qubit gates: "
        + (", ".join(kinds) or "none"),
        ("every number converted to SI by its entry's unit, nothing rounded; positions are computed (IBM gives "
         "none): Kamada-Kawai layout of the coupling graph (networkx), median coupler length 1, 3 decimals"),
        "T2 is IBM's Hahn-echo T2 -> t2_echo_s; no t2_ramsey_s in IBM properties: the noise model uses T2E",
        ("readout: pulse_duration_s = readout_length, error_0to1 = prob_meas1_prep0, error_1to0 = prob_meas0_prep1; "
         "readout.reset: active, the reset gate's gate_length (where a reset gate is listed)"),
        "x90 = IBM's sx gate, x180 = its x gate (duration = gate_length, error = gate_error)",
    ]
    if x_from_sx:
        header.append(f"no x gate on {_names(x_from_sx)}: x180 = sx with twice its duration and error")
    if readout_from_total:
        header.append(f"no prob_meas1_prep0/prob_meas0_prep1 on {_names(readout_from_total)}: both readout errors "
                      "= readout_error")
    for ibm, names in sorted(unmeasured.items()):
        header.append(f"{ibm} exactly 0 on {_names(names)}: 0 means not measured in IBM properties, left out")
    if "cx" in kinds:
        header.append("cx imported as gate: ecr, control = the first qubit listed (IBM's CX is an echoed cross "
                      "resonance underneath); error and duration are the CX's, single-qubit corrections included "
                      "(a slight overestimate)")
    if "ecr" in kinds:
        header.append("ecr: one gate per direction listed, control = the first qubit listed")
    for kind, count in sorted(merged.items()):
        what = ("listed in both directions (symmetric)" if kind in ("cz", "rzz")
                else "listed twice for one direction (cx and ecr both become ecr)")
        header.append(f"{kind}: {count} pair(s) {what}: one entry kept per pair, the lower error")
    zz_line = (f"static_zz from the general zz_AB entries: {len(zz)} imported; {zz_zero} exactly-zero values "
               "skipped (0 means not measured in IBM properties)")
    if zz_ambiguous:
        zz_line += (f"; {len(zz_ambiguous)} skipped as names that match no coupled pair or several "
                    f"({', '.join(sorted(zz_ambiguous)[:5])}{', ...' if len(zz_ambiguous) > 5 else ''})")
    if zz_bad:
        zz_line += f"; {len(zz_bad)} implausible skipped ({', '.join(zz_bad[:3])}{', ...' if len(zz_bad) > 3 else ''})"
    if zz_dupe:
        zz_line += f"; {zz_dupe} repeated pair(s) skipped (the first kept)"
    header.append(zz_line)
    bad_q = [it.what for it in q_items if it.reasons]
    bad_g = [it.what for it in g_items if it.reasons]
    header.append(f"usable: false on {len(bad_q)} qubit(s) and {len(bad_g)} gate(s), each with a note saying why "
                  f"(operational 0, readout_error >= {UNREADABLE_READOUT}, gate_error >= 1, missing T1/T2, implausible "
                  "numbers" + (f", {collided} gate(s) on frequency-colliding pairs" if collided else "") + ")")
    if fixes:
        header.append(f"required numbers missing or implausible, replaced (and the qubit or gate unusable, see its "
                      f"note): {_names(fixes)}")
    left = sorted(ignored_gates) + sorted(ignored) + sorted(f"general {g}" for g in ignored_general)
    if left:
        header.append("not imported: " + ", ".join(
            f"gate {x}" if x in ignored_gates else x for x in left))
    header.append("no pulses, no readout frequency, window, threshold or IQ rotation: compile makes no QICK "
                  "programs without a wiring section")
    return Imported(data, tuple(header))


def zz_pair(digits: str, n: int, edges) -> tuple[int, int] | None:
    """The qubit pair of a `zz_<digits>` name: the one split of the digits into two indices (no leading zeros,
    below `n`) that is a coupled pair in `edges` ({(low, high)}); None if no split or several fit."""
    fits = set()
    for cut in range(1, len(digits)):
        a, b = digits[:cut], digits[cut:]
        if any(len(x) > 1 and x[0] == "0" for x in (a, b)):
            continue
        pair = tuple(sorted((int(a), int(b))))
        if pair[1] < n and pair in edges:
            fits.add(pair)
    return fits.pop() if len(fits) == 1 else None


def _names(items: list[str], most: int = 8) -> str:
    return ", ".join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")

