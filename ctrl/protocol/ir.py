"""The hardware-independent protocol IR: qubits, time-stepped operations, labelled measurements, checks.

Gate names (a small, exact vocabulary; every later stage lowers from these):

| name   | targets        | meaning                                                        |
|--------|----------------|----------------------------------------------------------------|
| R      | q              | prepare |0>                                                    |
| RX     | q              | prepare |+>                                                    |
| RH     | q              | prepare the magic state |H> = R_y(pi/4)|0>                    |
| CX     | c, t           | controlled-X                                                   |
| CZ     | a, b           | controlled-Z                                                   |
| RY_P4  | q              | R_y(+pi/4)                                                     |
| RY_M4  | q              | R_y(-pi/4)                                                     |
| M      | q              | measure Z; result 0 means +1                                   |
| MX     | q              | measure X; result 0 means +1                                   |

A controlled-Hadamard CH(c -> t) is the three operations RY_M4(t), CZ(c, t), RY_P4(t).
Every measurement has a stable key; every check is a parity of measurement keys that must be 0.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Iterator

from ctrl.codes.color import ColorCode

GATES = {"R": 1, "RX": 1, "RH": 1, "CX": 2, "CZ": 2, "RY_P4": 1, "RY_M4": 1, "M": 1, "MX": 1}
PREPARATIONS = ("R", "RX", "RH")
MEASUREMENTS = ("M", "MX")
CHECK_KINDS = ("logical-H", "cat-parity", "syndrome", "flag")


@dataclass(frozen=True)
class Qubit:
    index: int
    role: str  # "data", or "ancilla" (cat register, syndrome and flag qubit, by turns)
    coords: tuple[float, float]

    @property
    def name(self) -> str:
        return f"{self.role[0]}{self.index}"


@dataclass(frozen=True)
class Op:
    """One gate on one or two qubits in one time step. `tag` names the gadget it belongs to."""

    name: str
    targets: tuple[int, ...]
    step: int
    tag: str
    key: str = ""  # measurement key, for M and MX

    def __repr__(self) -> str:
        k = f" {self.key}" if self.key else ""
        return f"Op({self.step}: {self.name} {' '.join(map(str, self.targets))} [{self.tag}]{k})"


@dataclass(frozen=True)
class Check:
    """A post-selection rule: the XOR of the named measurement results must be 0.

    `step` is the earliest time step at which every result it needs exists (its last measurement).
    """

    name: str
    kind: str
    measurements: tuple[str, ...]
    step: int
    round: int


@dataclass(frozen=True)
class ProtocolCircuit:
    distance: int
    code: ColorCode
    qubits: tuple[Qubit, ...]
    couplers: tuple[tuple[int, int], ...]
    ops: tuple[Op, ...]  # sorted by step, then by program order
    checks: tuple[Check, ...]
    rounds: int

    def __repr__(self) -> str:
        return (
            f"ProtocolCircuit(d={self.distance}, qubits={len(self.qubits)}, steps={self.n_steps}, "
            f"ops={len(self.ops)}, checks={len(self.checks)})"
        )

    @cached_property  # the circuit is frozen; compiles read these thousands of times
    def n_steps(self) -> int:
        return 1 + max(op.step for op in self.ops)

    @cached_property
    def data(self) -> tuple[int, ...]:
        return tuple(q.index for q in self.qubits if q.role == "data")

    @cached_property
    def measurements(self) -> tuple[Op, ...]:
        return tuple(op for op in self.ops if op.name in MEASUREMENTS)

    @cached_property
    def record(self) -> tuple[str, ...]:
        """Measurement keys in measurement-record order: by step, M before MX, then by qubit.

        Stim's measurement record, the decision program and the QICK readout map all use this order.
        """
        ms = sorted(self.measurements, key=lambda op: (op.step, MEASUREMENTS.index(op.name), op.targets))
        return tuple(op.key for op in ms)

    def steps(self) -> Iterator[tuple[int, tuple[Op, ...]]]:
        by_step: dict[int, list[Op]] = {}
        for op in self.ops:
            by_step.setdefault(op.step, []).append(op)
        for s in range(self.n_steps):
            yield s, tuple(by_step.get(s, ()))

    def to_json(self) -> str:
        doc = {
            "format": "ctrl.protocol/2",
            "protocol": "cn20",
            "distance": self.distance,
            "rounds": self.rounds,
            "time_steps": self.n_steps,
            "qubit_count": len(self.qubits),
            "qubits": [asdict(q) for q in self.qubits],
            "couplers": [list(c) for c in self.couplers],
            "code": {
                "faces": [
                    {"index": f.index, "color": f.color, "qubits": list(f.qubits)} for f in self.code.faces
                ],
                "logical": list(self.code.logical),
            },
            "ops": [
                {"step": o.step, "name": o.name, "targets": list(o.targets), "tag": o.tag}
                | ({"key": o.key} if o.key else {})
                for o in self.ops
            ],
            "checks": [asdict(c) for c in self.checks],
        }
        return json.dumps(doc, indent=1, sort_keys=True) + "\n"
