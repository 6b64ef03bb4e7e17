"""`ctrl run`: drive a QICK board through qick's own Pyro4 remote interface.

The connection is made as `qick.pyro.make_proxy` makes it (pickle serializer, name server lookup of the
board's proxy name, `QickConfig(soc.get_cfg())`), without its printing. The board's firmware description
must equal the one the program was compiled against (the compile folder holds it), or nothing is loaded.
The program is qick's own dump (`qick_<board>.json`), reloaded into an `AcquireProgramV2` and acquired
with qick's `acquire(..., step_rounds=True)`: each round is one run of the program's attempt-slot loop,
and one round is one batch. After every batch the raw accumulated readouts, the board's own
verdict per attempt and the real-time rule's verdict on the same readouts are appended to the HDF5
results file and committed (`ctrl.lab.results`), so a rerun resumes after the last completed batch.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ctrl.backends.qick.assemble import quiet_qick
from ctrl.compile.timed import MAX_PROGRAM_BYTES, TimedProgram, read_program
from ctrl.device.firmware import MAX_FIRMWARE_BYTES
from ctrl.errors import CtrlError
from ctrl.files import read_limited
from ctrl.lab import results as res_file
from ctrl.lab.board import MAX_MESSAGE_BYTES, PROXY_NAME
from ctrl.collect.stats import COMPONENTS, binomial_ci, either_fails

# Fields of a firmware description that are not the firmware: the qick library version of the board's
# Python side (`sw_version`) and the DAC output current that newer libraries add (`rf.dac_power`).
IGNORED_FIRMWARE_FIELDS = ("sw_version", "rf.dac_power")


@dataclass(frozen=True)
class CompiledRun:
    """What `ctrl compile` wrote, as `ctrl run` needs it."""

    folder: Path
    board: str
    program: TimedProgram
    dump: dict  # qick's dump_prog() of the board's program
    firmware: dict  # the firmware description the program was compiled against
    program_hash: str
    firmware_hash: str
    attempts: int  # attempt slots per run of the program (one batch)
    labels: dict  # ro -> label of each window of a slot ("key", "reset:Q", "dummy")
    thresholds: dict  # label -> threshold of its test (bit 1 iff accumulated I >= threshold)

    def __repr__(self) -> str:
        return f"CompiledRun({self.folder}, board {self.board}, {self.program!r})"


def firmware_hash(cfg: dict) -> str:
    return "sha256:" + hashlib.sha256(_canonical(_strip(cfg)).encode()).hexdigest()


def firmware_mismatch(board: dict, compiled: dict) -> str:
    """'' if the two descriptions are the same firmware, else the first difference, as one phrase."""
    a, b = _strip(board), _strip(compiled)
    if _canonical(a) == _canonical(b):
        return ""
    return _first_difference(a, b, "")


def parse_board(spec: str) -> tuple[str, int]:
    host, sep, port = spec.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CtrlError(f"--board {spec!r}: expected HOST:PORT of the board's Pyro name server, e.g. 127.0.0.1:8888")
    return host, int(port)


TIMEOUT_S = 60.0  # a board silent this long on one call is taken as gone (a batch streams well within it)


def connect(host: str, port: int, proxy_name: str = PROXY_NAME, key: bytes | None = None,
            timeout_s: float = TIMEOUT_S):
    """(soc proxy, QickConfig) as `qick.pyro.make_proxy` returns them, every message signed with `key` (an
    HMAC: a board without the key is refused before anything it sends is unpickled). `key=None` talks to an
    unauthenticated qick server: whatever answers can then run code in this process."""
    import Pyro4
    import Pyro4.errors
    from qick import QickConfig

    Pyro4.config.SERIALIZER = "pickle"
    Pyro4.config.PICKLE_PROTOCOL_VERSION = 4
    Pyro4.config.MAX_MESSAGE_SIZE = MAX_MESSAGE_BYTES
    Pyro4.config.COMMTIMEOUT = timeout_s  # the name server lookup has no proxy to set it on first
    hint = ("check that the board and ctrl run use the same key (--key-file), or, for qick's own unauthenticated "
            "server, pass --insecure-board") if key is not None else "is it an authenticating ctrl serve-board? then pass its key"  # fmt: skip
    try:
        ns = Pyro4.locateNS(host=host, port=port, hmac_key=key)
        ns._pyroTimeout = timeout_s
        try:
            uri = ns.lookup(proxy_name)
        except Pyro4.errors.NamingError:
            names = sorted(n for n in ns.list() if n != "Pyro.NameServer")
            raise CtrlError(f"board {host}:{port}: the name server has no proxy named {proxy_name!r} "
                            f"(it has: {', '.join(map(repr, names)) or 'none'}); pass the board's name with "
                            f"--proxy-name") from None  # fmt: skip
        soc = Pyro4.Proxy(uri)
        soc._pyroHmacKey = key
        soc._pyroTimeout = timeout_s
        cfg = soc.get_cfg()
    except Pyro4.errors.NamingError as e:
        raise CtrlError(f"board {host}:{port}: no name server or no proxy {proxy_name!r} there ({e}); {hint}") from None
    except Pyro4.errors.TimeoutError:
        raise CtrlError(f"board {host}:{port}: no answer within {timeout_s:g} s") from None
    except Pyro4.errors.SecurityError as e:
        raise CtrlError(f"board {host}:{port}: refused: the messages are not authenticated alike ({e}); {hint}") from None
    except Pyro4.errors.CommunicationError as e:
        raise CtrlError(f"board {host}:{port}: cannot reach the board's proxy {proxy_name!r} ({e}); {hint}") from None
    if not isinstance(cfg, dict):
        raise CtrlError(f"board {host}:{port}: its firmware description is a {type(cfg).__name__}, not a dict")
    try:
        with quiet_qick():
            soccfg = QickConfig(cfg)
    except Exception as e:  # noqa: BLE001 - qick's parser on whatever the board sent, as one line
        raise CtrlError(f"board {host}:{port}: qick cannot read its firmware description ({type(e).__name__}: {e})") from None
    return soc, soccfg


def program_device(program: TimedProgram, where: Path, device_file: Path | None = None):
    """The device `program` (read from `where`, its program.json) was compiled for: `device_file`, or the
    shipped device of the program's name; refused, naming both hashes, if its calibration or wiring is not
    the program's. `ctrl run` and `ctrl emulate --program` both find the device so."""
    from ctrl.device import DEFAULT_DEVICE, load_device

    if device_file is None:
        device_file = DEFAULT_DEVICE.parent / f"{program.device}.yaml"
    device = load_device(device_file)
    try:
        device.target.check_program(program, str(where))
    except CtrlError as e:
        raise CtrlError(f"{e}; or pass the device file it was compiled for with --device") from None
    return device


