"""recompile.json and the printed summary of a recompile, and `run`, what `ctrl recompile` does."""

from __future__ import annotations

from pathlib import Path

from ctrl.compile.pipeline import compile_program
from ctrl.device import Device, load_device
from ctrl.errors import CtrlError
from ctrl.files import write_atomic
from ctrl.jsontext import dumps  # json.dumps(..., sort_keys=True, indent=1), faster
from ctrl.outputs.cache import CompileCache
from ctrl.outputs.folder import INPUTS_FILE, compile_inputs, remove_stale
from ctrl.recompile.diff import _natural
from ctrl.recompile.output import _emit
from ctrl.recompile.previous import Previous, _old_device, _read_json, load_previous
from ctrl.recompile.recompile import DEFAULT_MARGIN, FULL_PASSES, REPORT_FILE, Recompiled, recompile


def write(rec: Recompiled, out: Path | str, device: Device, cache: CompileCache | None = None,
          emulation: dict | None = None, qick: bool = True) -> tuple[list[Path], dict]:  # fmt: skip
    """The outputs (`emit`: what `ctrl compile` writes, QICK programs included unless `qick` is false),
    compile_inputs.json and recompile.json; the result and its files go into the cache. Returns (paths
    written, the report)."""
    out = Path(out)
    files, how, sheet = _emit(rec, out, device if qick else None)
    remove_stale(out, files)  # every path of _emit: QICK files of an earlier compile it did not write
    if cache is not None:
        cache.put(rec.key, rec.entry.derived(passes=(), files=files, qick=sheet))
    prev = rec.previous
    write_atomic(out / INPUTS_FILE, compile_inputs(device, rec.entry.placement, prev.distance, prev.policy,
                                                   prev.exclude, rec.searched, prev.dd))  # fmt: skip
    doc = report(rec, emulation) | {"outputs": {"files": sorted(files), "produced_by": how}}
    write_atomic(out / REPORT_FILE, dumps(doc) + "\n")
    return [out / k for k in sorted(files)] + [out / INPUTS_FILE, out / REPORT_FILE], doc


# ------------------------------------------------------------------------------------ report


def _figures(report: dict | None) -> dict | None:
    if not report:
        return None
    try:
        return {
            "qubits": report["placement"]["qubits"],
            "expected_faults_per_attempt": report["placement"]["expected_faults_per_attempt"],
            "attempt_s": report["duration_s"],
            "critical_path_cycles": report["critical_path_cycles"],
            "decision_points": report["decision_points"],
            "calibration_hash": report["calibration_hash"],
        }
    except (KeyError, TypeError):
        return None


def _previous_report(prev: Previous | None) -> dict | None:
    if prev is None:
        return None
    if prev.report is not None or prev.report_file is None or not prev.report_file.is_file():
        return prev.report
    try:
        return _read_json(prev.report_file)
    except CtrlError:
        return None  # only used for the old figures


def report(rec: Recompiled, emulation: dict | None = None) -> dict:
    """recompile.json: what changed, what was redone, old versus new predictions, the placement."""
    prev = rec.previous
    ran = rec.passes_run
    old_report = rec.old.report if rec.old is not None else _previous_report(prev)
    h = rec.entry.header
    doc = {
        "format": "ctrl.recompile/1",
        "device": h["device"],
        "protocol": {"name": "cn20", "distance": h["distance"],
                     "policy": prev.policy if prev else None, "dd": prev.dd if prev else None},
        "from": {"source": prev.source if prev else None, "calibration_hash": prev.calibration_hash if prev else None},
        "to": {"calibration_hash": h["calibration_hash"]},
        "changes": rec.diff.to_json(),
        "change_classes": list(rec.diff.classes),
        "action": rec.action,
        "why": rec.why,
        "passes_run": list(ran),
        "compile_passes_skipped": [p for p in FULL_PASSES if p not in ran],
        "previous_compile_recomputed": [p.name for p in rec.old_passes],
        "equals_full_compile": rec.searched,
        "placement": rec.placement.to_json(),
        "predicted": {"old": _figures(old_report), "new": _figures(rec.entry.report),
                      "source": "compile reports (placement cost, schedule)"},
    }  # fmt: skip
    if emulation is not None:
        doc["emulated"] = emulation
    return doc


def emulate_both(rec: Recompiled, new: Device, shots: int, seed: int = 0) -> dict:
    """Acceptance, logical error per accepted state and time per accepted state of the old and the new
    program, each under its own calibration's noise, sampled by `ctrl.emulate.run.emulate`."""
    from ctrl.emulate.run import emulate

    prev = rec.previous
    out: dict = {"shots": shots, "seed": seed, "noise": "calibration"}
    old_program = rec.old.compiled.program if rec.old is not None else None
    old_device = None
    if prev is not None and prev.calibration is not None and prev.problem is None:
        if prev.device is not None or prev.wiring_hash == new.wiring_hash:
            old_device = _old_device(prev, new)
            if old_program is None and prev.placement is not None:
                old_program = compile_program(old_device, prev.distance, prev.policy, frozenset(prev.exclude),
                                              prev.placement, dd=prev.dd).program  # fmt: skip
    for name, device, program in (("old", old_device, old_program), ("new", new, rec.compiled.program)):
        if device is None or program is None:
            out[name] = None
            continue
        r = emulate(device, program, shots, "calibration", seed)
        out[name] = {k: r[k] for k in ("acceptance", "acceptance_ci95", "logical_error_rate", "logical_error_rate_ci95",
                                       "time_per_accepted_state_s", "attempt_s", "mean_attempt_s")}  # fmt: skip
    return out


