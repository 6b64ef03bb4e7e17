"""What the emulated board does with the program a client loads.

1. Identify it. The board holds only what a QickSoc is given: machine code (pmem), waveform memory,
   envelopes and channel settings. ctrl's machine code ends with a stamp (`ctrl.backends.qick.stream.
   program_stamp`: the board, the attempt slots and the timed program's schedule, as literals of
   instructions that never run). The board compiles its own device (every distance that fits, both
   schedule policies, each dynamical decoupling) lazily, once each, until one program has the loaded
   stamp; that program emitted for its board must then equal the loaded pmem and wmem word for word.
   Anything else is refused: the emulated board runs only programs ctrl compiles for its device. The
   match names the timed program behind the machine code, which the noise model needs (the Stim circuit
   of an attempt is built from the timed program, not from machine code).
2. Map readouts to measurements from the program itself: the interpreter runs the *loaded* machine code
   (decoded by `ctrl.backends.qick.decode`) for one attempt slot with every result passing; each trigger
   of that timeline is tied to a qubit through the device's wiring (a static readout serves one qubit)
   and calibration (the frequency a dynamic readout was configured to just before), and a qubit's
   windows in time order are its reset readout then its measurements in the timed program's order. The
   emitter's own labels must agree (a cross-check, not the source).
3. Run it. Each attempt slot takes one attempt's measurement bits from the noisy Stim proxies
   (`AttemptSource`); the interpreter runs the loaded machine code for that slot, reading accumulated I
   values on either side of each qubit's calibrated threshold, so aborts and resets are the program's
   own branches. A slot's path depends only on the values it reads, so paths are memoised in a trie keyed
   by the values read: the interpreter runs once per distinct path, and every slot still follows the
   program's branching. One slot is the loaded code with its slot-loop count set to one (as a one-slot
   emission of the identified program has it).
4. Stream. The board's attempts are one random stream per seed, counted over every acquisition since the
   board started (`AttemptSource` samples position i the same whatever came before it): `stream()` says
   where it stands, `seek()` moves it, so a client resuming a results file can skip what is recorded.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass

import numpy as np

from ctrl.compile.dd import SEQUENCES
from ctrl.errors import CtrlError

# Accumulated I of an emulated readout: this far beyond the calibrated threshold on the side of its
# result, so that no rounding in the program's test can move a result across.
MARGIN = 64


@dataclass(frozen=True)
class Identified:
    distance: int
    policy: str
    dd: str | None  # the dynamical decoupling sequence compiled in, if any
    attempts: int
    program: object  # TimedProgram
    plan: object  # the emitter's BoardPlan of this board (for the cross-check of labels only)
    slot_pmem: np.ndarray  # the loaded pmem with the slot-loop count set to one
    wmem: np.ndarray | None  # the loaded wmem

    def __repr__(self) -> str:
        return f"Identified(d={self.distance} {_variant(self.policy, self.dd)}, {self.attempts} attempt slots)"


@dataclass(frozen=True)
class Slot:
    """One attempt slot of the loaded code, as configured: what the interpreter runs, and its windows."""

    dump: dict  # {"prog_list", "waves", "ro_chs", "gen_chs"}: the decoded loaded code and the board settings
    labels: dict  # (ro, trigger cycle) -> "key" or "reset:Q", from the all-pass timeline
    values: dict  # label -> (accumulated I reading 0, reading 1)


@dataclass(frozen=True)
class Leaf:
    outcome: int  # dmem word of the slot: 0 completed, k + 1 aborted at decision k
    labels: dict  # ro -> label of each trigger of the slot, "dummy" for windows of an abort block


class StimEngine:
    """Executes loaded programs for one board of `device` with `noise` (a noise spec as `ctrl emulate`)."""

    def __init__(self, device, board: str, noise: str = "calibration", seed: int = 0) -> None:
        self.device = device
        self.board = board
        self.noise = noise
        self.seed = seed
        self._known: dict[str, Identified] = {}
        self._programs: dict[tuple, object] = {}  # (distance, policy, dd) -> TimedProgram, or None: not compilable
        self._current: Identified | None = None
        self._slots: dict[tuple, Slot] = {}
        self._sources: dict[str, object] = {}
        self._paths: dict[tuple, dict] = {}
        self._truth: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        # one random stream per board, whatever program runs: a position is never drawn twice unless a
        # client seeks back, so (seed, position) names an acquisition's samples
        self.position = 0
        self._last: tuple[int, int] | None = None  # [start, end) of the last acquisition
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
        from ctrl.backends.qick.stream import program_stamp

        loaded = _as_words(prog["pmem"])
        refused = (f"load_bin_program: the emulated board {self.board} ({self.device.name}) runs only programs ctrl "
                   f"compiles for its device; this one ({len(loaded)} words)")  # fmt: skip
        stamp = _stamp(loaded)
        if stamp is None:
            raise RuntimeError(f"{refused} carries no ctrl stamp")
        *name, attempts = stamp
        for (d, policy, dd), program in self._variants():
            if program_stamp(program, self.board, attempts) != tuple(name):
                continue
            full = emit_qick(self.device, program, attempts=attempts).board(self.board)
            if not (np.array_equal(_as_words(full.machine_code["pmem"]), loaded)
                    and _same_words(full.machine_code.get("wmem"), prog.get("wmem"))):  # fmt: skip
                raise RuntimeError(
                    f"{refused} carries the stamp of its d={d} {_variant(policy, dd)} program but its program or "
                    "waveform memory differs (another calibration?)"
                )
            # one slot: the loaded code with the slot-loop count of a one-slot emission (the stamp, past the
            # end, is never run)
            one = _as_words(emit_qick(self.device, program, attempts=1).board(self.board).machine_code["pmem"])
            slot = loaded.copy()
            slot[:-3] = one[:-3]
            wmem = None if prog.get("wmem") is None else _as_words(prog["wmem"])
            return Identified(d, policy, dd, attempts, program, full.plan, slot, wmem)
        tried = ", ".join(f"d={d} {_variant(p, dd)}" for (d, p, dd), program in self._programs.items() if program)
        raise RuntimeError(f"{refused} carries a stamp that matches none of {tried or 'its compiles'}")

    def _variants(self):
        """((distance, policy, dd), timed program) of every program the board's device compiles to, each
        compiled the first time it is asked for and kept: a stamp names one of them."""
        from ctrl.compile.pipeline import compile_program

        for d in (3, 5, 7):
            for policy, dd in ((p, dd) for dd in (None, *SEQUENCES) for p in ("asap", "alap")):
                key = (d, policy, dd)
                if key not in self._programs:
                    try:
                        self._programs[key] = compile_program(self.device, d, policy=policy, dd=dd).program
                    except CtrlError:
                        self._programs[key] = None
                if self._programs[key] is not None:
                    yield key, self._programs[key]

    def _slot(self, ident: Identified, state, fw: dict) -> Slot:
        """The loaded code's slot with the board's readout windows and mixers, and its windows' labels."""
        from ctrl.backends.qick import decode_pmem, decode_wmem, interpret

        key = (_ident_key(ident), tuple(sorted(state.avg_length.items())), tuple(sorted(state.mixer.items())))
        if key in self._slots:
            return self._slots[key]
        dump = {
            "prog_list": decode_pmem(ident.slot_pmem.tolist()),
            "labels": {},
            "waves": decode_wmem(None if ident.wmem is None else ident.wmem.tolist()),
            "ro_chs": {ro: {"length": n} for ro, n in state.avg_length.items()},
            "gen_chs": {g: {"mixer_freq": {"rounded": f}} for g, f in state.mixer.items()},
        }
        values = {}
        for q in self.device.qubits:
            thr = q.readout.threshold
            values[q.name] = (math.floor(thr) - MARGIN, math.ceil(thr) + MARGIN)
        # all pass: every result well below its threshold (resets do nothing, every check passes)
        trace = interpret(dump, fw, lambda ro, t: -(10**6))
        labels = self._labels(ident, trace, fw)
        qubit_of = {t.op.key: t.op.qubits[0] for t in ident.program.ops if t.op.name == "MEASURE"}
        by_label = {lab: values[lab.split(":", 1)[1] if lab.startswith("reset:") else qubit_of[lab]]
                    for lab in labels.values()}  # fmt: skip
        slot = self._slots[key] = Slot(dump, labels, by_label)
        return slot

    def _labels(self, ident: Identified, trace, fw: dict) -> dict:
        """(ro, t) -> label of every window of the all-pass slot, from the wiring, the calibration and the
        timed program; the emitter's labels must agree."""
        static: dict[int, str] = {}
        dynamic: list[tuple[int, float, str]] = []
        for q in self.device.qubits:
            w = self.device.qubit_wiring(q.name).readout
            if w.board != self.board:
                continue
            if "tproc_ctrl" in fw["readouts"][w.ro]:
                f = abs(q.readout.frequency_hz - w.lo_frequency_hz) if w.lo_frequency_hz else q.readout.frequency_hz
                dynamic.append((w.ro, f, q.name))
            else:
                static[w.ro] = q.name
        configured: dict[int, float] = {}
        windows: dict[str, list[tuple[int, int]]] = {}
        for ev in trace.events:
            if ev.kind == "config":
                configured[ev.channel] = ev.freq_hz
            elif ev.kind == "trigger":
                ro = ev.channel
                if ro in static:
                    q = static[ro]
                else:
                    if ro not in configured:
                        raise RuntimeError(
                            f"board {self.board}: readout {ro} triggered at cycle {ev.t} before any configuration"
                        )
                    r = fw["readouts"][ro]
                    tol = max(2 * r["f_dds"] * 1e6 / 2 ** r["b_dds"], 1e3)
                    near = [n for c, f, n in dynamic if c == ro and abs(f - configured[ro]) <= tol]
                    if len(near) != 1:
                        raise RuntimeError(
                            f"board {self.board}: readout {ro} at cycle {ev.t} is configured to "
                            f"{configured[ro] / 1e6:.6f} MHz, which is the resonator of {near or 'no qubit'}"
                        )
                    q = near[0]
                windows.setdefault(q, []).append((ro, ev.t))
        measures: dict[str, list[str]] = {}
        for t in ident.program.ops:
            if t.op.name == "MEASURE":
                measures.setdefault(t.op.qubits[0], []).append(t.op.key)
        labels = {}
        for q, ws in windows.items():
            names = measures.get(q, [])
            if len(ws) == len(names) + 1:  # active reset measures first; a passive one (a wait) does not
                names = [f"reset:{q}"] + names
            if len(ws) != len(names):
                raise RuntimeError(
                    f"board {self.board}: qubit {q} has {len(ws)} readout windows in a slot; its reset and "
                    f"measurements are {len(names)}"
                )
            labels.update(zip(ws, names))
        for ro, names in ident.plan.readout_labels.items():
            mine = [lab for (r, _), lab in sorted(labels.items(), key=lambda kv: kv[0][1]) if r == ro]
            if list(names) != mine:
                raise RuntimeError(
                    f"board {self.board}: readout {ro}: windows {mine} by the wiring, the emitter says {list(names)}"
                )
        return labels

    # ---- running --------------------------------------------------------------------------------

    def execute(self, state, total: int, shot, stop: threading.Event) -> None:
        ident = self._current
        if ident is None:
            raise RuntimeError("no identified program loaded")
        if total > ident.attempts:
            raise RuntimeError(f"the program has {ident.attempts} attempt slots, the acquisition asks for {total}")
        fw = self.device.firmware_config(self.board)
        slot = self._slot(ident, state, fw)
        key = _ident_key(ident)
        source = self._sources.get(key)
        if source is None:
            from ctrl.emulate.run import noise_for
            from ctrl.lab.source import AttemptSource

            model = noise_for(self.noise, self.device, ident.program)
            source = self._sources[key] = AttemptSource(ident.program, model, self.seed)
        source.seek(self.position)
        start = self.position
        paths = self._paths.setdefault(id(slot), {})  # slots are cached: one trie per configured slot
        # published before the first slot and filled before each slot's data leaves, so a client that
        # has all the data also finds all of the truth
        truth = self._truth = []
        self._last = (start, start)
        dmem = state.dmem
        for n in range(total):
            if stop.is_set():
                return
            att = source.next()
            self.position = source.position
            self._last = (start, self.position)
            leaf = self._walk(slot, fw, paths, att)
            values = {ro: [(self._value(slot, lab, att), 0) for lab in labs] for ro, labs in leaf.labels.items()}
            if dmem is not None and n < len(dmem):
                dmem[n] = leaf.outcome
            truth.append((att.proxy, int(att.logical_error)))
            shot(values)

    def stream(self) -> dict:
        """The board's random stream: its seed, the position the next acquisition starts at, and the
        [start, end) positions the last acquisition drew (None before the first)."""
        return {"seed": self.seed, "next": self.position, "last": None if self._last is None else list(self._last)}

    def seek(self, position: int) -> None:
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise RuntimeError(f"ctrl_seek: expected a stream position >= 0, got {position!r}")
        self.position = position

    def truth(self) -> dict:
        """Per slot of the last acquisition: the proxy it was sampled from and the ideal round's verdict."""
        return {
            "proxy": "".join(p for p, _ in self._truth),
            "logical_error": [e for _, e in self._truth],
            "note": "emulator ground truth (ideal round of the Stim proxy); no real board reports this",
        }

    @staticmethod
    def _bit(label: str, att) -> int:
        if label.startswith("reset:") or label == "dummy":
            return 0  # the Stim model's reset is the attempt's first R (with its flip error)
        return att.bits[label]

    def _value(self, slot: Slot, label: str, att) -> int:
        if label == "dummy":
            return -MARGIN
        return slot.values[label][self._bit(label, att)]

    def _walk(self, slot: Slot, fw: dict, paths: dict, att) -> Leaf:
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
        return self._explore(slot, fw, paths, att)

    def _explore(self, slot: Slot, fw: dict, paths: dict, att) -> Leaf:
        from ctrl.backends.qick import interpret

        seq = []

        def read(ro: int, t: int) -> int:
            label = slot.labels.get((ro, t))
            if label is None:
                raise CtrlError(
                    f"the program read readout {ro}'s window at cycle {t}, which no all-pass window matches"
                )
            seq.append(label)
            return self._value(slot, label, att)

        trace = interpret(slot.dump, fw, read)
        self.interpreted += 1
        outcome = dict(trace.dmem).get(0, 0)
        labels = {}
        for ro in sorted({ro for ro, _ in slot.labels}):
            labels[ro] = [slot.labels.get((ro, ev.t), "dummy") for ev in trace.of("trigger", ro)]
        leaf = Leaf(int(outcome), labels)
        node = paths
        for label in seq:
            if node.setdefault("label", label) != label:
                raise RuntimeError(f"the program's reads diverged on identical values ({node['label']} vs {label})")
            node = node.setdefault("next", {}).setdefault(self._bit(label, att), {})
        node["leaf"] = leaf
        return leaf


