"""The output layer: what a compile's folder holds and how it is written, above the backends.

    write_outputs(compiled, "out/", device)     # program.json, program.stim, report.json, QICK programs
    write_compiled(compiled, "out/", device, cache=CompileCache())  # ... and compile_inputs.json, cached

`ctrl compile` and `ctrl dry-run` write through `write_compiled`; `ctrl recompile` reads `compile_inputs.json`
back (`read_inputs`) to know what a folder was compiled from, and writes the same files (ctrl.recompile).
Every file is rendered before any is written: a refused QICK program leaves the folder as it was.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ctrl.backends.stim import timed_to_stim
from ctrl.compile.pipeline import Compiled
from ctrl.compile.placement import Placement
from ctrl.device import SCHEMA_VERSION, Device
from ctrl.errors import CtrlError
from ctrl.files import read_limited, remove_output, write_atomic
from ctrl.jsontext import dumps
from ctrl.outputs.cache import CompileCache, Entry, compile_key, placement_doc
from ctrl.versions import version

INPUTS_FILE = "compile_inputs.json"
INPUTS_FORMAT = "ctrl.compile-inputs/2"
MAX_RECORD_BYTES = 64 * 2**20  # compile_inputs.json and report.json: a large calibration is about 1 MiB
_CAL_MARK = ', "calibration": '


def write_outputs(compiled: Compiled, out: Path | str, device=None) -> list[Path]:
    """program.json, program.stim, report.json; with `device` (the device compiled for) also the QICK
    tProc v2 programs per board (qick_<board>.asm, qick_<board>.json, firmware_<board>.json; see
    docs/qick.md) and their summary under `qick` in report.json."""
    out = Path(out)
    files, _ = output_files(compiled, device)
    for name, text in files.items():
        write_atomic(out / name, text)
    remove_stale(out, files)
    first = ("program.json", "program.stim", "report.json")
    return [out / name for name in first] + [out / name for name in files if name not in first]


def output_files(compiled: Compiled, device=None) -> tuple[dict[str, str], object]:
    """What write_outputs writes, by file name in the order it writes them (report.json last), and the QICK
    programs (None without `device`). Everything is rendered before any file is written: a refused program
    leaves the folder as it was."""
    program = compiled.program
    qick = None
    if device is not None and device.wiring is not None:
        from ctrl.backends.qick import emit_qick

        qick = emit_qick(device, program)
    files = {"program.json": program.to_json(), "program.stim": str(timed_to_stim(program, "X")) + "\n"}
    if qick is not None:
        files |= qick.texts()
    doc = report_doc(compiled.report, compiled.passes, qick.report if qick is not None else None)
    if device is not None and device.wiring is None:
        doc["qick"] = {"programs": None, "why": NO_QICK_WHY}
    files["report.json"] = dumps(doc) + "\n"
    return files, qick


NO_QICK_WHY = ("the device file has no wiring section, so there are no QICK channels to compile for: "
               "the timed program and the Stim circuit assume an ideal controller (1 ns grid, 0.4 us decisions)")


def report_doc(report: dict, passes, qick_report: dict | None) -> dict:
    """report.json's content: the compile's report, the passes that ran and, with QICK programs, their
    summary and the version of qick that assembled them."""
    doc = dict(report) | {"passes": [{"name": p.name, "kind": p.kind} for p in passes]}
    if qick_report is not None:
        doc["qick"] = qick_report
        doc["versions"] = doc["versions"] | {"qick": version("qick")}
    return doc


# ------------------------------------------------------------------------------------ compile_inputs.json


_SEAL = '{"inputs_sha256": "'


def seal_inputs(body: str) -> str:
    """A compile_inputs.json text (a JSON object) with the sha256 of that text as its first field."""
    return _SEAL + _sha(body) + '", ' + body[1:]


def _unseal(path: Path, text: str) -> str:
    """The text `seal_inputs` sealed; CtrlError if the digest is missing or does not match."""
    n = len(_SEAL) + len("sha256:") + 64
    body = "{" + text[n + 3:]
    if not text.startswith(_SEAL) or text[n:n + 3] != '", ' or text[len(_SEAL):n] != _sha(body):
        raise CtrlError(f"{path}: its inputs_sha256 does not match the record (edited, truncated, or written by "
                        f"an older ctrl); recompile from the old device file instead (--from OLD.yaml)")  # fmt: skip
    return body


def read_inputs(path: Path) -> tuple[dict, str | None]:
    """compile_inputs.json as written by `compile_inputs` (the calibration last, as pydantic writes it, with
    the digest of that text): (the other fields, the calibration's text); the whole record must carry its
    own digest (`seal_inputs`), so an edited placement or calibration is refused, never compiled."""
    try:
        text = read_limited(path, MAX_RECORD_BYTES, "record").decode("utf-8")
    except UnicodeDecodeError:
        raise CtrlError(f"{path}: not UTF-8 text") from None
    if not text.startswith(_SEAL):
        json_object(path, text)  # not JSON at all is said as such
    body = _unseal(path, text)
    i = body.find(_CAL_MARK)
    end = body.rstrip()
    if i > 0 and end.endswith("}"):
        cal_text = end[i + len(_CAL_MARK):-1]
        try:
            doc = json.loads(body[:i] + "}")
        except (json.JSONDecodeError, RecursionError):
            doc = None
        if isinstance(doc, dict) and doc.get("calibration_sha256") == _sha(cal_text):
            return doc, cal_text
    return json_object(path, body), None


def compile_inputs(device: Device, placement: Placement, distance: int, policy: str = "asap", exclude=(),
                   searched: bool = True, dd: str | None = None) -> str:  # fmt: skip
    """compile_inputs.json: what a folder was compiled from, so the next recompile can start from it."""
    calibration = device.calibration.model_dump_json()  # file order: the compile follows it
    doc = {
        "format": INPUTS_FORMAT,
        "device": device.name,
        "schema_version": SCHEMA_VERSION,
        "calibration_hash": device.calibration_hash,
        "calibration_sha256": _sha(calibration),
        "wiring_hash": device.wiring_hash,
        "protocol": {"name": "cn20", "distance": distance, "policy": policy, "exclude": sorted(exclude)},
        "placement": placement_doc(placement) | {"searched": searched},
    }
    if dd is not None:
        doc["protocol"]["dd"] = dd
    # one line: a machine record. The calibration goes last, as pydantic writes it, with the digest of that
    # text: reading it back validates that text directly instead of hashing the calibration again (a fast
    # path: tests/test_fast_paths.py checks that read_inputs's split equals reading the record as JSON)
    return seal_inputs(json.dumps(doc, sort_keys=True)[:-1] + _CAL_MARK + calibration + "}\n")


def write_compiled(compiled: Compiled, out: Path | str, device: Device, policy: str = "asap", exclude=(),
                   dd: str | None = None, cache: CompileCache | None = None,
                   ) -> tuple[list[Path], str | None]:  # fmt: skip
    """What `ctrl compile` writes: `write_outputs(compiled, out, device)`'s files and compile_inputs.json,
    what they were compiled from, so that `ctrl recompile --from out` can start there. With `cache`, the
    result also goes into it with its files and QICK sheet, as a recompile's does: the first recompile
    from `out` then patches instead of lowering the protocol again.

    Returns (paths written, None), or with why the cache could not be written instead of None: the
    outputs are complete without it, so that is not an error here."""
    out = Path(out)
    files, _, sheet = write_all(compiled, out, device)
    d = compiled.program.distance
    write_atomic(out / INPUTS_FILE, compile_inputs(device, compiled.placement, d, policy, exclude, dd=dd))
    paths = [out / k for k in files] + [out / INPUTS_FILE]
    if cache is None:
        return paths, None
    try:
        cache.put(compile_key(device, d, policy, frozenset(exclude), None, dd), Entry.of(compiled, files, sheet))
    except CtrlError as e:
        return paths, str(e)
    return paths, None


def write_all(compiled: Compiled, out: Path, device: Device | None):
    """What write_outputs writes, rendered by it (so a new output is never missed), and the QICK sheet."""
    texts, qick = output_files(compiled, device)
    files = {name: text.encode() for name, text in texts.items()}
    for name, data in files.items():
        write_atomic(out / name, data)
    remove_stale(out, files)
    return files, "write_outputs", qick.sheet if qick is not None else None


# what the QICK backend names its files: an earlier compile's that this one did not write are stale (an
# 8-board program's qick_zcu216_7.* beside a 2-board one would be loaded by a lab script globbing qick_*)
STALE_PATTERNS = ("qick_*.asm", "qick_*.json", "firmware_*.json")


def remove_stale(out: Path, written) -> list[Path]:
    """Remove the files in `out` named as QICK outputs (STALE_PATTERNS, nothing else) that are not in
    `written` (file names this run wrote); with the outputs (ctrl.files.remove_output). Returns them."""
    import fnmatch

    try:
        entries = sorted(Path(out).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    stale = [p for p in entries if p.name not in written and any(fnmatch.fnmatchcase(p.name, pat) for pat in STALE_PATTERNS)
             and (p.is_symlink() or p.is_file())]  # fmt: skip
    for p in stale:
        remove_output(p)
    return stale


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def json_object(path: Path, text: str) -> dict:
    """`text` as a JSON object, or a CtrlError naming `path` and what is wrong."""
    try:
        doc = json.loads(text)
    except RecursionError:
        raise CtrlError(f"{path}: nested too deeply") from None
    except json.JSONDecodeError as e:
        raise CtrlError(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None
    if not isinstance(doc, dict):
        raise CtrlError(f"{path}: expected a JSON object")
    return doc
