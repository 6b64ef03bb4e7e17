"""`build_parser`: every command's options, their types and help texts. Nothing heavy is imported here:
every command builds the parser, and `ctrl --help` must start fast."""

from __future__ import annotations

import argparse
import sys

from ctrl.cli.compile_commands import (_cmd_compile, _cmd_dry_run, _cmd_emulate, _cmd_plot, _cmd_recompile,
                                       _cmd_sweep)
from ctrl.cli.device_commands import _cmd_diff_device, _cmd_import, _cmd_schema, _cmd_validate
from ctrl.cli.lab_commands import _cmd_results_convert, _cmd_run, _cmd_serve_board
from ctrl.cli.protocol_commands import MAX_EXACT_SHOTS, _cmd_protocol, _cmd_simulate
from ctrl.errors import CtrlError


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


MAX_SHOTS = 10**9  # a day of sampling at d=3; larger runs are split (ctrl sweep resumes)


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
    p.set_defaults(func=_cmd_simulate, uses=("ctrl.sim.report",))

    p = sub.add_parser("compile", help="place, translate to native gates and schedule the protocol on a device")
    p.add_argument("--device", required=True, help="device file (YAML)")
    p.add_argument("--distance", "-d", type=_distance, required=True, help=_DISTANCE_HELP)
    p.add_argument("--out", required=True, help="output folder: program.json, program.stim, report.json")
    p.add_argument("--policy", choices=("asap", "alap"), default="asap",
                   help="schedule each operation as soon as possible (asap) or as late as possible (alap)")
    p.add_argument("--dd", choices=("xx", "xy4"), help="dynamical decoupling in long idles (default: none)")
    p.add_argument("--cache", metavar="DIR", help="compile cache, where the result is kept for ctrl recompile "
                                                  "(default $CTRL_CACHE_DIR or ~/.cache/ctrl)")
    p.set_defaults(func=_cmd_compile, uses=("ctrl.outputs", "ctrl.backends.qick"))

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
    p.set_defaults(func=_cmd_emulate, uses=("ctrl.emulate.run",))

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
    p.set_defaults(func=_cmd_dry_run, uses=("ctrl.outputs", "ctrl.emulate.run", "ctrl.backends.qick"))

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
    p.set_defaults(func=_cmd_sweep, uses=("ctrl.emulate.sweep",))

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
    p.set_defaults(func=_cmd_validate, uses=("ctrl.device",))

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
    p.set_defaults(func=_cmd_import, uses=("ctrl.device.importers",))

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
    p.set_defaults(func=_cmd_recompile, uses=("ctrl.recompile", "ctrl.backends.qick"))

    p = sub.add_parser("diff-device", help="the calibration (and wiring) changes between two device files; "
                                           "exit 0 if none, 1 if any, 2 on a bad file (as diff)")
    p.add_argument("old", help="old device file")
    p.add_argument("new", help="new device file")
    p.set_defaults(func=_cmd_diff_device, uses=("ctrl.recompile",))
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
    p.set_defaults(func=_cmd_run, uses=("ctrl.lab.client",))

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
    p.set_defaults(func=_cmd_serve_board, uses=("ctrl.lab.board",))