def _stamp(pmem: np.ndarray) -> tuple[int, int, int] | None:
    """(two stamp numbers, attempt slots) from the last three instructions of ctrl's machine code
    (`ctrl.backends.qick.stream.program_stamp`), or None if they are not a stamp's."""
    from ctrl.backends.qick import decode_pmem

    if len(pmem) < 4:
        return None
    try:
        tail = decode_pmem(pmem[-3:].tolist())
    except CtrlError:
        return None
    if not all(i.get("CMD") == "REG_WR" and i.get("SRC") == "imm" and "LIT" in i for i in tail):
        return None
    return tuple(int(i["LIT"].lstrip("#")) for i in tail)


def _digest(prog: dict) -> str:
    h = hashlib.sha256()
    for mem in ("pmem", "wmem"):
        v = prog.get(mem)
        h.update(b"-" if v is None else _as_words(v).tobytes())
    return h.hexdigest()


def _ident_key(ident: Identified) -> str:
    return f"{ident.distance}/{_variant(ident.policy, ident.dd)}/{ident.attempts}"


def _variant(policy: str, dd: str | None) -> str:
    return policy if dd is None else f"{policy}+{dd}"


def _as_words(v) -> np.ndarray:
    return np.array(v, dtype=np.int64).astype(np.uint32).view(np.int32)


def _same_words(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(_as_words(a), _as_words(b))