def _us(s) -> str:
    return "?" if s is None else f"{s * 1e6:.3f} us"


def summary(doc: dict, rec: Recompiled | None = None, paths: list[Path] | None = None) -> str:
    """The printed summary of a recompile report (timings from `rec`, when given)."""
    lines = [f"{doc['device']}: CN20 d={doc['protocol']['distance']} recompiled from {doc['from']['source']}",
             f"  calibration {str(doc['from']['calibration_hash'])[:19]}... -> "
             f"{doc['to']['calibration_hash'][:19]}..."]  # fmt: skip
    changes = doc["changes"]
    if changes:
        lines.append(f"  {len(changes)} change(s): " + ", ".join(f"{k} {sum(c['class'] == k for c in changes)}"
                                                               for k in doc["change_classes"]))  # fmt: skip
        shown = rec.diff.changes if rec is not None else ()
        for c in shown[:12]:
            lines.append("    " + c.describe())
        if len(shown) > 12:
            lines.append(f"    ... and {len(shown) - 12} more (recompile.json, or ctrl diff-device)")
    else:
        lines.append("  no calibration change")
    lines.append(f"  action: {doc['action']}: {doc['why']}")
    timing = {p.name: p.seconds for p in rec.entry.passes} if rec is not None else {}
    ran = ", ".join(f"{p} ({timing[p] * 1e3:.1f} ms)" if p in timing else p for p in doc["passes_run"]) or "none"
    lines.append(f"  passes run: {ran}; skipped: {', '.join(doc['compile_passes_skipped']) or 'none'}")
    if doc["previous_compile_recomputed"]:
        again = ", ".join(doc["previous_compile_recomputed"])
        lines.append(f"  (the previous compile was not cached: recompiled it first: {again})")
    pl = doc["placement"]
    costs = pl["expected_faults_per_attempt"]
    move = "MOVED" if pl["moved"] else "kept"
    lines.append(f"  placement {move}: {pl['why']}")
    if pl["moved"] and pl["old_qubits"] is not None:
        gone = sorted(set(pl["old_qubits"]) - set(pl["new_qubits"]), key=_natural)
        came = sorted(set(pl["new_qubits"]) - set(pl["old_qubits"]), key=_natural)
        lines.append(f"    off {', '.join(gone) or '-'}; onto {', '.join(came) or '-'}")
    old, new = doc["predicted"]["old"], doc["predicted"]["new"]
    if old and new:
        moved_cost = costs["old_placement_new_calibration"]
        lines.append(f"  expected faults per attempt {old['expected_faults_per_attempt']:.4g} -> "
                     f"{new['expected_faults_per_attempt']:.4g} (old placement on the new calibration: "
                     f"{'?' if moved_cost is None else f'{moved_cost:.4g}'})")  # fmt: skip
        lines.append(f"  attempt {_us(old['attempt_s'])} -> {_us(new['attempt_s'])}")
    elif new:
        lines.append(f"  expected faults per attempt {new['expected_faults_per_attempt']:.4g}; "
                     f"attempt {_us(new['attempt_s'])}")  # fmt: skip
    em = doc.get("emulated")
    if em:
        o, n = em.get("old"), em.get("new")

        def both(key: str, f) -> str:
            def one(r) -> str:
                if not r:
                    return "?"
                if r[key] is None:
                    return "undefined (nothing accepted)"
                ci = r.get(f"{key}_ci95")  # a sampled rate is printed with its 95% interval
                return f(r[key]) + (f" [{f(ci[0])}, {f(ci[1])}]" if ci and None not in ci else "")

            return f"{one(o)} -> {one(n)}"

        lines.append(f"  emulated ({em['shots']} shots, calibration noise): "
                     f"acceptance {both('acceptance', lambda x: f'{x:.4g}')}, "
                     f"logical error per accepted {both('logical_error_rate', lambda x: f'{x:.3g}')}, "
                     f"time per accepted state "
                     f"{both('time_per_accepted_state_s', lambda x: f'{x * 1e3:.3g} ms')}")  # fmt: skip
    else:
        lines.append("  acceptance and logical error: not emulated (--emulate-shots N)")
    if paths:
        lines.append(f"  outputs: {doc['outputs']['produced_by']}")
        lines.append("  wrote " + ", ".join(str(p) for p in paths))
    return "\n".join(lines)


def run(source: Path | str, device_file: Path | str, out: Path | str, margin: float = DEFAULT_MARGIN,
        emulate_shots: int = 0, seed: int = 0, cache_dir: Path | str | None = None, distance: int | None = None,
        policy: str | None = None, dd: str | None = None) -> tuple[Recompiled, dict, list[Path]]:  # fmt: skip
    """`ctrl recompile`: load, recompile, emulate if asked, write. Returns (result, report, paths)."""
    new = load_device(device_file)
    cache = CompileCache(cache_dir)
    prev = load_previous(source, new, distance, policy, dd=dd)
    rec = recompile(prev, new, margin, cache)
    emulation = emulate_both(rec, new, emulate_shots, seed) if emulate_shots else None
    paths, doc = write(rec, out, new, cache, emulation)
    return rec, doc, paths