def load_compiled(folder: Path, device_file: Path | None = None) -> CompiledRun:
    """The compile folder (program.json, qick_<board>.json, firmware_<board>.json) and the device it was
    compiled for: `device_file`, or the shipped device of the program's name; its calibration and wiring
    must be the ones the program was compiled with. The device gives each readout window's label and
    threshold (the emitter's own plan), which the rule cross-check needs."""
    from ctrl.backends.qick.boardplan import Capture, Decision, Flip
    from ctrl.backends.qick.plan import plan_program

    folder = Path(folder)
    program = read_program(folder / "program.json")
    dumps = sorted(folder.glob("qick_*.json"))
    if not dumps:
        raise CtrlError(f"{folder}: no qick_<board>.json: compile with the QICK emitter (ctrl compile) first")
    if len(dumps) > 1:
        raise CtrlError(
            f"{folder}: the program spans {len(dumps)} boards ({', '.join(d.stem[5:] for d in dumps)}); "
            f"ctrl run drives "
            f"one board (several need a shared start trigger and per-board result merging, not supported)"
        )
    board = dumps[0].stem[len("qick_"):]
    fw_path = folder / f"firmware_{board}.json"
    dump_bytes = read_limited(dumps[0], MAX_PROGRAM_BYTES, "QICK program")
    fw_bytes = read_limited(fw_path, MAX_FIRMWARE_BYTES, "firmware description")
    try:
        dump = json.loads(dump_bytes)
        firmware = json.loads(fw_bytes)
    except (ValueError, RecursionError) as e:
        raise CtrlError(f"{folder}: {dumps[0].name} or {fw_path.name} is not JSON ({e})") from None
    if not isinstance(dump, dict) or not isinstance(firmware, dict):
        raise CtrlError(f"{folder}: {dumps[0].name} and {fw_path.name} must each hold a JSON object")
    # the device gives the windows' labels and the rule: it must be the one the program was compiled for
    device = program_device(program, folder / "program.json", device_file)
    try:
        attempts = int(dump["loop_dims"][0])
    except (KeyError, IndexError, TypeError, ValueError):
        raise CtrlError(f"{dumps[0]}: no loop_dims: not a qick program dump written by ctrl compile") from None
    if not 0 < attempts <= 10**6:
        raise CtrlError(f"{dumps[0]}: {attempts} attempt slots per round; expected 1 to 1000000")
    plan = plan_program(device, program, attempts)[board]
    thresholds = {}
    for blk in (plan.reset, plan.attempt):
        for it in blk.items:
            reads = (it.read,) if isinstance(it, (Flip, Capture)) else it.direct if isinstance(it, Decision) else ()
            for r in reads:
                thresholds[r.label] = r.threshold
    h = hashlib.sha256(read_limited(folder / "program.json", MAX_PROGRAM_BYTES, "timed program") + b"\0"
                       + dump_bytes).hexdigest()  # fmt: skip
    return CompiledRun(
        folder, board, program, dump, firmware, "sha256:" + h, firmware_hash(firmware), attempts,
        {int(k): tuple(v) for k, v in plan.readout_labels.items()}, thresholds,
    )


