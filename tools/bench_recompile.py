"""Recompile after a recalibration against a full compile, side by side, in one run.

    python tools/bench_recompile.py [--repeat 15]

For each device: yesterday's compile is written by `ctrl recompile` (so its folder records the calibration
and the cache holds it, QICK sheet included); today's calibration changes

- pulse: every x90 amplitude +1 %, every readout threshold +0.5 (the issue's example);
- phases: every gate's virtual-Z correction +0.01 rad and every CR phase +0.01 rad (every frame moves, so
  nearly every waveform's phase: the QICK patch's most expensive pulse change);
- timing: every single-qubit gate 4 ns longer (re-lowered and rescheduled, placement kept).

Timed, with the new device already loaded (both paths read it the same way), each run writing into a new
folder as the daily loop does (`--out today/`):

- full compile: `compile_program(new, d)` + `write_compiled(..., cache)`, what `ctrl compile` does
  (program.json, program.stim, report.json, the QICK tProc v2 programs per board, compile_inputs.json, and
  the result in its own compile cache);
- recompile: `load_previous(folder)` + `recompile` + `write` (the same files, plus recompile.json, and the
  cache entry), with today's cache entry removed before every run so each run does the work rather than
  finding it cached. A pulse change patches the QICK programs (`reemit_qick`).

In one process, as above (a notebook, a lab server), and one command per process, as the CLI runs: each
run in a new Python process, timed from after its imports and the device file's loading (which the two
commands share, and which are printed apart), so every per-process cache starts cold on both sides (the
placement search's memo, the firmware descriptions, the package versions, the compile cache key's parts).
The child's heap is as the CLI's: the command's libraries imported, then frozen (`ctrl.cli.settled_heap`).

The QICK part on its own: a full emission (`emit_qick`) against the patch of yesterday's programs
(`patch_qick`), which is what the recompile does instead. Two more comparisons: without the QICK programs
(program.json, program.stim, report.json only), and with no files at all (`compile_program` against
`load_previous` + `recompile`).

Every recompiled folder is checked against the full compile: every file byte for byte, report.json up to
its `passes`. Medians of `--repeat` runs (fewer on the slow devices, and a third of them one command per
process). The last line is JSON with every figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from ctrl.backends.qick import emit_qick, patch_qick
from ctrl.cli import build_parser, settled_heap
from ctrl.compile.pipeline import compile_program
from ctrl.device import load_device
from ctrl.outputs import CompileCache, write_compiled, write_outputs
from ctrl.recompile import load_previous, recompile, run, write

ROOT = Path(__file__).resolve().parents[1]
CASES = (("planar16_d3", 3), ("grid25_cz", 3), ("grid55_d5", 5), ("heavyhex65_ecr", 3))  # every shipped device
SLOW = ("grid25_cz", "heavyhex65_ecr")  # a placement search of about a second: fewer runs


def _pulse(doc: dict) -> None:
    for q in doc["calibration"]["qubits"]:
        q["x90"]["pulse"]["amplitude"] = round(q["x90"]["pulse"]["amplitude"] * 1.01, 6)
        q["readout"]["threshold"] = q["readout"]["threshold"] + 0.5


def _phases(doc: dict) -> None:
    for c in doc["calibration"]["couplers"]:
        c["phase_corrections_rad"] = {k: round(v + 0.01, 9) for k, v in c.get("phase_corrections_rad", {}).items()}
        if "cr_phase_rad" in c:
            c["cr_phase_rad"] = round(c["cr_phase_rad"] + 0.01, 9)


def _timing(doc: dict) -> None:
    for q in doc["calibration"]["qubits"]:
        for gate in ("x90", "x180"):
            q[gate]["duration_s"] = round(q[gate]["duration_s"] + 4e-9, 12)


KINDS = (("pulse", _pulse), ("phases", _phases), ("timing", _timing))


def _variant(folder: Path, base: str, name: str, edit=None) -> Path:
    doc = yaml.safe_load((ROOT / "device_configs" / f"{base}.yaml").read_text())
    if edit is not None:
        edit(doc)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _median(fn, repeat: int, before=None) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        if before is not None:
            before()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


class _Fresh:
    """A new output folder for every run (the previous run's is deleted first, outside the timing)."""

    def __init__(self, root: Path, name: str):
        self.root, self.name, self.n = root, name, 0

    @property
    def last(self) -> Path:
        return self.root / f"{self.name}{self.n}"

    def __call__(self) -> Path:
        shutil.rmtree(self.last, ignore_errors=True)
        self.n += 1
        return self.last


def _same(full_dir: Path, re_dir: Path) -> bool:
    for path in full_dir.iterdir():
        if path.name != "report.json" and path.read_bytes() != (re_dir / path.name).read_bytes():
            return False
    a, b = (json.loads((d / "report.json").read_text()) for d in (full_dir, re_dir))
    a.pop("passes"), b.pop("passes")
    return a == b


def bench(folder: Path, base: str, distance: int, repeat: int) -> dict:
    (folder / "firmware").symlink_to(ROOT / "device_configs" / "firmware")
    cache_dir = folder / "cache"
    old_file = _variant(folder, base, "old")
    run(old_file, old_file, folder / "day0", cache_dir=cache_dir, distance=distance)
    old = load_device(old_file)
    yesterday = compile_program(old, distance)
    previous_qick = emit_qick(old, yesterday.program)
    figures: dict = {"device": base, "distance": distance}
    cache = CompileCache(cache_dir)
    for kind, edit in KINDS:
        new_file = _variant(folder, base, kind, edit)
        new = load_device(new_file)
        full_out, re_out = _Fresh(folder, f"full_{kind}_"), _Fresh(folder, f"re_{kind}_")
        full_s, compiled = _median(lambda: _full(new, distance, full_out()), repeat)
        compile_s, _ = _median(lambda: compile_program(new, distance), repeat)
        qick_s, _ = _median(lambda: emit_qick(new, compiled.program), repeat)
        patch_s = None
        if kind != "timing":
            patch_s, _ = _median(lambda: patch_qick(previous_qick, new), repeat)
        key = recompile(load_previous(folder / "day0", new), new, cache=cache).key

        def drop() -> None:  # so that every run recompiles instead of finding today's result cached
            cache._path(key).unlink(missing_ok=True)

        def again():
            rec = recompile(load_previous(folder / "day0", new), new, cache=cache)
            return rec, write(rec, re_out(), new, cache)[1]

        re_s, (rec, doc) = _median(again, repeat, drop)
        drop()
        # the same without the QICK programs (program.json, program.stim, report.json only)
        bare_full_s, _ = _median(lambda: write_outputs(compile_program(new, distance), folder / "bare_full"), repeat)

        def bare(out: Path = folder / f"bare_{kind}"):
            write(recompile(load_previous(folder / "day0", new), new, cache=cache), out, new, cache, qick=False)

        bare_re_s, _ = _median(bare, repeat, drop)
        drop()
        core_s, _ = _median(lambda: recompile(load_previous(folder / "day0", new), new, cache=cache), repeat, drop)
        same = _same(full_out.last, re_out.last)
        # one command per process
        n = max(3, repeat // 3)
        cold_full = [_child("full", folder, new_file, distance, folder / f"cold_full_{kind}") for _ in range(n)]
        cold_re = []
        for _ in range(n):
            drop()
            cold_re.append(_child("recompile", folder, new_file, distance, folder / f"cold_re_{kind}"))
            if cold_re[-1]["action"] != rec.action:  # e.g. a source file edited during the run changes the key
                raise SystemExit(f"{base} {kind}: a new process did {cold_re[-1]['action']!r}, not {rec.action!r}")
        drop()
        same = same and _same(folder / f"cold_full_{kind}", folder / f"cold_re_{kind}")
        cold_full_s = statistics.median(r["run_s"] for r in cold_full)
        cold_re_s = statistics.median(r["run_s"] for r in cold_re)
        figures[kind] = {
            "full_compile_and_write_s": full_s,
            "full_compile_only_s": compile_s,
            "recompile_and_write_s": re_s,
            "recompile_only_s": core_s,
            "speedup": full_s / re_s,
            "speedup_without_writing": compile_s / core_s,
            "qick_emission_s": qick_s,
            "qick_patch_s": patch_s,
            "qick_patch_speedup": qick_s / patch_s if patch_s else None,
            "without_qick": {"full_compile_and_write_s": bare_full_s, "recompile_and_write_s": bare_re_s,
                             "speedup": bare_full_s / bare_re_s},
            "action": rec.action,
            "passes_run": list(rec.passes_run),
            "qick_programs": doc["outputs"]["produced_by"].rsplit(", ", 1)[-1],
            "one_command_per_process": {
                "full_compile_and_write_s": cold_full_s, "recompile_and_write_s": cold_re_s,
                "speedup": cold_full_s / cold_re_s,
                "startup_s": statistics.median(r["startup_s"] for r in cold_full + cold_re),
            },
            "outputs_equal_full_compile": same,
        }  # fmt: skip
    return figures


def _full(new, distance: int, out: Path):
    compiled = compile_program(new, distance)
    write_compiled(compiled, out, new, cache=CompileCache(out.parent / "full_cache"))
    return compiled


def _child(what: str, folder: Path, device_file: Path, distance: int, out: Path) -> dict:
    """One command in a new process: {"run_s": the command, "startup_s": the rest of the process's life
    (the interpreter, the imports, the device file's loading, the exit)}."""
    shutil.rmtree(out, ignore_errors=True)
    args = [sys.executable, __file__, "--child", what, str(folder), str(device_file), str(distance), str(out)]
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"bench child failed:\n{done.stderr}")
    doc = json.loads(done.stdout)
    return doc | {"startup_s": wall - doc["run_s"]}


def child(what: str, folder: str, device_file: str, distance: str, out: str) -> None:
    # the heap as the CLI runs the command: its libraries imported, then frozen (ctrl.cli.settled_heap)
    command = ["compile", "--device", device_file, "-d", distance] if what == "full" else \
        ["recompile", "--from", str(Path(folder) / "day0"), "--device", device_file]
    uses = build_parser().parse_args(command + ["--out", out]).uses
    with settled_heap(uses):
        new = load_device(device_file)
        t1 = time.perf_counter()
        action = "full"
        if what == "full":
            _full(new, int(distance), Path(out))
        else:
            cache = CompileCache(Path(folder) / "cache")
            rec = recompile(load_previous(Path(folder) / "day0", new), new, cache=cache)
            write(rec, out, new, cache)
            action = rec.action
        t2 = time.perf_counter()
    print(json.dumps({"run_s": t2 - t1, "action": action}))
    gc.freeze()  # and frozen again to the exit, as ctrl.cli.console leaves it


def _ms(s) -> str:
    return "-" if s is None else f"{s * 1e3:.1f} ms"


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(*sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    results = []
    print(f"{'device':<16} {'d':>2} {'change':<7} {'full compile':>13} {'recompile':>11} {'speedup':>8}   "
          f"{'per process: full':>18} {'recompile':>10} {'speedup':>8}   "
          f"{'QICK: emit':>11} {'patch':>9} {'speedup':>8}   {'w/o QICK: full':>15} {'recompile':>10} {'speedup':>8}   "
          f"{'no files: full':>15} {'recompile':>10} {'speedup':>8}  outputs  QICK programs")  # fmt: skip
    for base, d in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            r = bench(Path(tmp), base, d, max(3, args.repeat // 5) if base in SLOW else args.repeat)
        results.append(r)
        for kind, _ in KINDS:
            f = r[kind]
            c = f["one_command_per_process"]
            qs = f"{f['qick_patch_speedup']:7.1f}x" if f["qick_patch_speedup"] else f"{'-':>8}"
            print(f"{base:<16} {d:>2} {kind:<7} {_ms(f['full_compile_and_write_s']):>13} "
                  f"{_ms(f['recompile_and_write_s']):>11} {f['speedup']:7.1f}x   "
                  f"{_ms(c['full_compile_and_write_s']):>18} {_ms(c['recompile_and_write_s']):>10} "
                  f"{c['speedup']:7.1f}x   "
                  f"{_ms(f['qick_emission_s']):>11} {_ms(f['qick_patch_s']):>9} {qs}   "
                  f"{_ms(f['without_qick']['full_compile_and_write_s']):>15} "
                  f"{_ms(f['without_qick']['recompile_and_write_s']):>10} {f['without_qick']['speedup']:7.1f}x   "
                  f"{_ms(f['full_compile_only_s']):>15} {_ms(f['recompile_only_s']):>10} "
                  f"{f['speedup_without_writing']:7.1f}x  "
                  f"{'equal' if f['outputs_equal_full_compile'] else 'DIFFER'}    "
                  f"{f['qick_programs']}")  # fmt: skip
    startup = statistics.median(r[k]["one_command_per_process"]["startup_s"] for r in results for k, _ in KINDS)
    print(f"per process: timed after the imports and the device file's loading; the rest of a process's life "
          f"(interpreter, imports, loading, exit) took {_ms(startup)} (median), alike for both commands")
    print(json.dumps({"bench_recompile": results}, sort_keys=True))


if __name__ == "__main__":
    main()
