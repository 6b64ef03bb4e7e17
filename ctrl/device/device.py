"""`Device`: a validated device file with its firmware summaries, lookups and content hashes."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import networkx as nx

from ctrl.device.firmware import FirmwareInfo, firmware_config
from ctrl.device.model import (COMPILED_KINDS, Calibration, CouplerWiring, DeviceFile, QubitCalibration, QubitWiring,
                               Wiring)  # fmt: skip
from ctrl.errors import CtrlError


def _pair_key(pair) -> tuple:
    return tuple(sorted(pair))


def canonical_calibration(cal: Calibration) -> str:
    """The calibration as canonical JSON: independent of key order, float spelling, list order of named
    things (qubits, couplers, exclusions) and the order of a coupler's two qubits."""
    d = cal.model_dump(mode="json")
    d["qubits"] = sorted(d["qubits"], key=lambda q: q["name"])
    for q in d["qubits"]:
        if q["readout"].get("ringdown_s") is None:
            q["readout"].pop("ringdown_s", None)  # a calibration without it keeps its hash
    for c in d["couplers"] + d["static_zz"]:
        c["qubits"] = sorted(c["qubits"])
    d["couplers"] = sorted(d["couplers"], key=lambda c: (c["qubits"], c["gate"], c.get("control") or ""))
    d["static_zz"] = sorted(d["static_zz"], key=lambda c: c["qubits"])
    if not d["static_zz"]:
        del d["static_zz"]  # a schema 2 calibration keeps its hash
    for ex in d["crosstalk_exclusions"]:
        ex["couplers"] = sorted(sorted(p) for p in ex["couplers"])
    d["crosstalk_exclusions"] = sorted(d["crosstalk_exclusions"], key=lambda e: json.dumps(e, sort_keys=True))
    return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_wiring(wiring: Wiring | None, firmware_sha256: Mapping[str, str]) -> str:
    """The wiring as canonical JSON, including the content hash of each board's firmware description."""
    if wiring is None:
        return "null"
    d = wiring.model_dump(mode="json")
    for b in d["boards"]:
        # The firmware by content, not by path: a copy of the device file elsewhere is the same wiring.
        b["firmware"] = None
        b["firmware_sha256"] = firmware_sha256.get(b["name"])
    d["boards"] = sorted(d["boards"], key=lambda b: b["name"])
    d["qubits"] = sorted(d["qubits"], key=lambda q: q["name"])
    for q in d["qubits"]:
        if q["readout"].get("ringdown_s") is None:
            q["readout"].pop("ringdown_s", None)  # a calibration without it keeps its hash
    for c in d["couplers"]:
        c["qubits"] = sorted(c["qubits"])
    d["couplers"] = sorted(d["couplers"], key=lambda c: c["qubits"])
    return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chosen_gates(couplers) -> dict:
    """Pair -> the gate the compiler uses there: of the usable gates of a kind it compiles, the one of least
    error (then shortest, then by kind and control, so the choice is stable); a pair with none such keeps
    its best entry anyway, so that messages name what is there."""
    by_pair: dict[frozenset, list] = {}
    for c in couplers:
        by_pair.setdefault(frozenset(c.qubits), []).append(c)

    def rank(c):
        return (not (c.usable and c.gate in COMPILED_KINDS), c.error, c.duration_s, c.gate, c.control or "")

    return {pair: min(gates, key=rank) for pair, gates in by_pair.items()}


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, repr=False, eq=False)
class Device:
    """A device file that passed every check. Immutable; build it with `ctrl.device.load_device`."""

    path: Path
    spec: DeviceFile
    firmware: Mapping[str, FirmwareInfo]  # by board name (read-only)

    def __post_init__(self):
        object.__setattr__(self, "firmware", MappingProxyType(dict(self.firmware)))

    def __repr__(self) -> str:
        boards = f"{len(self.wiring.boards)} board(s)" if self.wiring is not None else "no QICK wiring"
        return (f"Device({self.name!r}, {len(self.qubits)} qubits, {len(self.couplers)} couplers, "
                f"{boards}, calibration {self.calibration_hash[:19]})")

    def __eq__(self, other) -> bool:
        return isinstance(other, Device) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash((self.calibration_hash, self.wiring_hash))

    # --- sections
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def wiring(self) -> Wiring | None:
        """The QICK wiring; None for a device file without one (no QICK programs, an ideal controller)."""
        return self.spec.wiring

    @property
    def calibration(self) -> Calibration:
        return self.spec.calibration

    @property
    def qubits(self):
        return self.spec.calibration.qubits

    @property
    def couplers(self):
        return self.spec.calibration.couplers

    # --- hashes
    @functools.cached_property
    def calibration_hash(self) -> str:
        """sha256 of the canonical calibration: changes exactly when a calibrated number changes."""
        return _sha(canonical_calibration(self.spec.calibration))

    @functools.cached_property
    def wiring_hash(self) -> str:
        """sha256 of the canonical wiring and the firmware descriptions it references."""
        return _sha(canonical_wiring(self.spec.wiring, {k: v.sha256 for k, v in self.firmware.items()}))

    # --- lookups
    @functools.cached_property
    def target(self):
        """The device's capabilities as the compiler, the QICK plan and the noise model read them, built once."""
        from ctrl.device.target import Target

        return Target.of(self)

    @functools.cached_property
    def _qubit_index(self) -> dict:
        return {q.name: q for q in self.qubits}

    @functools.cached_property
    def _coupler_index(self) -> dict:
        return chosen_gates(self.couplers)

    def qubit(self, name: str) -> QubitCalibration:
        try:
            return self._qubit_index[name]
        except KeyError:
            raise CtrlError(f"device {self.name} has no qubit '{name}'") from None

    def coupler(self, a: str, b: str):
        """The gate the compiler uses between `a` and `b` (either order): of several calibrated ones (per
        kind, per cross-resonance direction), the usable one of least error that it compiles."""
        try:
            return self._coupler_index[frozenset((a, b))]
        except KeyError:
            raise CtrlError(f"device {self.name} has no coupler {a}-{b}") from None

    @property
    def chosen_gates(self) -> Mapping[frozenset, object]:
        """Pair -> the gate the compiler uses there (`chosen_gates`), for every pair with a gate."""
        return MappingProxyType(self._coupler_index)

    @functools.cached_property
    def usable_gates(self) -> Mapping[frozenset, object]:
        """The chosen gates the compiler can place on: usable, of a kind it compiles, between usable qubits."""
        good = {q.name for q in self.qubits if q.usable}
        return MappingProxyType({pair: c for pair, c in self._coupler_index.items()
                                 if c.usable and c.gate in COMPILED_KINDS and pair <= good})  # fmt: skip

    def gates(self, a: str, b: str) -> tuple:
        """Every calibrated two-qubit gate between `a` and `b`, in file order."""
        pair = frozenset((a, b))
        return tuple(c for c in self.couplers if frozenset(c.qubits) == pair)

    @functools.cached_property
    def zz_neighbours(self) -> Mapping[str, tuple[tuple[str, float], ...]]:
        """Qubit -> ((neighbour, zz_hz), ...) over the pairs with a nonzero static ZZ."""
        out: dict[str, list] = {}
        for z in self.calibration.static_zz:
            a, b = z.qubits
            if z.zz_hz:
                out.setdefault(a, []).append((b, z.zz_hz))
                out.setdefault(b, []).append((a, z.zz_hz))
        return MappingProxyType({k: tuple(sorted(v)) for k, v in out.items()})

    def qubit_wiring(self, name: str) -> QubitWiring:
        if self.wiring is None:
            raise CtrlError(f"device {self.name} has no QICK wiring")
        for w in self.wiring.qubits:
            if w.name == name:
                return w
        raise CtrlError(f"device {self.name} has no wiring for qubit '{name}'")

    def coupler_wiring(self, a: str, b: str) -> CouplerWiring | None:
        """The flux line of a tunable coupler, or None (fixed coupling, or cross resonance)."""
        for w in self.wiring.couplers if self.wiring is not None else ():
            if frozenset(w.qubits) == frozenset((a, b)):
                return w
        return None

    def graph(self, usable_only: bool = False) -> nx.Graph:
        """A fresh coupling graph; nodes carry `position`, edges carry `gate`.

        usable_only: drop qubits and couplers marked `usable: false` (and couplers touching a dropped qubit).
        """
        g = nx.Graph()
        for q in self.qubits:
            if q.usable or not usable_only:
                g.add_node(q.name, position=q.position)
        for c in (self.usable_gates if usable_only else self._coupler_index).values():
            a, b = c.qubits
            g.add_edge(a, b, gate=c.gate)
        return g

    def firmware_config(self, board: str) -> dict:
        """The board's firmware description as a fresh dict, ready for `qick.QickConfig(...)`."""
        if board not in self.firmware:
            raise CtrlError(f"device {self.name} has no board '{board}'")
        return firmware_config(self.firmware[board].path)