@dataclass(frozen=True)
class Progress:
    shots_done: int
    shots_total: int
    attempts: int
    accepted: int
    elapsed_s: float
    eta_s: float  # nan until a batch of this session has completed

    @property
    def acceptance(self) -> float:
        return self.accepted / self.attempts if self.attempts else math.nan


def readout_windows(compiled: CompiledRun) -> tuple[list[int], list[int], list[str], list[float]]:
    """Channel, window, label and threshold (NaN: none) of every readout window of a slot, in the order
    of the results file's readout axis: channels in numeric order, windows in firing order."""
    chans, wins, labels, thresholds = [], [], [], []
    for ch in sorted(compiled.labels):
        for j, label in enumerate(compiled.labels[ch]):
            chans.append(int(ch))
            wins.append(j)
            labels.append(label)
            thresholds.append(float(compiled.thresholds.get(label, math.nan)))
    return chans, wins, labels, thresholds


def summarize(batches) -> dict:
    """Acceptance and logical error per accepted state (>= 95% exact intervals), as `ctrl emulate` reports."""
    attempts = sum(b["attempts"] for b in batches)
    accepted = sum(b["accepted"] for b in batches)
    out = {
        "shots": sum(b["shots"] for b in batches),
        "attempts": attempts,
        "accepted": accepted,
        "acceptance": accepted / attempts if attempts else 0.0,
        "acceptance_ci95": list(binomial_ci(accepted, attempts)),
        "decision_mismatches": sum(b["decision_mismatches"] for b in batches),
    }
    comps: dict[str, list[int]] = {}  # component -> [attempts, accepted, logical errors]
    for b in batches:
        for name, counts in b.get("logical", {}).items():
            c = comps.setdefault(name, [0, 0, 0])
            for i, v in enumerate(counts):
                c[i] += v
    if comps:
        out["components"] = {
            k: {"attempts": n, "accepted": a, "acceptance": a / n if n else 0.0, "logical_errors": e}
            for k, (n, a, e) in sorted(comps.items())
        }
        out["logical_errors"] = sum(e for _, _, e in comps.values())
        out["logical_error_rate"], out["logical_error_rate_ci95"] = either_fails((e, a) for _, a, e in comps.values())
    return out


def _strip(cfg: dict) -> dict:
    cfg = json.loads(json.dumps(cfg))
    for field in IGNORED_FIRMWARE_FIELDS:
        *parents, last = field.split(".")
        d = cfg
        for p in parents:
            d = d.get(p, {}) if isinstance(d, dict) else {}
        if isinstance(d, dict):
            d.pop(last, None)
    return cfg


def _canonical(x) -> str:
    return json.dumps(x, sort_keys=True, separators=(",", ":"))


def _first_difference(a, b, path: str) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            here = f"{path}.{k}" if path else str(k)
            if k not in a:
                return f"{here} only in the compiled description"
            if k not in b:
                return f"{here} only on the board"
            if _canonical(a[k]) != _canonical(b[k]):
                return _first_difference(a[k], b[k], here)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} entries on the board, {len(b)} compiled"
        for i, (x, y) in enumerate(zip(a, b)):
            if _canonical(x) != _canonical(y):
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: {_short(a)} on the board, {_short(b)} compiled"


def _short(x) -> str:
    s = json.dumps(x, sort_keys=True)
    return s if len(s) <= 40 else s[:37] + "..."


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


ProgressFn = Callable[[Progress], None]


