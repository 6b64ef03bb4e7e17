"""`ctrl compile`, `emulate`, `dry-run`, `recompile`, `plot` and `sweep`: a device's compiled program,
written, emulated with the device's noise, recompiled for a new calibration, drawn, swept."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ctrl.cli.progress import _sampling, _stage
from ctrl.cli.summaries import _emulation_summary
from ctrl.errors import CtrlError
from ctrl.files import write_atomic


def _cmd_compile(args: argparse.Namespace) -> int:
    from ctrl.compile.pipeline import compile_program
    from ctrl.device import load_device
    from ctrl.outputs import CompileCache, write_compiled

    device = load_device(args.device)
    compiled = compile_program(device, args.distance, policy=args.policy, dd=args.dd)
    paths, cache_problem = write_compiled(compiled, args.out, device, args.policy, dd=args.dd,
                                          cache=CompileCache(args.cache))  # fmt: skip
    r = compiled.report
    print(
        f"{device.name}: d={args.distance} on {r['qubits_used']} qubits ({r['placement']['method']} placement), "
        f"{r['duration_s'] * 1e6:.3f} us per attempt, {r['duration_over_critical_path']:.3f} x critical path, "
        f"{r['decision_points']} decision points"
    )
    for p in compiled.passes:
        print(f"  pass {p.name:<10} {p.kind:<14} {p.seconds * 1e3:8.1f} ms")
    print("wrote " + ", ".join(str(p) for p in paths))
    _say_no_qick(device)
    _say_removed()
    _warn_cache(cache_problem)
    return 0


def _say_no_qick(device) -> None:
    from ctrl.outputs import NO_QICK_WHY

    if device.wiring is None:
        print(f"no QICK programs: {NO_QICK_WHY}")


def _say_removed() -> None:
    from ctrl.files import removed_outputs

    stale = removed_outputs()
    if stale:
        names = ", ".join(p.name for p in stale[:6]) + (f" and {len(stale) - 6} more" if len(stale) > 6 else "")
        print(f"removed {len(stale)} stale QICK file(s) of an earlier compile that this one did not write: {names}")


def _warn_cache(problem: str | None) -> None:
    if problem is not None:
        print(f"warning: {problem}; the outputs are complete, but the first `ctrl recompile --from` this folder "
              "will lower the protocol again", file=sys.stderr)  # fmt: skip


def _cmd_sweep(args: argparse.Namespace) -> int:
    from ctrl.emulate import sweep

    csv = Path(args.csv)
    with _stage("compile and lower the sweep's programs"):
        task_list = sweep.tasks(args.device, args.distance, args.noise)
    labels = [f"{t.metadata['name']} d={t.metadata['d']} {t.metadata['noise']} proxy {t.metadata['proxy']}" for t in task_list]
    with _sampling(args, labels, args.max_shots) as (pool, heard):
        stats = sweep.run(task_list, csv, args.max_shots, args.max_errors, pool, heard)
    rows = sweep.summarize(stats, task_list)

    def g(x, fmt):
        return "undefined" if x is None else format(x, fmt)

    for r in rows:
        ci = "" if r["p_L_ci95"] is None else f" [{r['p_L_ci95'][0]:.3g}, {r['p_L_ci95'][1]:.3g}]"
        vs = "" if r["baseline_error"] is None else (
            f"  vs physical {r['baseline_error']:.3g}: "
            + {True: "better", False: "worse", None: "undecided"}[r["beats_baseline"]])
        print(f"{r['device']:<16} d={r['distance']} {r['noise']:<22} acceptance {g(r['acceptance'], '.4g')}  "
              f"p_L {g(r['p_L'], '.3g')}{ci}  (shots {r['shots_X']} + {r['shots_Z']}){vs}")  # fmt: skip
    for b in sweep.break_even(rows):
        lo, hi = b["beats_up_to_scale"], b["loses_from_scale"]
        where = ("not decided by these scales" if lo is None and hi is None else
                 f"below scale {hi:g}, and not at any swept scale" if lo is None else
                 f"above scale {lo:g} (better up to there)" if hi is None else f"between scales {lo:g} and {hi:g}")
        print(f"{b['device']} d={b['distance']}: sampled break-even with the physical baseline {where}")
    if args.plot:
        sweep.plot(rows, stats, Path(args.plot))
        print(f"wrote {args.plot}")
    print(f"statistics in {csv} (sinter CSV; run again with a larger --max-shots or --max-errors to add shots)")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from ctrl.backends.plot import page_path, plot_boards, plot_timeline, save_figure

    window = tuple(args.window_us) if args.window_us else None
    out = Path(args.output)
    with _stage("plot"):
        plot_timeline(Path(args.program), out, window)
        # several boards: the whole page is too dense to read at d >= 7, so each board gets its own too
        pages = plot_boards(Path(args.program), None, window)
        if len(pages) > 1:
            for b, fig in pages.items():
                save_figure(fig, page_path(out, b))
    print(f"wrote {args.output}")
    if len(pages) > 1:
        print(f"wrote {len(pages)} board pages: " + ", ".join(str(page_path(out, b)) for b in pages))
    return 0


def _emulate(device, program, shots: int, noise: str, seed: int, args: argparse.Namespace) -> dict:
    """`emulate` on the executor `--cluster` names, with a bar over both proxies' shots (on a terminal's
    stderr only)."""
    from ctrl.emulate.run import emulate

    with _sampling(args, ["emulate proxy X", "emulate proxy Z"], shots) as (pool, heard):
        return emulate(device, program, shots, noise, seed, executor=pool, progress=heard)


def _compile(device, distance: int, **kwargs):
    from ctrl.compile.pipeline import compile_program

    with _stage("compile"):
        return compile_program(device, distance, **kwargs)


def _emulated_program(args: argparse.Namespace):
    """(device, program) for ctrl emulate: the folder's program (--program) or one compiled now."""
    from ctrl.device import load_device

    if args.program is None:
        if args.device is None or args.distance is None:
            raise CtrlError("give --device and --distance (compiled now), or --program DIR (a ctrl compile folder)")
        device = load_device(args.device)
        return device, _compile(device, args.distance, dd=args.dd).program
    from ctrl.compile.timed import read_program
    from ctrl.lab.client import program_device

    folder = Path(args.program)
    if args.dd is not None:
        raise CtrlError(f"--dd {args.dd}: the program in {folder} is compiled already (with the decoupling it "
                        f"was compiled with); --dd applies only when compiling from --device")  # fmt: skip
    program = read_program(folder / "program.json")
    if args.distance is not None and args.distance != program.distance:
        raise CtrlError(f"--distance {args.distance}: the program in {folder} is d={program.distance}")
    device = program_device(program, folder / "program.json", Path(args.device) if args.device else None)
    return device, program


