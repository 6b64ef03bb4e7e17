"""The timed program: what the hardware plays, when, and on which channel, with its decision program.

Times are integer cycles of one clock (`clock_hz`, the boards' shared tProc timing clock); `start_s`
and `duration_s` in the JSON are those cycles converted to seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ctrl.compile.natives import NativeOp
from ctrl.errors import CtrlError
from ctrl.jsontext import dumps
from ctrl.realtime.decision import DecisionProgram, assemble


@dataclass(frozen=True, init=False)
class TimedOp:
    op: NativeOp
    start: int  # cycles
    duration: int  # cycles
    channels: tuple[str, ...]  # "board/genN", "board/roN": what it occupies
    ready: int = -1  # MEASURE: cycle at which the result exists (end of the window)

    def __init__(self, op: NativeOp, start: int, duration: int, channels: tuple[str, ...], ready: int = -1) -> None:
        # The instance dict directly: a d=5 program builds thousands of these, and the frozen dataclass
        # __init__ (object.__setattr__ per field) was the schedule's largest single cost.
        d = self.__dict__
        d["op"], d["start"], d["duration"], d["channels"], d["ready"] = op, start, duration, channels, ready

    @property
    def end(self) -> int:
        return self.start + self.duration

    def __repr__(self) -> str:
        return f"TimedOp({self.start}+{self.duration} {self.op!r} on {','.join(self.channels) or '-'})"


@dataclass(frozen=True)
class TimedProgram:
    device: str
    calibration_hash: str
    wiring_hash: str
    distance: int
    clock_hz: float
    qubits: tuple[str, ...]  # device qubit of protocol qubit i
    roles: tuple[str, ...]  # "data" / "ancilla" per protocol qubit
    ops: tuple[TimedOp, ...]  # sorted by (start, program order)
    record: tuple[str, ...]
    decisions: DecisionProgram  # the post-selection rule, in cycles: the one object every consumer reads
    duration: int  # one full attempt, cycles
    abort_duration: int  # the fixed-length reset branch taken on abort, cycles
    placement: dict = field(default_factory=dict, compare=False, hash=False)

    def __repr__(self) -> str:
        return (
            f"TimedProgram({self.device}, d={self.distance}, {len(self.ops)} ops, "
            f"{self.duration} cycles = {self.seconds(self.duration) * 1e6:.3f} us, {len(self.decisions.points)} decisions)"
        )

    def seconds(self, cycles: int) -> float:
        return cycles / self.clock_hz

    def to_json(self) -> str:
        def op_doc(t: TimedOp) -> dict:
            o = t.op
            d = {
                "name": o.name,
                "qubits": list(o.qubits),
                "tag": o.tag,
                "start": t.start,
                "duration": t.duration,
                "start_s": _r(self.seconds(t.start)),
                "duration_s": _r(self.seconds(t.duration)),
                "channels": list(t.channels),
            }
            if o.name in ("RX", "RY", "VZ"):
                d["angle_rad"] = _r(o.angle)
                d["proxy_angle_rad"] = [_r(a) for a in o.proxy]
            if o.key:
                d["key"] = o.key
                d["ready"] = t.ready
            if o.phases:
                d["phase_corrections_rad"] = {q: _r(p) for q, p in o.phases}
            if o.source:
                d["source"] = [list(x) for x in o.source]  # (protocol step, protocol gate) it realises
            return d

        doc = {
            "format": "ctrl.timed/1",
            "device": self.device,
            "calibration_hash": self.calibration_hash,
            "wiring_hash": self.wiring_hash,
            "protocol": {"name": "cn20", "distance": self.distance},
            "clock_hz": self.clock_hz,
            "time_unit": "cycles of clock_hz; *_s fields in seconds",
            "qubits": [{"protocol": i, "device": q, "role": r} for i, (q, r) in enumerate(zip(self.qubits, self.roles))],
            "placement": self.placement,
            "duration": self.duration,
            "duration_s": _r(self.seconds(self.duration)),
            "abort_duration": self.abort_duration,
            "record": list(self.record),
            "checks": [{"name": r.name, "kind": r.kind, "measurements": list(r.keys)} for r in self.decisions.rules],
            "decisions": [
                {"index": d.index, "time": d.time, "time_s": _r(self.seconds(d.time)),
                 "checks": list(self.decisions.names(d)), "realtime": d.realtime, "on_failure": "abort"}
                for d in self.decisions.points
            ],  # fmt: skip
            "ops": [op_doc(t) for t in self.ops],
        }
        return dumps(doc) + "\n"  # json.dumps(doc, indent=1, sort_keys=True), a third faster


MAX_PROGRAM_BYTES = 2**28  # 256 MiB; a d=7 program is a few MiB


def read_program_doc(path) -> dict:
    """program.json as a document, checked to be a timed program."""
    from pathlib import Path

    from ctrl.files import read_limited

    data = read_limited(Path(path), MAX_PROGRAM_BYTES, "timed program")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise CtrlError(f"{path}: cannot read a timed program: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != "ctrl.timed/1":
        raise CtrlError(f"{path}: not a ctrl timed program (format {doc.get('format') if isinstance(doc, dict) else None!r})")
    return doc


def read_program(path) -> TimedProgram:
    """program.json back into a TimedProgram (angles as written: twelve significant digits)."""
    doc = read_program_doc(path)
    try:
        ops = []
        for o in doc["ops"]:
            op = NativeOp(
                o["name"], tuple(o["qubits"]), o["tag"], o.get("angle_rad", 0.0),
                tuple(o.get("proxy_angle_rad", (0.0, 0.0))), o.get("key", ""),
                tuple(sorted(o.get("phase_corrections_rad", {}).items())),
                tuple((int(s), str(g)) for s, g in o.get("source", ())),
            )  # fmt: skip
            ops.append(TimedOp(op, o["start"], o["duration"], tuple(o["channels"]), o.get("ready", -1)))
        qubits = sorted(doc["qubits"], key=lambda q: q["protocol"])
        ready = {t.op.key: t.ready for t in ops if t.op.key}
        checks = [(c["name"], c["kind"], tuple(c["measurements"]), max(ready[k] for k in c["measurements"]))
                  for c in doc["checks"]]  # fmt: skip
        index = {c[0]: i for i, c in enumerate(checks)}
        groups = [(d["time"], d["realtime"], [index[n] for n in d["checks"]]) for d in doc["decisions"]]
        # the file does not name the latency: every point is placed `latency` after its checks' results
        latency = groups[0][0] - max(checks[i][3] for i in groups[0][2]) if groups else 0
        return TimedProgram(
            device=doc["device"], calibration_hash=doc["calibration_hash"], wiring_hash=doc["wiring_hash"],
            distance=doc["protocol"]["distance"], clock_hz=doc["clock_hz"],
            qubits=tuple(q["device"] for q in qubits), roles=tuple(q["role"] for q in qubits), ops=tuple(ops),
            record=tuple(doc["record"]), decisions=assemble(checks, groups, doc["duration"], latency),
            duration=doc["duration"], abort_duration=doc["abort_duration"], placement=doc.get("placement", {}),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as e:
        raise CtrlError(f"{path}: a timed program with a missing or malformed field ({e})") from None


def _r(x: float) -> float:
    """Twelve significant digits: stable text for the same numbers on every machine."""
    return float(f"{x:.12g}")