def run(board: str, folder: Path, shots: int, out: Path, device_file: Path | None = None,
        progress: ProgressFn | None = None, proxy_name: str = PROXY_NAME, key: bytes | None = None,
        timeout_s: float = TIMEOUT_S, note: Callable[[str], None] | None = None) -> dict:
    """Run `shots` attempt slots (rounded up to whole batches) of the compiled program on the board and
    return the summary; a results file that already holds batches of the same run is resumed. `key`
    authenticates the board (`connect`); None only for an unauthenticated qick server. `note` hears what
    the run repaired on the way (a torn last line dropped, the board's stream moved on)."""
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise CtrlError(f"--shots must be a positive integer, got {shots!r}")
    host, port = parse_board(board)
    out = res_file.check_out(out)
    # the lock comes first: a second run on the same --out must not touch the board, nor the file
    with res_file.locked(out):
        compiled = load_compiled(folder, device_file)
        soc, soccfg = connect(host, port, proxy_name, key, timeout_s)
        try:
            return _run(soc, soccfg, host, port, proxy_name, compiled, shots, out, progress, note or (lambda _: None))
        except CtrlError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever the board or the connection raised, as one line
            import Pyro4.errors

            if isinstance(e, Pyro4.errors.TimeoutError):
                raise CtrlError(
                    f"board {host}:{port}: no answer within {timeout_s:g} s; every completed batch is in {out}, "
                    f"rerun to resume"
                ) from None
            if isinstance(e, Pyro4.errors.CommunicationError):
                raise CtrlError(
                    f"board {host}:{port}: connection lost ({e}); every completed batch is in {out}, rerun to resume"
                ) from None
            raise CtrlError(f"board {host}:{port}: {e}") from None
        finally:
            soc._pyroRelease()


