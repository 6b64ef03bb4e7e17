"""The recompile's outputs: the fenced fast path that reuses the bytes of the compile it patched (program.stim
as it was, program.json with the new hash and CZ corrections, the QICK programs patched), checked against
`write_outputs` by tests/test_recompile.py and tests/test_outputs_lock.py; anything it does not know is
rendered in full by `write_outputs`."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from ctrl.device import Device
from ctrl.files import write_atomic
from ctrl.jsontext import dumps, encode, esc  # json.dumps(..., sort_keys=True, indent=1), faster
from ctrl.outputs.cache import Entry
from ctrl.outputs.folder import report_doc, write_all
from ctrl.recompile.recompile import Recompiled


# ------------------------------------------------------------------------------------ output


def _same_schedule(a, b) -> bool:
    """The two programs play the same operations at the same times (virtual-Z corrections aside)."""
    if (a.distance, a.clock_hz, a.qubits, a.roles, a.record, a.decisions, a.duration, a.abort_duration,
            a.device, a.wiring_hash) != (b.distance, b.clock_hz, b.qubits, b.roles, b.record, b.decisions,
                                         b.duration, b.abort_duration, b.device, b.wiring_hash):  # fmt: skip
        return False
    if a.ops is b.ops:
        return True
    if len(a.ops) != len(b.ops):
        return False
    for x, y in zip(a.ops, b.ops):
        if x is y:
            continue
        if (x.start, x.duration, x.channels, x.ready) != (y.start, y.duration, y.channels, y.ready):
            return False
        if replace(x.op, phases=()) != replace(y.op, phases=()):
            return False
    return True


def _report_from(base: Entry, entry: Entry, qick_report: dict | None) -> bytes:
    """report.json of `entry`: the base's bytes with only the top-level values that differ written anew
    (`passes` always: the cache does not keep them), else rendered in full."""
    doc = report_doc(entry.report, entry.passes, qick_report)
    text = base.files.get("report.json")
    if text is not None:
        known = report_doc(base.report, (), base.qick.report if base.qick is not None else None)
        del known["passes"]
        spliced = _splice_top(text, known, doc)
        if spliced is not None:
            return spliced
    return (dumps(doc) + "\n").encode()


def _splice_top(text: bytes, known: dict, doc: dict) -> bytes | None:
    """`dumps(doc) + "\\n"`, given `text` is that of a document with the values `known` and the same keys:
    the values of `known` that equal `doc`'s are kept as bytes, the others rendered at their depth. None if
    the text does not have the expected shape. (In json's indent=1 form a top-level key, and only a
    top-level key, starts a line with one space and a quote; strings never hold a raw newline.)"""
    keys = sorted(doc)
    if not set(known) <= set(doc) or text.count(b'\n "') != len(keys) or not text.endswith(b"\n}\n"):
        return None
    parts, at = [], 0
    for i, k in enumerate(keys):
        if k in known and known[k] == doc[k]:
            continue
        head = b"\n " + esc(k).encode() + b": "
        a = text.find(head, at)
        if a < 0:
            return None
        a += len(head)
        b = text.find(b",\n " + esc(keys[i + 1]).encode() + b": ", a) if i + 1 < len(keys) else len(text) - 3
        if b < 0:
            return None
        parts += [text[at:a], encode(doc[k], "\n ").encode()]
        at = b
    parts.append(text[at:])
    return b"".join(parts)


_PROGRAM_FILES = ("program.json", "program.stim")
_SCHEDULE_FIELDS = ("device", "wiring_hash", "distance", "clock_hz", "qubits", "roles", "record", "decisions",
                    "duration", "abort_duration")  # fmt: skip


def _known_program_file(name: str) -> bool:
    return name in _PROGRAM_FILES or name == "report.json"


def _known_output(name: str) -> bool:
    """Files write_outputs writes that this reuse knows how to produce."""
    if name in _PROGRAM_FILES or name == "report.json":
        return True
    return bool(re.fullmatch(r"(qick_[^/]+\.(asm|json)|firmware_[^/]+\.json)", name))


def emit(rec: Recompiled, out: Path | str, device: Device | None = None) -> tuple[dict[str, bytes], str]:
    """`write_outputs(rec.compiled, out, device)`, reusing the bytes of the compile it was patched from
    where they cannot have changed. Returns (files written by relative path, how they were produced)."""
    files, how, _ = _emit(rec, Path(out), device)
    return files, how


def _emit(rec: Recompiled, out: Path, device: Device | None):
    """emit(), and the QICK sheet of the programs written (for the cache: the next patch starts from it).

    Reuse needs the base's files (kept in the cache) and the same schedule: then program.stim (the
    Clifford proxy does not see the calibration) is the base's, program.json the base's with the new
    calibration hash (when nothing else in it changed), and the QICK programs, which carry the pulse
    parameters, are patched from the base's (ctrl.backends.qick.reemit_qick: only what the pulse
    parameters feed is recomputed; emitted in full, and said why, when the change cannot be patched). An
    output file this function does not know makes write_outputs do it all."""
    base, new = rec.base, rec.entry
    reusable = (base is not None and all(_known_output(k) for k in base.files)
                and all(k in base.files for k in _PROGRAM_FILES)
                and all(base.header[k] == new.header[k] for k in _SCHEDULE_FIELDS))  # fmt: skip
    same_ops = reusable and new.same_ops(base)
    # a patch keeps the base's operations and times by construction (CZ corrections aside)
    kept = rec.action == "patch" and base is rec.old
    if not (reusable and (same_ops or kept or _same_schedule(base.compiled.program, new.compiled.program))):
        return write_all(new.compiled, out, device)
    has_qick = any(not _known_program_file(k) for k in base.files)
    if (same_ops and new.header == base.header and "report.json" in base.files
            and has_qick == (device is not None)):  # fmt: skip
        # nothing the outputs depend on changed (a cached result): every file as it was, passes aside
        doc = json.loads(base.files["report.json"])
        doc["passes"] = [{"name": p.name, "kind": p.kind} for p in new.passes]
        files = {k: v for k, v in base.files.items() if k != "report.json"}
        files["report.json"] = (dumps(doc) + "\n").encode()
        for name, data in sorted(files.items()):
            write_atomic(out / name, data)
        return files, "every file reused", base.qick
    qick, why = None, None
    if device is not None:  # first, as write_outputs does: a refused program leaves the folder as it was
        from ctrl.backends.qick import reemit_qick

        previous = _previous_qick(base) if has_qick else None
        qick, why = reemit_qick(previous, device, lambda: new.compiled.program)
    files: dict[str, bytes] = {"program.stim": base.files["program.stim"]}
    text, old_hash = base.files["program.json"], base.header["calibration_hash"].encode()
    same_place = new.header["placement"] == base.header["placement"] and text.count(old_hash) == 1
    edited = None
    if same_place and not same_ops:
        edited = _corrections_edited(text, getattr(new, "phase_edits", None))
    if same_ops and same_place:
        files["program.json"] = text.replace(old_hash, new.header["calibration_hash"].encode())
        how = "program.stim reused, program.json patched (calibration hash)"
    elif edited is not None:
        files["program.json"] = edited.replace(old_hash, new.header["calibration_hash"].encode())
        how = "program.stim reused, program.json patched (calibration hash, CZ corrections)"
    else:
        files["program.json"] = new.compiled.program.to_json().encode()
        how = "program.stim reused, program.json rendered"
    for name in _PROGRAM_FILES:
        write_atomic(out / name, files[name])
    if qick is not None:
        files |= _write_qick(qick, out)
        how += (", QICK programs patched (pulse parameters only)" if why is None
                else f", QICK programs emitted from the kept timed program (not patched: {why})")
    files["report.json"] = _report_from(base, new, qick.report if qick is not None else None)
    write_atomic(out / "report.json", files["report.json"])
    return files, how, qick.sheet if qick is not None else None


_CORRECTIONS = b'"phase_corrections_rad": '


def _corrections_edited(text: bytes, edits) -> bytes | None:
    """program.json with each CZ's phase corrections replaced, exactly as TimedProgram.to_json writes them
    (12 significant digits, at the depth of an operation's field). `edits`: (old, new) of every CZ in
    operation order; only CZ operations carry corrections, so the k-th one written is the k-th CZ with
    corrections, checked against its old text. None if the text is not so (then it is rendered in full)."""
    if not edits:
        return None
    parts, copied, search = [], 0, 0
    rendered: dict = {}  # a coupler's CZs share their corrections: each text made once

    def render(phases) -> bytes:
        t = rendered.get(phases)
        if t is None:
            t = rendered[phases] = _corrections_text(phases)
        return t

    for old, new in edits:
        if not old or not new:
            if old or new:  # the field would appear or go away
                return None
            continue
        i = text.find(_CORRECTIONS, search)
        if i < 0:
            return None
        i += len(_CORRECTIONS)
        was = render(old)
        if not text.startswith(was, i):
            return None
        j = i + len(was)
        if new != old:
            parts += [text[copied:i], render(new)]
            copied = j
        search = j
    if text.find(_CORRECTIONS, search) >= 0:  # another operation carries corrections
        return None
    parts.append(text[copied:])
    return b"".join(parts)


def _corrections_text(phases) -> bytes:
    """An operation's corrections as json.dumps(indent=1, sort_keys=True) writes them inside program.json."""
    if not phases:
        return b"{}"
    items = sorted((q, _r12(v)) for q, v in phases)
    return ("{" + ",".join(f"\n    {esc(q)}: {float.__repr__(v)}" for q, v in items) + "\n   }").encode()


def _r12(x: float) -> float:
    return float(f"{x:.12g}")  # as ctrl.compile.timed writes numbers


def _write_qick(qick, out: Path) -> dict[str, bytes]:
    """write_qick's files, returned as bytes."""
    files = {name: text.encode() for name, text in qick.texts().items()}
    for name, data in files.items():
        write_atomic(out / name, data)
    return files


def _previous_qick(base: Entry):
    """The QICK programs of a cached compile, rebuilt from its files and sheet (None without a sheet)."""
    from ctrl.backends.qick import programs_from_sheet

    if base.qick is None:
        return None
    try:
        return programs_from_sheet(base.qick, base.files)
    except KeyError:
        return None
