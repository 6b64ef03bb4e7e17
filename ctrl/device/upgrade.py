"""Schema upgrades: raw data of an older `schema_version` to the current one, before validation.

Each step is a pure function of the data (a fresh copy is made) that also moves the line/column marks of
the fields it moves, so messages about an upgraded file still point at the right line of the old file.
Steps never guess: a field with an unexpected shape is left alone and validation reports it.

History
- 1 (draft format): `wiring.decision_latency_s`; one symmetric `readout.assignment_error` per qubit.
- 2: `wiring.controller` {readout_to_decision_latency_s, inter_board_latency_s, alignment};
  `readout.error_0to1` and `readout.error_1to0` separately.
- 3: optional what labs often lack (frequencies, T2s, pulses, readout window and threshold, reset) and
  the whole `wiring`; several two-qubit gates per pair (per kind, per cross-resonance control); gate
  `rzz`; `calibration.static_zz`. Every v2 file is a v3 file with another version number.
"""

from __future__ import annotations

import copy

from ctrl.device.model import SCHEMA_VERSION
from ctrl.device.source import Marks


def _v1_to_v2(data: dict, marks: Marks) -> dict:
    wiring = data.get("wiring")
    if isinstance(wiring, dict) and "decision_latency_s" in wiring and "controller" not in wiring:
        boards = wiring.get("boards")
        multi = isinstance(boards, list) and len(boards) > 1
        wiring["controller"] = {
            "readout_to_decision_latency_s": wiring.pop("decision_latency_s"),
            # v1 only ever ran several boards from one shared reference
            "alignment": {"reference": "shared" if multi else "independent"},
        }
        marks.move(("wiring", "decision_latency_s"), ("wiring", "controller", "readout_to_decision_latency_s"))
    cal = data.get("calibration")
    qubits = cal.get("qubits") if isinstance(cal, dict) else None
    for i, q in enumerate(qubits if isinstance(qubits, list) else ()):
        ro = q.get("readout") if isinstance(q, dict) else None
        if isinstance(ro, dict) and "assignment_error" in ro:
            p = ro.pop("assignment_error")
            ro.setdefault("error_0to1", p)
            ro.setdefault("error_1to0", p)
            base = ("calibration", "qubits", i, "readout")
            for new in ("error_0to1", "error_1to0"):
                for table in (marks.values, marks.keys):
                    if base + ("assignment_error",) in table:
                        table[base + (new,)] = table[base + ("assignment_error",)]
    data["schema_version"] = 2
    return data


def _v2_to_v3(data: dict, marks: Marks) -> dict:
    data["schema_version"] = 3
    return data


UPGRADES = {1: _v1_to_v2, 2: _v2_to_v3}  # from-version -> step to the next version


def upgrade(data: object, marks: Marks) -> tuple[object, str | None]:
    """Return (data at SCHEMA_VERSION, problem). The problem names a version this code cannot read."""
    if not isinstance(data, dict):
        return data, None
    v = data.get("schema_version")
    if v is None:
        return data, None  # validation reports the missing field
    if isinstance(v, bool) or not isinstance(v, int):
        return data, f"schema_version must be an integer 1..{SCHEMA_VERSION}, got {v!r}"
    if v > SCHEMA_VERSION:
        return data, f"version {v} is newer than this ctrl reads (1..{SCHEMA_VERSION}): update ctrl"
    if v < 1:
        return data, f"schema_version must be 1..{SCHEMA_VERSION}, got {v}"
    if v == SCHEMA_VERSION:
        return data, None
    data = copy.deepcopy(data)
    while data["schema_version"] < SCHEMA_VERSION:
        data = UPGRADES[data["schema_version"]](data, marks)
    return data, None