def _run(soc, soccfg, host, port, proxy_name, compiled: CompiledRun, shots, out, progress, note) -> dict:
    from ctrl.versions import versions

    board_cfg = soc.get_cfg()
    diff = firmware_mismatch(board_cfg, compiled.firmware)
    if diff:
        raise CtrlError(
            f"board {host}:{port} runs other firmware than {compiled.folder.name} was compiled for "
            f"(firmware_{compiled.board}.json): {diff}; nothing was loaded"
        )
    # qick's own first step of loading (config_all); on the emulated board it also claims the board,
    # so a busy board refuses here, before the results file is touched
    soc.start_src("internal")
    identity = {
        "program_hash": compiled.program_hash,
        "calibration_hash": compiled.program.calibration_hash,
        "firmware_hash": compiled.firmware_hash,
        "board": compiled.board,
        "batch_shots": compiled.attempts,
    }
    header = {
        "shots_requested": shots,
        "program": str(compiled.folder),
        "device": compiled.program.device,
        "distance": compiled.program.distance,
        "board_address": f"{host}:{port}/{proxy_name}",
        "versions": versions("qick", "Pyro4") | {"qick on the board": str(board_cfg.get("sw_version"))},
    }
    with res_file.open_run(out, identity, header, readout_windows(compiled), utc_now()) as run_file:
        results = run_file.results
        if results.note:
            note(results.note)
        ends = _stream_ends(results.batches)
        _skip_recorded(soc, ends, out, note)
        prog = _program(compiled, soccfg)
        batch_shots = compiled.attempts
        left = -(-(shots - results.shots) // batch_shots) if results.shots < shots else 0
        t0 = time.monotonic()
        done_here = 0
        if left:
            prog.acquire(soc, rounds=left, progress=False, step_rounds=True)
            while True:
                more = prog.finish_round()
                raw = [np.asarray(a) for a in prog.get_raw()]
                outcomes = np.asarray(soc.read_mem(batch_shots, "dmem", 0), dtype=np.int64)
                truth = _emulator_only(soc, "ctrl_truth")
                batch = _batch(len(results.batches), results.shots, compiled, prog, raw, outcomes, truth)
                stream = _emulator_only(soc, "ctrl_stream")
                if stream is not None:
                    batch["stream"] = _batch_stream(stream, batch, ends, out)
                results = run_file.append(batch)
                done_here += batch_shots
                if progress is not None:
                    elapsed = time.monotonic() - t0
                    rest = max(0, shots - results.shots)
                    progress(Progress(results.shots, max(shots, results.shots), results.total("attempts"),
                                      results.total("accepted"), elapsed, elapsed / done_here * rest))  # fmt: skip
                if not more:
                    break
                prog.prepare_round()
        summary = summarize(results.batches)
        summary["provenance"] = identity | {"versions": header["versions"]}
        run_file.finish(utc_now(), summary)
    return summary


def _program(compiled: CompiledRun, soccfg):
    from qick.asm_v2 import AcquireProgramV2

    with quiet_qick():
        prog = AcquireProgramV2(soccfg)
        prog.load_prog(compiled.dump)
    return prog


def _stream_ends(batches) -> dict:
    """seed -> the first stream position past every recorded batch drawn from that seed."""
    ends: dict = {}
    for b in batches:
        st = b.get("stream")
        if st is not None:
            ends[st["seed"]] = max(ends.get(st["seed"], 0), st["position"] + b["shots"])
    return ends


def _skip_recorded(soc, ends: dict, out, note) -> None:
    """A board restarted with the seed of recorded batches would draw their samples again: move its
    stream past them (the emulated board can), so a resumed file never holds a batch twice."""
    stream = _emulator_only(soc, "ctrl_stream")
    if stream is None:
        return
    end = ends.get(stream["seed"], 0)
    if stream["next"] < end:
        try:
            soc.ctrl_seek(end)
        except AttributeError:
            raise CtrlError(
                f"{out}: the board's random stream (seed {stream['seed']}) is at position {stream['next']}, which "
                f"recorded batches already hold, and the board cannot seek; restart it with another --seed"
            ) from None
        note(f"{out}: the board's random stream (seed {stream['seed']}) was at position {stream['next']}, "
             f"which recorded batches already hold; moved it to {end}")  # fmt: skip


def _batch_stream(stream: dict, batch: dict, ends: dict, out) -> dict:
    """The batch's place in the board's stream; a replay of recorded samples is refused, not written."""
    last = stream.get("last")
    seed = stream["seed"]
    if not last or last[1] - last[0] != batch["shots"]:
        raise CtrlError(f"the board's stream reports {last} for its last acquisition, of {batch['shots']} slots")
    if last[0] < ends.get(seed, 0):
        raise CtrlError(
            f"{out}: the board drew stream positions {last[0]}.. of seed {seed} again, which the file already "
            f"holds (a replay); restart the board with another --seed, or rerun to resume past them"
        )
    ends[seed] = last[1]
    return {"seed": seed, "position": last[0]}


def _emulator_only(soc, method: str):
    """What the emulated board's `method` returns (`ctrl_truth`: the ground truth; `ctrl_stream`: where its
    random stream stands), or None on a real board, which has no such method."""
    try:
        return getattr(soc, method)()
    except AttributeError:
        return None


def _batch(index, first, compiled: CompiledRun, prog, raw, outcomes, truth) -> dict:
    """One batch: raw readouts, the board's verdicts, the rule's verdicts on the same readouts (the
    compiled program's own decision program, which the board's machine code was emitted from), as
    arrays; its counts are the batch record the results file keeps beside them."""
    from ctrl.realtime.decision import check_bits, evaluate_batch

    n = len(outcomes)
    bits: dict[str, np.ndarray] = {}
    raw_doc = {}
    for ro, data in zip(prog.ro_chs, raw):
        data = data.reshape(n, -1, 2)
        labels = compiled.labels.get(int(ro), ())
        if data.shape[1] != len(labels):
            raise CtrlError(
                f"readout {ro}: the board returned {data.shape[1]} windows per shot, the program has {len(labels)}"
            )
        for j, label in enumerate(labels):
            if label in compiled.thresholds and not label.startswith("reset:"):
                bits[label] = (data[:, j, 0] >= compiled.thresholds[label]).astype(np.uint8)
        raw_doc[str(ro)] = {"shape": list(data.shape), "iq": data}
    decisions = compiled.program.decisions
    checks = check_bits(decisions, bits, "the board's readout windows")
    rule = evaluate_batch(decisions, np.packbits(checks, axis=1, bitorder="little")) + 1
    accepted = (outcomes == 0) & (rule == 0)
    doc = {
        "batch": index,
        "first_shot": first,
        "shots": n,
        "attempts": n,
        "accepted": int(accepted.sum()),
        "board_outcomes": outcomes,
        "rule_outcomes": rule.astype(np.int64),
        "decision_mismatches": int((outcomes != rule).sum()),
        "raw": raw_doc,
    }
    if truth is not None:
        err = np.asarray(truth["logical_error"], dtype=bool)[:n]
        proxy = np.frombuffer(truth["proxy"][:n].encode(), dtype=np.uint8)
        doc["logical"] = {}  # component -> [attempts, accepted, logical errors]
        for p in "XZ":
            mine = proxy == ord(p)
            ok = accepted & mine
            doc["logical"][COMPONENTS[p]] = [int(mine.sum()), int(ok.sum()), int((ok & err).sum())]
        doc["truth"] = {"proxy": truth["proxy"][:n], "logical_error": err.astype(np.int8), "note": truth["note"]}
    return doc

