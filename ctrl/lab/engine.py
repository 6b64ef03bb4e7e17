"""What the emulated board does with the program a client loads.

1. Identify it. The board holds only what a QickSoc is given: machine code (pmem), waveform memory,
   envelopes and channel settings. It compiles its own device (every distance that fits, both schedule
   policies) and emits the QICK program for its board (`ctrl.backends.qick.emit_qick`); the loaded pmem
   and wmem must equal one of these word for word, with the attempt-slot count read off the one word
   that depends on it. Anything else is refused: the emulated board runs only programs ctrl compiles for
   its device. The match gives the board the program's dump (assembly list, labels, waveforms) for the
   interpreter, and the timed program behind it for the noise model.
2. Map readouts to measurements from the program itself: the interpreter's all-pass timeline of one
   attempt slot gives every readout trigger (channel, time) and the frequency each dynamic readout was
   configured to; the device's wiring and calibration name the qubit behind each trigger, which must be
   the qubit of the emitter's label for that trigger.
3. Run it. Each attempt slot takes one attempt's measurement bits from the noisy Stim proxies
   (`AttemptSource`) and lets the interpreter run the slot with those bits as accumulated I values on
   either side of each qubit's threshold, so aborts and resets are the program's own branches. A slot's
   path depends only on the values it reads, so paths are memoised in a trie keyed by the values read:
   the interpreter runs once per distinct path, and every slot still follows the program's branching.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import numpy as np

from ctrl.errors import CtrlError

# Accumulated I of a readout, relative to the program's threshold test (bit 1 iff I >= threshold):
# the emulated resonator responses sit this far from it, so no rounding ever moves a result across.
MARGIN = 64


@dataclass(frozen=True)
class Identified:
    distance: int
    policy: str
    attempts: int
    program: object  # TimedProgram
    plan: object  # BoardPlan of this board
    slot_dump: dict  # the same program with one attempt slot (for the interpreter)
    firmware: dict
    labels: dict  # (ro, trigger cycle in a one-slot run) -> label ("key", "reset:Q")
    thresholds: dict  # label -> threshold of its test

    def __repr__(self) -> str:
        return f"Identified(d={self.distance} {self.policy}, {self.attempts} attempt slots, {len(self.labels)} windows)"


@dataclass(frozen=True)
class Leaf:
    outcome: int  # dmem word of the slot: 0 completed, k + 1 aborted at decision k
    labels: dict  # ro -> label of each trigger of the slot, "dummy" for the abort block's windows


class StimEngine:
    """Executes loaded programs for one board of `device` with `noise` (a noise spec as `ctrl emulate`)."""

    def __init__(self, device, board: str, noise: str = "calibration", seed: int = 0) -> None:
        self.device = device
        self.board = board
        self.noise = noise
        self.seed = seed
        self._known: dict[str, Identified] = {}
        self._current: Identified | None = None
        self._sources: dict[str, object] = {}
        self._paths: dict[str, dict] = {}
        self._truth: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self.interpreted = 0  # slots the interpreter actually ran (distinct paths)

    def __repr__(self) -> str:
        return f"StimEngine({self.device.name}/{self.board}, noise {self.noise}, seed {self.seed})"

    # ---- loading ------------------------------------------------------------------------------

    def load(self, prog: dict, cfg: dict) -> None:
        digest = _digest(prog)
        with self._lock:
            if digest not in self._known:
                self._known[digest] = self._identify(prog)
            self._current = self._known[digest]

    def _identify(self, prog: dict) -> Identified:
        from ctrl.backends.qick import emit_qick
        from ctrl.compile.pipeline import compile_program

        loaded = prog["pmem"]
        tried = []
        for d in (3, 5, 7):
            for policy in ("asap", "alap"):
                try:
                    program = compile_program(self.device, d, policy=policy).program
                    one = _board_prog(emit_qick(self.device, program, attempts=1), self.board)
                except CtrlError:
                    continue
                tried.append(f"d={d} {policy}")
                p1 = _pmem(one)
                if p1.shape != loaded.shape:
                    continue
                rows = np.flatnonzero((p1 != loaded).any(axis=1))
                if len(rows) == 0:
                    attempts = 1
                elif len(rows) == 1:
                    p2 = _pmem(_board_prog(emit_qick(self.device, program, attempts=2), self.board))
                    step = p2[rows[0]].astype(np.int64) - p1[rows[0]]
                    delta = loaded[rows[0]].astype(np.int64) - p1[rows[0]]
                    nz = np.flatnonzero(step)
                    if len(nz) != 1 or delta[nz[0]] % step[nz[0]] or (delta != step * (delta[nz[0]] // step[nz[0]])).any():
                        continue
                    attempts = 1 + int(delta[nz[0]] // step[nz[0]])
                else:
                    continue
                full = _board_prog(emit_qick(self.device, program, attempts=attempts), self.board)
                prog_full = _program(full)
                if not np.array_equal(_as_words(prog_full.binprog["pmem"]), loaded):
                    continue
                if not _same_wmem(prog_full.binprog["wmem"], prog.get("wmem")):
                    raise RuntimeError(
                        f"load_bin_program: the program matches ctrl's d={d} {policy} program for {self.device.name}/"
                        f"{self.board} but its waveform memory differs (other calibration?)"
                    )
                return self._identified(d, policy, attempts, program, full, one)
        raise RuntimeError(
            f"load_bin_program: the emulated board {self.board} ({self.device.name}) runs only programs ctrl compiles "
            f"for its device; this one ({len(loaded)} words) matches none of {', '.join(tried) or 'its compiles'}"
        )

    def _identified(self, d, policy, attempts, program, full, one) -> Identified:
        from ctrl.backends.qick import interpret
        from ctrl.backends.qick.plan import Capture, Decision, Flip

        plan = full.plan
        thresholds = {}
        for blk in (plan.reset, plan.attempt):
            for it in blk.items:
                reads = (it.read,) if isinstance(it, (Flip, Capture)) else it.direct if isinstance(it, Decision) else ()
                for r in reads:
                    thresholds[r.label] = r.threshold
        slot_dump = one.dump_dict()
        fw = one.firmware_dict()
        # all pass: every read well below its threshold (reset reads 0, every check passes)
        trace = interpret(slot_dump, fw, lambda ro, t: -(10**6))
        labels = {}
        for ro, names in plan.readout_labels.items():
            trig = trace.of("trigger", ro)
            if len(trig) != len(names):
                raise RuntimeError(
                    f"board {self.board}: readout {ro} fires {len(trig)} windows per slot, the emitter labels {len(names)}"
                )
            for ev, name in zip(trig, names):
                labels[(ro, ev.t)] = name
        self._check_qubits(program, trace, labels, fw)
        return Identified(d, policy, attempts, program, plan, slot_dump, fw, labels, thresholds)

    def _check_qubits(self, program, trace, labels: dict, fw: dict) -> None:
        """Every window's qubit, from the program's own readout settings through the wiring and calibration,
        must be the qubit of its label: the board reads the program, not the emitter's word for it."""
        by_static = {}
        by_freq = []
        for q in self.device.qubits:
            w = self.device.qubit_wiring(q.name).readout
            if w.board != self.board:
                continue
            if "tproc_ctrl" in fw["readouts"][w.ro]:
                cal = q.readout
                f = abs(cal.frequency_hz - w.lo_frequency_hz) if w.lo_frequency_hz else cal.frequency_hz
                by_freq.append((w.ro, f, q.name))
            else:
                by_static.setdefault(w.ro, set()).add(q.name)
        configs = {}
        for ev in trace.events:
            if ev.kind == "config":
                configs.setdefault(ev.channel, []).append(ev)
        keys = {t.op.key: t.op.qubits[0] for t in program.ops if t.op.name == "MEASURE"}
        for (ro, t), label in labels.items():
            want = label.split(":", 1)[1] if label.startswith("reset:") else keys.get(label)
            if ro in by_static:
                found = by_static[ro]
            else:
                cfgs = [c for c in configs.get(ro, []) if c.t <= t]
                if not cfgs:
                    raise RuntimeError(f"board {self.board}: readout {ro} triggered at cycle {t} before any configuration")
                f = cfgs[-1].freq_hz
                step = fw["readouts"][ro]["f_dds"] * 1e6 / 2 ** fw["readouts"][ro]["b_dds"]
                found = {n for r, fq, n in by_freq if r == ro and _folds_to(fq, f, step)}
            if want not in found:
                raise RuntimeError(
                    f"board {self.board}: the window on readout {ro} at cycle {t} reads {sorted(found)} by the wiring "
                    f"and calibration, but is labelled {label!r} ({want})"
                )

    # ---- running --------------------------------------------------------------------------------

    def execute(self, state, total: int, shot, stop: threading.Event) -> None:
        ident = self._current
        if ident is None:
            raise RuntimeError("no identified program loaded")
        if total > ident.attempts:
            raise RuntimeError(f"the program has {ident.attempts} attempt slots, the acquisition asks for {total}")
        key = _ident_key(ident)
        source = self._sources.get(key)
        if source is None:
            from ctrl.emulate.run import noise_for
            from ctrl.lab.source import AttemptSource

            model = noise_for(self.noise, self.device, ident.program)
            source = self._sources[key] = AttemptSource(ident.program, model, self.seed)
        paths = self._paths.setdefault(key, {})
        # published before the first slot and filled before each slot's data leaves, so a client that
        # has all the data also finds all of the truth
        truth = self._truth = []
        dmem = state.dmem
        for slot in range(total):
            if stop.is_set():
                return
            att = source.next()
            leaf = self._walk(ident, paths, att)
            values = {ro: [(self._value(ident, lab, att), 0) for lab in labs] for ro, labs in leaf.labels.items()}
            if dmem is not None and slot < len(dmem):
                dmem[slot] = leaf.outcome
            truth.append((att.proxy, int(att.logical_error)))
            shot(values)

    def truth(self) -> dict:
        """Per slot of the last acquisition: the proxy it was sampled from and the ideal round's verdict."""
        return {
            "proxy": "".join(p for p, _ in self._truth),
            "logical_error": [e for _, e in self._truth],
            "note": "emulator ground truth (ideal round of the Stim proxy); no real board reports this",
        }

    def _bit(self, label: str, att) -> int:
        if label.startswith("reset:") or label == "dummy":
            return 0
        return att.bits[label]

    def _value(self, ident: Identified, label: str, att) -> int:
        thr = ident.thresholds.get(label, 0)
        return thr + MARGIN if self._bit(label, att) else thr - 1 - MARGIN

    def _walk(self, ident: Identified, paths: dict, att) -> Leaf:
        node = paths
        while True:
            if "leaf" in node:
                return node["leaf"]
            label = node.get("label")
            if label is None:
                break
            child = node["next"].get(self._bit(label, att))
            if child is None:
                break
            node = child
        return self._explore(ident, paths, att)

    def _explore(self, ident: Identified, paths: dict, att) -> Leaf:
        from ctrl.backends.qick import interpret

        seq = []

        def read(ro: int, t: int) -> int:
            label = ident.labels.get((ro, t))
            if label is None:
                raise CtrlError(f"the program read readout {ro}'s window at cycle {t}, which no all-pass window matches")
            seq.append(label)
            return self._value(ident, label, att)

        trace = interpret(ident.slot_dump, ident.firmware, read)
        self.interpreted += 1
        outcome = dict(trace.dmem).get(0, 0)
        labels = {}
        for ro in ident.plan.readout_labels:
            labels[ro] = [ident.labels.get((ro, ev.t), "dummy") for ev in trace.of("trigger", ro)]
        leaf = Leaf(int(outcome), labels)
        node = paths
        for label in seq:
            if node.setdefault("label", label) != label:
                raise RuntimeError(f"the program's reads diverged on identical values ({node['label']} vs {label})")
            node = node.setdefault("next", {}).setdefault(self._bit(label, att), {})
        node["leaf"] = leaf
        return leaf


def _folds_to(f_hz: float, configured_hz: float, step_hz: float) -> bool:
    """A dynamic readout's configured frequency is the resonator's below the LO, to the DDS step."""
    return abs(f_hz - configured_hz) <= max(2 * step_hz, 1e3)


def _digest(prog: dict) -> str:
    h = hashlib.sha256()
    for mem in ("pmem", "wmem"):
        v = prog.get(mem)
        h.update(b"-" if v is None else np.ascontiguousarray(v).tobytes())
    return h.hexdigest()


def _ident_key(ident: Identified) -> str:
    return f"{ident.distance}/{ident.policy}/{ident.attempts}"


def _board_prog(programs, board: str):
    return programs.board(board)


def _program(bp):
    from ctrl.backends.qick import load_program

    return load_program(bp.dump, bp.firmware)


def _as_words(v) -> np.ndarray:
    return np.array(v, dtype=np.int64).astype(np.uint32).view(np.int32)


def _pmem(bp) -> np.ndarray:
    return _as_words(_program(bp).binprog["pmem"])


def _same_wmem(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(_as_words(a), np.asarray(b))


