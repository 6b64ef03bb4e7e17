"""`ctrl`: thin subcommands over the library. Only this module prints or exits.

Bad input of any kind becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import typing
from pathlib import Path

from ctrl.errors import CtrlError
from ctrl.files import write_atomic


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in its help, unless the help already says it or there is none to say (an
    unset option, a flag that is off)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS  # not 0
        if unset or "default" in text or not action.option_strings:
            return text
        shown = " ".join(map(str, action.default)) if isinstance(action.default, list) else action.default
        return f"{text} (default: {str(shown).replace('%', '%%')})"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Formatter)  # subcommands too: add_parser makes a _Parser
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # one line and exit 2, like every other bad input
        print(f"ctrl: error: {message}", file=sys.stderr)
        raise SystemExit(2)


# --- progress bars for the commands that take more than a few seconds (tqdm, on stderr)
#
# A bar is drawn only when its stream is a terminal (tqdm's `disable=None`): a command whose stderr goes to
# a file, a pipe or a test's capture prints nothing more than before, and no bar ever reaches stdout or an
# output file. `_bar` counts work of a known size (shots, chunks); `_stage` marks one step whose inside is
# not reachable (compiling, drawing a plot) so that the terminal says what is running.


def _tqdm(total: int, desc: str, unit: str, file: typing.TextIO | None):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=file if file is not None else sys.stderr, disable=None,
                leave=False, dynamic_ncols=True, unit_scale=unit == "shot")  # fmt: skip


class _Bar:
    """A tqdm bar whose description can name the stage it is in; `update(n)` adds n done."""

    def __init__(self, total: int, desc: str, unit: str = "it", file: typing.TextIO | None = None) -> None:
        self._bar = _tqdm(total, desc, unit, file)
        self._desc = desc
        self.done = 0

    def stage(self, desc: str) -> None:
        if self._desc != desc:
            self._desc = desc
            self._bar.set_description_str(desc)

    def update(self, n: int = 1) -> None:
        self.done += n
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _bar(total: int, desc: str, unit: str = "it", file: typing.TextIO | None = None) -> _Bar:
    return _Bar(total, desc, unit, file)


@contextlib.contextmanager
def _stage(desc: str, file: typing.TextIO | None = None) -> typing.Iterator[None]:
    """One step of unknown inside: shown (with its elapsed time) while it runs, counted 1/1 when done."""
    with _Bar(1, desc, "step", file) as b:
        yield
        b.update(1)


class _Stages:
    """`progress(stage, done, total)` callbacks (ctrl.sim.statevector's) as one bar per stage, each
    closed when the next begins; `close()` ends the last."""

    def __init__(self, unit: str = "it", file: typing.TextIO | None = None) -> None:
        self._unit, self._file = unit, file
        self._bar: _Bar | None = None
        self._name = ""

    def __call__(self, name: str, done: int, total: int) -> None:
        if self._bar is None or name != self._name:
            self.close()
            self._bar, self._name = _Bar(total, name, self._unit, self._file), name
        self._bar.update(done - self._bar.done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> _Stages:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Collecting:
    """`on_commit(task index, chunk Stats)` (ctrl.collect's) as one bar over every task's shots, naming the
    task last heard from with its running errors and discards."""

    def __init__(self, labels: list[str], shots_per_task: int) -> None:
        self._labels = labels
        self._bar = _Bar(len(labels) * shots_per_task, labels[0] if labels else "", "shot")
        self._errors = [0] * len(labels)
        self._discards = [0] * len(labels)

    def __call__(self, task: int, chunk) -> None:
        self._errors[task] += chunk.errors
        self._discards[task] += chunk.discards
        self._bar.stage(f"{self._labels[task]}: {self._errors[task]} errors, {self._discards[task]} discards")
        self._bar.update(chunk.shots)

    def __enter__(self) -> _Collecting:
        return self

    def __exit__(self, *exc) -> None:
        self._bar.close()


def _executor(args: argparse.Namespace, chunks: int | None = None):
    from ctrl.collect.cluster import executor

    return executor(args.cluster, chunks_hint=chunks)


def _chunks(shots: int, tasks: int = 2) -> int:
    from ctrl.collect.run import CHUNK_SHOTS

    return tasks * -(-shots // CHUNK_SHOTS)


def _cmd_protocol(args: argparse.Namespace) -> int:
    from ctrl.noise.models import parse_noise
    from ctrl.protocol.cn20 import cn20_protocol
    from ctrl.sim.lower import to_stim

    noise = parse_noise(args.noise) if args.noise else None
    circuit = cn20_protocol(args.distance)
    out = Path(args.out)
    stim_text = str(to_stim(circuit, "X", noise)) + "\n"
    write_atomic(out / "protocol.json", circuit.to_json())
    write_atomic(out / "protocol.stim", stim_text)
    print(f"wrote {out / 'protocol.json'} and {out / 'protocol.stim'}: {circuit!r}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from ctrl.noise.models import parse_noise
    from ctrl.sim.report import simulate

    noise = parse_noise(args.noise)
    if args.method == "statevector" and args.shots > MAX_EXACT_SHOTS:
        raise CtrlError(f"--shots {args.shots}: the statevector method runs at most {MAX_EXACT_SHOTS} shots "
                        f"(about 1000 per second); use the proxy method, or several runs with other seeds")  # fmt: skip
    if args.method == "statevector":
        from ctrl.collect.cluster import local_workers

        # its workers are forked with the simulator's checkpoints in memory: processes of this machine only
        workers = local_workers(args.cluster, "the statevector method")
        with _Stages(unit="chunk") as stages:  # single faults, then chunks of fault configurations
            result = simulate(args.distance, noise, args.shots, method=args.method, seed=args.seed, progress=stages,
                              workers=workers)  # fmt: skip
    else:
        pool = _executor(args, _chunks(args.shots))
        try:
            with _Collecting(["simulate proxy X", "simulate proxy Z"], args.shots) as heard:
                result = simulate(args.distance, noise, args.shots, method=args.method, seed=args.seed,
                                  executor=pool, progress=heard)  # fmt: skip
        finally:
            pool.close()
    if args.json:
        print(json.dumps(result, indent=1, sort_keys=True))
    else:
        print(_human(result))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from ctrl.device import DeviceError, device_warnings, load_device

    if not args.frequency_guard >= 0:
        raise CtrlError(f"--frequency-guard must be >= 0 Hz, got {args.frequency_guard}")
    bad = 0
    for f in args.files:
        try:
            with device_warnings(args.strict) as heard:  # said here, file by file
                dev = load_device(f, frequency_guard_hz=args.frequency_guard)
        except DeviceError as e:
            problems = e.problems
        except CtrlError as e:
            problems = [str(e)]
        else:
            print(f"{f}: ok: {dev.name}, {len(dev.qubits)} qubits, {len(dev.couplers)} couplers, "
                  + (f"{len(dev.wiring.boards)} board(s)" if dev.wiring is not None else "no QICK wiring")
                  + f", calibration {dev.calibration_hash}"
                  + (f"; {len(heard)} warning(s)" if heard else ""))  # fmt: skip
            for w in heard:
                print(f"  warning: {w}", file=sys.stderr)
            continue
        bad += 1
        for p in problems:
            print(p, file=sys.stderr)
    return 2 if bad else 0


def _cmd_import(args: argparse.Namespace) -> int:
    import yaml

    from ctrl.device import lint_text
    from ctrl.device.importers import import_device

    out = Path(args.out)
    if out.is_dir():
        raise CtrlError(f"{out}: is a folder, expected the device file to write")
    if (out.exists() or out.is_symlink()) and not args.force:
        raise CtrlError(f"{out}: exists; pass --force to replace it")
    # validated before anything is written: DeviceError lists every problem
    text = import_device(args.format, args.source, args.wiring, out.parent)
    _, warnings = lint_text(text, str(out), out.parent, args.frequency_guard)
    write_atomic(out, text)  # committed when the command ends (ctrl.files.outputs)
    doc = yaml.safe_load(text)  # the text just validated
    cal = doc["calibration"]
    qubits, gates = cal["qubits"], cal.get("couplers", [])
    print(f"wrote {out}: {doc['name']}, {len(qubits)} qubits ({sum(q.get('usable', True) for q in qubits)} usable), "
          f"{len(gates)} two-qubit gates ({sum(c.get('usable', True) for c in gates)} usable), "
          f"{len(cal.get('static_zz', []))} static ZZ, {'QICK wiring' if 'wiring' in doc else 'no QICK wiring'}; "
          f"{len(warnings)} warning(s)")
    for w in warnings:
        print(f"  warning: {w}", file=sys.stderr)
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from ctrl.device.schema import json_schema_text

    text = json_schema_text()
    if args.out:
        write_atomic(Path(args.out), text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


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


def _us(seconds: float | None) -> str:
    return "none aborted" if seconds is None else f"{seconds * 1e6:.2f} us"


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
    pool = _executor(args, _chunks(args.max_shots, len(task_list)))
    try:
        with _Collecting(labels, args.max_shots) as heard:
            stats = sweep.run(task_list, csv, args.max_shots, args.max_errors, pool, heard)
    finally:
        pool.close()
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


def _per_accepted(r: dict) -> str:
    """Logical error per accepted state with its interval, or why it is undefined."""
    if r.get("logical_error_rate") is None:
        return "undefined (nothing accepted)"
    elo, ehi = r["logical_error_rate_ci95"]
    return f"{r['logical_error_rate']:.3g}  95% CI [{elo:.3g}, {ehi:.3g}]"


def _emulation_summary(r: dict) -> str:
    lo, hi = r["acceptance_ci95"]
    per_state = ("undefined (nothing accepted)" if r["time_per_accepted_state_s"] is None else
                 f"{r['expected_attempts_per_accepted_state']:.3g}, time per accepted state "
                 f"{r['time_per_accepted_state_s'] * 1e3:.3g} ms")  # fmt: skip
    return "\n".join(
        [
            f"{r['device']}: CN20 d={r['distance']}, noise {r['noise']}, {r['shots']} shots per proxy, seed {r['seed']}",
            f"  acceptance                 {r['acceptance']:.4g}  95% CI [{lo:.4g}, {hi:.4g}]",
            f"  logical error per accepted {_per_accepted(r)}  ({r['logical_errors']} errors, Z-type + X-type)",
            f"  attempt {r['attempt_s'] * 1e6:.2f} us after a {r['reset_s'] * 1e6:.2f} us reset; mean slot "
            f"{r['mean_attempt_s'] * 1e6:.2f} us (aborted: {_us(r['mean_aborted_attempt_s'])}, "
            f"{r['aborted_in_real_time']} aborts in real time)",
            f"  expected attempts per accepted state {per_state}",
            "  discards by check kind: " + ", ".join(f"{k} {v}" for k, v in r["discards_by_kind"].items()),
            f"  calibration {r['provenance']['calibration_hash'][:23]}..., program {r['provenance']['program_hash'][:23]}...",
        ]
    )


def _emulate(device, program, shots: int, noise: str, seed: int, args: argparse.Namespace) -> dict:
    """`emulate` on the executor `--cluster` names, with a bar over both proxies' shots (on a terminal's
    stderr only)."""
    from ctrl.emulate.run import emulate

    pool = _executor(args, _chunks(shots))
    try:
        with _Collecting(["emulate proxy X", "emulate proxy Z"], shots) as heard:
            return emulate(device, program, shots, noise, seed, executor=pool, progress=heard)
    finally:
        pool.close()


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


def _cmd_diff_device(args: argparse.Namespace) -> int:
    from ctrl.device import load_device
    from ctrl.recompile import diff_devices

    old, new = load_device(args.old), load_device(args.new)
    diff = diff_devices(old, new)
    print(f"{args.old} -> {args.new}: {len(diff.changes)} change(s)" + (f" ({', '.join(diff.classes)})" if diff else ""))
    print(diff.text())
    return 1 if diff.changes else 0  # as diff(1): 0 the same, 1 different, 2 trouble (a bad file)


def _human(r: dict) -> str:
    # the statevector method counts probability, not shots: 116.44 accepted is acceptance x shots, and
    # reading it as a count of attempts would be wrong, so the summary says so
    weighted = ", weighted" if r["method"] == "statevector" else ""
    lines = [
        f"CN20 d={r['distance']} {r['noise']} method={r['method']} shots={r['shots']}",
        f"  acceptance          {r['acceptance']:.4f}  95% CI [{r['acceptance_ci95'][0]:.4f}, "
        f"{r['acceptance_ci95'][1]:.4f}]  ({r['accepted']} accepted{weighted})",
        f"  logical error rate  {_per_accepted(r)}  ({r['logical_errors']} errors{weighted})",
    ]
    if weighted:
        lines.append("  (weighted: exact probabilities times shots, not counts of sampled attempts)")
    for name, c in r.get("components", {}).items():
        rate = "undefined" if c["logical_error_rate"] is None else f"{c['logical_error_rate']:.3e}"
        lines.append(f"    {name:28s} {rate} ({c['logical_errors']} / {c['accepted']})")
    lines.append("  discards by first failing check: " + ", ".join(f"{k} {v}" for k, v in r["discards"].items()))
    return "\n".join(lines)


MAX_SHOTS = 10**9  # a day of sampling at d=3; larger runs are split (ctrl sweep resumes)
MAX_EXACT_SHOTS = 10**6  # the state-vector method runs about 1000 attempts per second


_DISTANCE_HELP = "code distance: odd, 3 to 15"  # ctrl.codes.color.MAX_DISTANCE (not imported to start up)
_SHOTS_HELP = f"attempts to sample, 1 to {MAX_SHOTS:,}"
_SEED_HELP = "random seed: the same seed and inputs give the same numbers"
_NOISE_HELP = "noise model: calibration (the device's own errors), calibration*SCALE, or uniform:P"


def _cluster_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", default="local", metavar="SPEC",
                   help="where sampling runs: local (every core, the default), local:N (N processes), "
                        "tcp://HOST:PORT or tls://HOST:PORT (an existing Dask scheduler), slurm or slurm:N "
                        "(dask-jobqueue, N jobs); the numbers are the same on any of them")


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None


def _bounded_int(text: str, lo: int, hi: int, what: str) -> int:
    value = _int(text, what)
    if not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"{what} must be an integer from {lo} to {hi}, got {value}")
    return value


def _distance(text: str) -> int:
    from ctrl.codes.color import check_distance

    try:
        return check_distance(_int(text, "the distance"))
    except CtrlError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _shots(text: str) -> int:
    return _bounded_int(text, 1, MAX_SHOTS, "a shot count")


def _shots_or_zero(text: str) -> int:
    return _bounded_int(text, 0, MAX_SHOTS, "a shot count")


def _seed(text: str) -> int:
    return _bounded_int(text, 0, 2**63 - 1, "the seed")


DESCRIPTION = ("Fault-tolerant |H> magic-state preparation: compile the protocol for a device, emulate it with "
               "the device's noise, run it as QICK FPGA programs. Start with: ctrl dry-run")


EPILOG = """\
examples:
  ctrl dry-run                                   compile, emulate and plot the default device at d=3
  ctrl compile --device DEV.yaml -d 3 --out OUT  program.json, Stim circuit, QICK programs per board
  ctrl emulate --device DEV.yaml -d 3 --shots 100000
  ctrl plot OUT/program.json -o timeline.png     the pulse diagram (--window-us FROM TO to zoom)
  ctrl recompile --from OUT --device NEW.yaml --out OUT2
  ctrl diff-device OLD.yaml NEW.yaml             exit 1 if they differ, as diff

`ctrl COMMAND --help` lists a command's options with their defaults."""


class _Version(argparse.Action):
    """`ctrl --version`: ctrl's version and those of the libraries its results depend on, looked up only
    when asked (every command builds the parser)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        import ctrl
        from ctrl.versions import versions

        found = versions("qick")
        libs = ", ".join(f"{name} {found[name]}" for name in ("stim", "qick", "numpy"))
        print(f"ctrl {ctrl.__version__} ({libs}; python {found['python']})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ctrl", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)  # the epilog's lines kept
    parser.add_argument("--version", action=_Version, help="print the versions of ctrl, stim, qick and numpy")
    parser.add_argument("--strict", action="store_true",
                        help="treat what real devices often show (T2 > 2 T1, spectator frequency collisions) as "
                             "errors in device files, not warnings")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("protocol", help="write the protocol IR (JSON) and its Clifford-proxy Stim circuit")
    p.add_argument("--distance", "-d", type=_distance, required=True, help=_DISTANCE_HELP)
    p.add_argument("--noise", help="noise model, e.g. uniform:0.001 (default: noiseless)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_protocol)

    p = sub.add_parser("simulate", help="acceptance and logical error of the protocol under a noise model")
    p.add_argument("--distance", "-d", type=_distance, required=True, help=_DISTANCE_HELP)
    p.add_argument("--noise", required=True, help="noise model, e.g. uniform:0.001")
    p.add_argument("--shots", type=_shots, required=True, help=_SHOTS_HELP)
    p.add_argument("--method", choices=("proxy", "statevector"), default="proxy",
                   help="proxy: Clifford proxy circuits in Stim (fast, weighted counts); statevector: exact, "
                        f"at most {MAX_EXACT_SHOTS:,} shots")
    p.add_argument("--seed", type=_seed, default=0, help=_SEED_HELP)
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a summary")
    _cluster_option(p)
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("compile", help="place, translate to native gates and schedule the protocol on a device")
    p.add_argument("--device", required=True, help="device file (YAML)")
    p.add_argument("--distance", "-d", type=_distance, required=True, help=_DISTANCE_HELP)
    p.add_argument("--out", required=True, help="output folder: program.json, program.stim, report.json")
    p.add_argument("--policy", choices=("asap", "alap"), default="asap",
                   help="schedule each operation as soon as possible (asap) or as late as possible (alap)")
    p.add_argument("--dd", choices=("xx", "xy4"), help="dynamical decoupling in long idles (default: none)")
    p.add_argument("--cache", metavar="DIR", help="compile cache, where the result is kept for ctrl recompile "
                                                  "(default $CTRL_CACHE_DIR or ~/.cache/ctrl)")
    p.set_defaults(func=_cmd_compile)

    p = sub.add_parser("emulate", help="dry-run the compiled program with the device's noise (Stim)")
    p.add_argument("--device", help="device file (YAML); required unless --program, whose default is the "
                                    "shipped device of the program's name")
    p.add_argument("--distance", "-d", type=_distance, help=_DISTANCE_HELP + "; required unless --program "
                                                                            "(then, if given, it must be the program's)")
    p.add_argument("--program", metavar="DIR", help="emulate the program of this ctrl compile folder instead of "
                                                    "compiling one (its calibration must be --device's)")
    p.add_argument("--shots", type=_shots, required=True, help=_SHOTS_HELP)
    p.add_argument("--noise", default="calibration", help=_NOISE_HELP)
    p.add_argument("--seed", type=_seed, default=0, help=_SEED_HELP)
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a summary")
    p.add_argument("--dd", choices=("xx", "xy4"), help="dynamical decoupling in long idles (default: none)")
    _cluster_option(p)
    p.set_defaults(func=_cmd_emulate)

    p = sub.add_parser("dry-run", help="compile the default device for d=3, emulate it, write artifacts and a summary")
    p.add_argument("--device", help="device file (default: the shipped planar16_d3.yaml, 16 qubits on one ZCU216)")
    p.add_argument("--distance", "-d", type=_distance, default=3, help=_DISTANCE_HELP + " (default 3)")
    p.add_argument("--shots", type=_shots, default=100_000, help=_SHOTS_HELP + " (default 100000)")
    p.add_argument("--noise", default="calibration", help=_NOISE_HELP)
    p.add_argument("--seed", type=_seed, default=0, help=_SEED_HELP)
    p.add_argument("--out", default="dry-run", help="output folder (default: ./dry-run)")
    p.add_argument("--dd", choices=("xx", "xy4"), help="dynamical decoupling in long idles (default: none)")
    p.add_argument("--cache", metavar="DIR", help="compile cache, where the result is kept for ctrl recompile "
                                                  "(default $CTRL_CACHE_DIR or ~/.cache/ctrl)")
    _cluster_option(p)
    p.set_defaults(func=_cmd_dry_run)

    p = sub.add_parser("sweep", help="noise/distance/device sweeps as sinter tasks: multi-core, resumable CSV")
    p.add_argument("--device", nargs="+", required=True, help="device files")
    p.add_argument("--distance", "-d", type=_distance, nargs="+", default=[3], help=_DISTANCE_HELP + " (default 3)")
    p.add_argument("--noise", nargs="+", required=True, help="e.g. uniform:1e-4 uniform:1e-3 calibration*0.1")
    p.add_argument("--max-shots", type=_shots, default=100_000, help=f"shots per task, at most {MAX_SHOTS:,} (default 100000)")
    p.add_argument("--max-errors", type=_shots, default=1000, help="stop a task after this many logical errors (default 1000)")
    p.add_argument("--csv", required=True, help="statistics file (appended to; a rerun resumes)")
    p.add_argument("--plot", help="PNG of logical error and discard rate against p (uniform:P) and the scale "
                                  "(calibration*SCALE), 95%% intervals, with the paper's points")
    _cluster_option(p)
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("plot", help="timeline plot (pulse diagram) of a compiled program.json")
    p.add_argument("program", help="program.json written by ctrl compile")
    p.add_argument("-o", "--output", required=True, help="image file: .png, .svg or .pdf; a program on several "
                                                         "boards also gets one page per board, OUT_<board>.png")
    p.add_argument("--window-us", type=float, nargs=2, metavar=("FROM", "TO"),
                   help="draw only the operations between FROM and TO microseconds (default: the whole attempt)")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("validate", help="check device files (model, graph, wiring against the QICK firmware)")
    p.add_argument("files", nargs="+", metavar="FILE", help="device files (YAML) to check")
    p.add_argument("--frequency-guard", type=float, default=20e6, metavar="HZ",
                   help="smallest allowed detuning between coupled or next-nearest qubits, and between "
                        "resonators on one feedline (default 20e6)")
    p.set_defaults(func=_cmd_validate)

    from ctrl.device.importers import FORMATS

    p = sub.add_parser("import", help="turn a lab's calibration file into a ctrl device file (validated before writing)")
    p.add_argument("format", choices=sorted(FORMATS), help="the source's format")
    p.add_argument("source", help="the calibration file, e.g. an IBM props_*.json")
    p.add_argument("--out", required=True, metavar="DEVICE.yaml", help="device file to write")
    p.add_argument("--wiring", metavar="WIRING.yaml",
                   help="YAML file whose 'wiring:' section is added (default: none; the device then makes no QICK programs)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists (default: refuse)")
    p.add_argument("--frequency-guard", type=float, default=20e6, metavar="HZ",
                   help="the guard for the frequency-collision warnings printed after the import (default 20e6; "
                        "the import itself is checked as ctrl validate checks with its default)")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("schema", help="print the JSON Schema of device files (for editors)")
    p.add_argument("--out", help="write it to this file instead")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser("recompile", help="recompile for a new calibration, redoing only what the changes reach")
    p.add_argument("--from", dest="source", required=True, metavar="OLD",
                   help="output folder of a previous ctrl recompile, or the old device file")
    p.add_argument("--device", required=True, help="the new device file (YAML)")
    p.add_argument("--out", required=True, help="output folder: program.json, program.stim, report.json, "
                                                "compile_inputs.json, recompile.json")
    p.add_argument("--margin", type=float, default=0.05,
                   help="move the placement only if the best one expects this much fewer faults (relative, default 0.05)")
    p.add_argument("--emulate-shots", type=_shots_or_zero, default=0, metavar="N",
                   help="emulate old and new programs with N shots each for acceptance and logical error")
    p.add_argument("--seed", type=_seed, default=0, help=_SEED_HELP)
    p.add_argument("--cache", metavar="DIR", help="compile cache (default $CTRL_CACHE_DIR or ~/.cache/ctrl)")
    p.add_argument("--distance", "-d", type=_distance, help="with an old device file: the distance compiled (default 3)")
    p.add_argument("--policy", choices=("asap", "alap"),
                   help="with an old device file: the scheduling policy compiled (default asap; a folder records it)")
    p.add_argument("--dd", choices=("xx", "xy4"),
                   help="with an old device file: the dynamical decoupling sequence compiled (a folder records it)")
    p.set_defaults(func=_cmd_recompile)

    p = sub.add_parser("diff-device", help="the calibration (and wiring) changes between two device files; "
                                           "exit 0 if none, 1 if any, 2 on a bad file (as diff)")
    p.add_argument("old", help="old device file")
    p.add_argument("new", help="new device file")
    p.set_defaults(func=_cmd_diff_device)
    _add_lab_commands(sub)
    _add_results_command(sub)
    return parser


def _add_results_command(sub) -> None:
    p = sub.add_parser("results", help="lab results files: convert an older ctrl run's JSON lines to HDF5")
    rsub = p.add_subparsers(dest="results_command", required=True, metavar="ACTION", help="what to do with the results")
    c = rsub.add_parser("convert", help="write (or extend with new batches) the HDF5 file ctrl run now writes, "
                                        "from an older ctrl run's JSON lines")
    c.add_argument("source", metavar="RESULTS", help="results file written by an older ctrl run (JSON lines)")
    c.add_argument("--out", required=True, metavar="H5", help="HDF5 file; an existing one of the same run gains the "
                                                              "batches it lacks")
    c.add_argument("--program", metavar="DIR", help="the compile folder the run ran: adds each readout window's "
                                                    "label and threshold (so the Dataset has the thresholded bits)")
    c.add_argument("--device", help="device file the program was compiled for (default: the shipped one of its name)")
    c.set_defaults(func=_cmd_results_convert)


def _cmd_results_convert(args: argparse.Namespace) -> int:
    from ctrl.lab.dataset import convert

    r = convert(Path(args.source), Path(args.out), args.program, args.device)
    print(f"{r['out']}: {r['batches']} batches, {r['shots']} shots ({r['appended']} batches appended)")
    return 0


PROXY_NAME = "myqick"  # qick.pyro's default proxy name (ctrl.lab.board.PROXY_NAME; not imported to start up)


def _proxy_name(text: str) -> str:
    if not text or not text.isprintable() or text.strip() != text:
        raise argparse.ArgumentTypeError(f"a proxy name must be printable, without leading or trailing blanks, "
                                         f"got {text!r}")
    return text


def _add_lab_commands(sub) -> None:
    p = sub.add_parser("run", help="run a compiled program on a QICK board (qick's Pyro4 remote interface)")
    p.add_argument("--board", required=True, metavar="HOST:PORT", help="the board's Pyro name server")
    p.add_argument("--program", required=True, metavar="DIR", help="folder written by ctrl compile")
    p.add_argument("--shots", type=_shots, required=True, help="attempt slots, rounded up to whole batches")
    p.add_argument("--out", required=True, metavar="RESULTS", help="results file (HDF5, e.g. results.h5, "
                                                                   "ctrl.open_dataset loads it; a rerun resumes)")
    p.add_argument("--device", help="device file the program was compiled for (default: the shipped one of its name)")
    p.add_argument("--key-file", metavar="FILE",
                   help="the board's HMAC key (default $CTRL_BOARD_KEY_FILE or ~/.config/ctrl/board.key, as "
                        "ctrl serve-board writes it)")
    p.add_argument("--insecure-board", action="store_true",
                   help="talk to qick's own server, which does not authenticate: whatever answers at --board can "
                        "then run code in this process")
    p.add_argument("--timeout-s", type=float, default=60.0,
                   help="seconds a board may stay silent on one call before the run stops (default 60)")
    p.add_argument("--proxy-name", type=_proxy_name, default=PROXY_NAME,
                   help="the name the board's proxy is registered under in its name server (qick's "
                        "start_server proxy_name; ctrl serve-board --proxy-name)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("serve-board", help="serve an emulated QICK board (Pyro4, as qick's own server) for ctrl run")
    p.add_argument("--device", required=True, help="device file (YAML)")
    p.add_argument("--board", help="which board of the device (default: its only one)")
    p.add_argument("--port", type=int, default=8888, help="name server port (default 8888, qick's; 0: any free)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--allow-remote", action="store_true", help="allow an address other than loopback")
    p.add_argument("--noise", default="calibration", help=_NOISE_HELP)
    p.add_argument("--seed", type=_seed, default=0, help=_SEED_HELP)
    p.add_argument("--key-file", metavar="FILE",
                   help="HMAC key every client must sign with (default $CTRL_BOARD_KEY_FILE or "
                        "~/.config/ctrl/board.key; made if missing)")
    p.add_argument("--proxy-name", type=_proxy_name, default=PROXY_NAME,
                   help="the name to register the board under (ctrl run --proxy-name finds it)")
    p.set_defaults(func=_cmd_serve_board)


def _cmd_run(args: argparse.Namespace) -> int:
    import time

    from ctrl.lab.client import run

    live = sys.stdout.isatty()

    def show(p) -> None:
        eta = f"{p.eta_s:.0f} s" if p.eta_s == p.eta_s else "?"
        line = (f"{p.shots_done}/{p.shots_total} shots, acceptance {p.acceptance:.4f} "
                f"({p.accepted}/{p.attempts}), {p.elapsed_s:.1f} s, ETA {eta}")  # fmt: skip
        print(("\r" + line + "   ") if live else line, end="" if live else "\n", flush=True)

    from ctrl.lab.auth import read_key

    if not 0 < args.timeout_s <= 86400:
        raise CtrlError(f"--timeout-s must be in (0, 86400] seconds, got {args.timeout_s:g}")
    if args.insecure_board:
        if args.key_file:
            raise CtrlError("--insecure-board and --key-file exclude each other")
        print("ctrl: WARNING: --insecure-board: the board is not authenticated; anything answering at "
              f"{args.board} can run code in this process", file=sys.stderr)  # fmt: skip
        key = None
    else:
        key = read_key(Path(args.key_file) if args.key_file else None)
    t0 = time.monotonic()
    device = Path(args.device) if args.device else None
    try:
        r = run(args.board, Path(args.program), args.shots, Path(args.out), device, show, key=key,
                proxy_name=args.proxy_name, timeout_s=args.timeout_s,
                note=lambda text: print(f"ctrl: note: {text}", file=sys.stderr, flush=True))
    finally:
        if live:
            print()  # end the progress line, also before an error message
    lo, hi = r["acceptance_ci95"]
    lines = [
        f"{r['shots']} attempt slots on {args.board} in {time.monotonic() - t0:.1f} s; results in {args.out}",
        f"  acceptance                 {r['acceptance']:.4g}  95% CI [{lo:.4g}, {hi:.4g}]  ({r['accepted']} accepted)",
    ]
    if "logical_error_rate" in r:
        lines.append(f"  logical error per accepted {_per_accepted(r)}  "
                     f"({r['logical_errors']} errors, Z-type + X-type; emulator ground truth)")  # fmt: skip
    else:
        lines.append("  logical error per accepted: not measured (the board reports no logical readout)")
    lines.append(f"  board decisions differing from the real-time rule on the same readouts: {r['decision_mismatches']}")
    print("\n".join(lines))
    return 0


def _cmd_serve_board(args: argparse.Namespace) -> int:
    import time

    from ctrl.lab.auth import default_key_file, ensure_key
    from ctrl.lab.board import serve

    key_file = Path(args.key_file) if args.key_file else default_key_file()
    key, created = ensure_key(key_file)
    server = serve(Path(args.device), args.board, args.host, args.port, args.allow_remote, args.noise, args.seed,
                   key=key, proxy_name=args.proxy_name)  # fmt: skip
    soc = server.soc
    print(f"emulated board {soc._board} of {args.device} (noise {args.noise}, seed {args.seed}) as "
          f"{server.proxy_name!r}; name server {server.host}:{server.port}; Ctrl-C stops it", flush=True)  # fmt: skip
    print(f"  clients authenticate with the key in {key_file}{' (new)' if created else ''}: `ctrl run` on this "
          f"machine finds it; elsewhere copy it (mode 600) and pass --key-file", flush=True)  # fmt: skip
    import signal

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # a service manager stops it as Ctrl-C does
    seen = 0
    try:
        while not stop:
            time.sleep(0.5)
            if soc.runs != seen:
                seen = soc.runs
                print(f"  acquisition {seen} done for {soc.owner or soc.last_client}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    print("stopped")
    return 0


# commands whose files must appear as they are made (a lab run's results, batch by batch), not at the end
_STREAMING = ("run", "serve-board")


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered for the closed pipe is dropped, so the
    interpreter's flush at exit has nowhere to fail."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (pytest's capture): nothing is flushed at exit either
        pass


class _PipeGuard:
    """stdout that, once the reader has closed the pipe (`ctrl ... | head`), drops what is printed instead of
    raising: the command goes on and its files are written, as if nobody had been reading."""

    def __init__(self, inner: typing.TextIO) -> None:
        self.inner, self.broken = inner, False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.inner.write(text)
            except BrokenPipeError:
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.inner.flush()
            except BrokenPipeError:
                self.broken = True

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code. `ctrl ... | head` ends quietly, with the command's files written, and
    code 141 (as a shell reports a SIGPIPE) wherever the pipe closed: in a command, in --help, or in the
    last flush."""
    guard = _PipeGuard(sys.stdout)
    sys.stdout = guard
    try:
        code = _main(argv)
        guard.flush()  # here, where a closed pipe is caught, not in the interpreter's flush at exit
    finally:
        sys.stdout = guard.inner
    if guard.broken:  # the reader has what it wanted
        _quiet_stdout()
        return 141
    return code


def _main(argv: list[str] | None) -> int:
    from ctrl.files import outputs

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # a bad argument (said in one line) or --help: a code, as for any other input
        return e.code if isinstance(e.code, int) else 2
    from ctrl.device import device_warnings

    try:
        with device_warnings(args.strict) as heard:
            try:
                if args.command in _STREAMING:
                    return args.func(args)
                with outputs():  # a command that fails leaves no output of its own, and none half-written
                    return args.func(args)
            finally:
                for w in heard:
                    print(f"ctrl: warning: {w}", file=sys.stderr)
    except CtrlError as e:
        print(f"ctrl: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the disk, not the input: a full disk, an unwritable or missing folder
        where = f"{e.filename}: " if e.filename else ""
        print(f"ctrl: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ctrl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