def _cmd_emulate(args: argparse.Namespace) -> int:
    from ctrl.emulate.run import check_noise

    check_noise(args.noise)
    device, program = _emulated_program(args)
    result = _emulate(device, program, args.shots, args.noise, args.seed, args)
    print(json.dumps(result, indent=1, sort_keys=True) if args.json else _emulation_summary(result))
    if not args.json:  # --json prints one JSON document: the budget is on stdout only in the summary
        from ctrl.emulate.budget import budget_for_noise, budget_table

        print(budget_table(budget_for_noise(device, program, args.noise)))
    return 0


def _cmd_dry_run(args: argparse.Namespace) -> int:
    from ctrl.backends.plot import plot_timeline
    from ctrl.device import DEFAULT_DEVICE, load_device
    from ctrl.emulate.run import check_noise
    from ctrl.outputs import CompileCache, write_compiled

    device = load_device(args.device or DEFAULT_DEVICE)
    check_noise(args.noise)
    out = Path(args.out)
    compiled = _compile(device, args.distance, dd=args.dd)
    paths, cache_problem = write_compiled(compiled, out, device, dd=args.dd, cache=CompileCache(args.cache))
    result = _emulate(device, compiled.program, args.shots, args.noise, args.seed, args)
    write_atomic(out / "emulation.json", json.dumps(result, indent=1, sort_keys=True) + "\n")
    with _stage("plot"):
        plot_timeline(compiled.program, out / "timeline.png")
    r = compiled.report
    summary = "\n".join(
        [
            f"dry run of CN20 d={args.distance} on {device.name} ({r['qubits_used']} qubits, "
            f"{r['placement']['method']} placement, {r['native_gate_counts']})",
            f"  schedule {r['duration_s'] * 1e6:.2f} us per attempt = {r['duration_over_critical_path']:.3f} x the "
            f"critical path; {r['decision_points']} decision points",
            _emulation_summary(result),
            "  files: " + ", ".join(p.name for p in paths) + ", emulation.json, timeline.png, summary.txt",
        ]
    )
    write_atomic(out / "summary.txt", summary + "\n")
    print(summary)
    # the budget goes to its own file and to stdout, not into summary.txt (whose bytes are locked)
    from ctrl.emulate.budget import budget_for_noise, budget_table

    b = budget_for_noise(device, compiled.program, args.noise)
    write_atomic(out / "budget.json", json.dumps(b, indent=1, sort_keys=True, allow_nan=False) + "\n")
    print(budget_table(b))
    print(f"wrote {out}/")
    _say_no_qick(device)
    _say_removed()
    _warn_cache(cache_problem)
    return 0


def _cmd_recompile(args: argparse.Namespace) -> int:
    from ctrl.recompile import run, summary

    rec, doc, paths = run(args.source, args.device, Path(args.out), margin=args.margin, emulate_shots=args.emulate_shots,
                          seed=args.seed, cache_dir=args.cache, distance=args.distance, policy=args.policy,
                          dd=args.dd)  # fmt: skip
    print(summary(doc, rec, paths))
    _say_removed()
    return 0
