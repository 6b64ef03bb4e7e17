"""The compile a recompile starts from: a folder of ctrl compile/recompile or an old device file, read
back with its calibration, protocol parameters and placement (`load_previous`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from ctrl.compile.dd import check_sequence
from ctrl.compile.placement import Placement
from ctrl.device import SCHEMA_VERSION, Calibration, Device, load_device
from ctrl.device.device import canonical_calibration
from ctrl.errors import CtrlError
from ctrl.files import read_limited
from ctrl.outputs.cache import placement_from_doc
from ctrl.outputs.folder import INPUTS_FILE, INPUTS_FORMAT, MAX_RECORD_BYTES, json_object, read_inputs


# ------------------------------------------------------------------------------------ the previous compile


@dataclass(frozen=True)
class Previous:
    """The compile being recompiled: its calibration, protocol parameters and placement."""

    source: str  # what it was read from, for the report
    device_name: str
    calibration: Calibration | None  # None: unreadable under this schema (`problem` says why)
    calibration_hash: str
    wiring_hash: str
    distance: int
    policy: str
    exclude: tuple[str, ...]
    placement: Placement | None  # None: not recorded (an old device file: found by compiling it)
    searched: bool  # the placement is what a full compile finds (not one kept within the margin)
    device: Device | None = None  # the old device file, when that was given
    report: dict | None = field(default=None, repr=False)  # the old compile's report, when known
    problem: str | None = None
    report_file: Path | None = None  # the old folder's report.json (read only if the cache lacks the compile)
    dd: str | None = None  # the dynamical decoupling sequence compiled in, if any

    def __repr__(self) -> str:
        dd = f", dd {self.dd}" if self.dd else ""
        return (f"Previous({self.source}, d={self.distance}, {self.policy}{dd}, "
                f"calibration {self.calibration_hash[:19]})")  # fmt: skip


def _read_json(path: Path) -> dict:
    data = read_limited(path, MAX_RECORD_BYTES, "record")
    try:
        return json_object(path, data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise CtrlError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def load_previous(path: Path | str, new: Device | None = None, distance: int | None = None,
                  policy: str | None = None, exclude=(), dd: str | None = None) -> Previous:  # fmt: skip
    """The previous compile from an output folder written by `ctrl recompile` or `ctrl compile` (its
    `compile_inputs.json`) or from the old device file (then `distance`, `policy` and `dd` say what was
    compiled: default 3, asap, no dynamical decoupling)."""
    check_sequence(dd)
    path = Path(path)
    if path.is_dir():
        return _from_folder(path, distance, policy, dd)
    if not path.exists():
        raise CtrlError(f"{path}: no such file or folder "
                        "(expected an output folder of ctrl recompile, or a device file)")
    old = load_device(path)
    return Previous(f"device file {path}", old.name, old.calibration, old.calibration_hash, old.wiring_hash,
                    distance or 3, policy or "asap", tuple(sorted(exclude)), None, True, device=old, dd=dd)  # fmt: skip


def _from_folder(folder: Path, distance: int | None, policy: str | None, dd: str | None) -> Previous:
    inputs = folder / INPUTS_FILE
    if not inputs.is_file():
        if (folder / "program.json").is_file():
            raise CtrlError(f"{folder}: no {INPUTS_FILE}, so the calibration it was compiled for is unknown "
                            "(ctrl compile does not record it): pass the old device file as --from")  # fmt: skip
        raise CtrlError(f"{folder}: not an output folder of ctrl recompile (no {INPUTS_FILE})")
    doc, cal_text = read_inputs(inputs)
    if doc.get("format") != INPUTS_FORMAT:
        raise CtrlError(f"{inputs}: format {doc.get('format')!r}, expected {INPUTS_FORMAT!r}")
    try:
        proto = doc["protocol"]
        d, pol, exclude = int(proto["distance"]), str(proto["policy"]), tuple(sorted(proto["exclude"]))
        was_dd = proto.get("dd")
        check_sequence(was_dd)
        placement = placement_from_doc(doc["placement"])
        searched = bool(doc["placement"]["searched"])
        cal_hash, wiring_hash, name = str(doc["calibration_hash"]), str(doc["wiring_hash"]), str(doc["device"])
        schema = doc["schema_version"]
        cal_doc = doc["calibration"] if cal_text is None else None
    except (KeyError, TypeError, ValueError) as e:
        raise CtrlError(f"{inputs}: incomplete record ({type(e).__name__}: {e})") from None
    except CtrlError as e:
        raise CtrlError(f"{inputs}: {e}") from None
    if distance is not None and distance != d:
        raise CtrlError(f"{folder} holds the d={d} protocol, not d={distance}: "
                        "a new distance is a new compile (ctrl compile)")
    if policy is not None and policy != pol:
        raise CtrlError(f"{folder} was scheduled {pol}, not {policy}: a new policy is a new compile (ctrl compile)")
    if dd is not None and dd != was_dd:
        raise CtrlError(f"{folder} was compiled with dynamical decoupling {was_dd or 'off'}, not {dd}: "
                        "another sequence is a new compile (ctrl compile --dd)")  # fmt: skip
    calibration, problem = None, None
    if not (isinstance(schema, int) and 2 <= schema <= SCHEMA_VERSION):  # a v2 calibration reads as v3
        problem = f"the previous calibration was recorded under schema {schema}, this ctrl reads {SCHEMA_VERSION}"
    else:
        try:
            calibration = Calibration.model_validate_json(json.dumps(cal_doc) if cal_text is None else cal_text)
        except ValidationError as e:
            err = e.errors(include_url=False)[0]
            where = ".".join(str(x) for x in err["loc"])
            problem = f"the previous calibration does not load under schema {SCHEMA_VERSION} ({where}: {err['msg']})"
    # the calibration as recorded (its text's digest checked) stands for its recorded hash; anything else is
    # hashed again
    if calibration is not None and cal_text is None and _hash(calibration) != cal_hash:
        raise CtrlError(f"{inputs}: the calibration does not match its recorded hash {cal_hash[:23]}... (edited?)")
    return Previous(f"folder {folder}", name, calibration, cal_hash, wiring_hash, d, pol, exclude, placement,
                    searched, problem=problem, report_file=folder / "report.json", dd=was_dd)  # fmt: skip




def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _hash(cal: Calibration) -> str:
    return "sha256:" + hashlib.sha256(canonical_calibration(cal).encode()).hexdigest()


def _old_device(prev: Previous, new: Device) -> Device:
    """The previous device: the old file, or the new wiring (same hash) with the old calibration."""
    if prev.device is not None:
        return prev.device
    spec = new.spec.model_copy(update={"calibration": prev.calibration, "name": prev.device_name})
    dev = Device(new.path, spec, new.firmware)
    # load_previous checked the recorded hash against this very calibration, and the wiring is the new
    # device's (same spec wiring, same firmware): seed the cached properties
    dev.__dict__["calibration_hash"] = prev.calibration_hash
    dev.__dict__["wiring_hash"] = new.wiring_hash
    return dev
