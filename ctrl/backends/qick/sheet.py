"""Where the calibration's pulse parameters sit in an emitted QICK program: what a pulse-only patch
(`ctrl.backends.qick.patch`) needs besides the program's own text.

Every pulse of a plan carries its role (`Play.role`: the key of `Units.pulse` and how many increments of
its frame precede it). The emitter records, per board, which waveform-memory word each pulse plays, the
waveform words and where they are in the dump, the envelopes, the threshold tests, the generator and
readout declarations; and, for the whole program, every pulse role's calibrated values and the frame
increments per qubit (VZ angles and the gates' calibrated corrections). Columns are numpy arrays so that
a sheet pickles and loads quickly (the recompile cache keeps one per compile). Nothing here depends on
wall-clock time or object identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ctrl.backends.qick.boardplan import Envelope
from ctrl.backends.qick.units import Pulse

REGS = ("freq", "phase", "env", "gain", "length", "conf")  # qick's Waveform fields, in wave-memory order


class NotPatchable(Exception):
    """The new calibration cannot be patched into the previous programs (the reason); emit them anew."""


def role_name(key: tuple) -> str:
    """A pulse role (the key of `Units.pulse`) as a reason names it."""
    names = {"rot": "rotation", "cz": "CZ flux pulse", "cr": "CR segment", "echo": "ECR echo",
             "canc": "cancellation tone", "ro": "readout pulse", "flip": "reset flip"}  # fmt: skip
    return f"{names.get(key[0], key[0])} of {'-'.join(str(k) for k in key[1:3] if isinstance(k, str))}"


@dataclass(frozen=True)
class EnvSlot:
    gen: int
    name: str  # e<k>_<shape>, k counting every envelope of the board in order of first use
    envelope: Envelope
    addr: int  # samples from the start of the generator's envelope memory

    def __reduce__(self):
        return (EnvSlot, (self.gen, self.name, self.envelope, self.addr))


@dataclass(frozen=True)
class Test:
    """A `TEST s8 - #threshold` of a read."""

    inst: int  # index in prog_list (0 is qick's NOP)
    addr: int  # program-memory word
    qubit: str
    threshold: int

    def __reduce__(self):
        return (Test, (self.inst, self.addr, self.qubit, self.threshold))


@dataclass(frozen=True)
class BoardSheet:
    board: str
    # pulses in text order (resources.plays): role (index into `roles`, -1: a mux pulse), frame index, waveform
    roles: tuple[tuple, ...]
    play_role: np.ndarray = field(repr=False)
    play_frame: np.ndarray = field(repr=False)
    play_wave: np.ndarray = field(repr=False)
    # waveform-memory words by address: name, dedup key (resources.wave_key; None: a readout configuration,
    # `configs` names it), registers (REGS), the pulse whose values qick converted, its span in the dump
    wave_names: tuple[str, ...] = field(repr=False)
    wave_keys: tuple = field(repr=False)
    wave_regs: np.ndarray = field(repr=False)
    wave_first: np.ndarray = field(repr=False)
    wave_spans: np.ndarray = field(repr=False)
    configs: dict = field(repr=False)  # waveform address -> readout configuration name
    envelopes: tuple[EnvSlot, ...] = field(repr=False)  # in order of first use
    env_spans: dict = field(repr=False)  # (gen, name) -> span of its base64 data in the dump
    tests: tuple[Test, ...] = field(repr=False)
    test_spans: tuple[tuple[int, int], ...] = field(repr=False)  # each test's instruction in the dump
    asm_tests: tuple[tuple[int, int], ...] = field(repr=False)  # each test's threshold digits in the asm text
    spans: dict = field(repr=False)  # "envelopes", "gen_chs", "ro_chs" -> span of that value in the dump
    decls: tuple = field(repr=False)  # (plan.gens, plan.readouts, plan.configs, mux tones by generator)
    mixers: dict = field(repr=False)  # generator -> qick's rounded mixer frequency (MHz) or None
    trigs: dict = field(repr=False)  # readout -> triggers per shot
    usage: dict = field(repr=False)
    pmem: np.ndarray = field(repr=False)  # machine code, one row of 8 words per instruction word
    wmem: np.ndarray = field(repr=False)

    def __repr__(self) -> str:
        return (f"BoardSheet({self.board}: {len(self.play_role)} pulses, {len(self.wave_names)} waveforms, "
                f"{len(self.envelopes)} envelopes, {len(self.tests)} threshold tests)")  # fmt: skip


@dataclass(frozen=True)
class QickSheet:
    """The sheet of a whole emission."""

    wiring_hash: str
    firmware: dict  # board -> sha256 of the firmware text compiled against
    given_firmware: tuple[str, ...]  # boards whose firmware came from emit_qick's `firmware` argument
    attempts: int
    clock_hz: float
    pulses: dict = field(repr=False)  # role key -> units.Pulse, as the emission computed it
    tape: dict = field(repr=False)  # qubit -> frame increments: float (VZ) or ("cz", a, b) / ("ecr", c, t)
    corrections: dict = field(repr=False)  # (a, b) -> ((qubit, radians), ...) as the emission used them
    frames: dict = field(repr=False)  # qubit -> the frame after each of its increments (0.0 first), radians
    readout_users: tuple[str, ...] = ()
    boards: dict = field(default_factory=dict, repr=False)  # board -> BoardSheet
    report: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"QickSheet({', '.join(self.boards)}; {len(self.pulses)} pulse roles, {self.attempts} attempts)"

    def __reduce__(self):  # pulses as plain tuples: several times faster to pickle and load
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        state["pulses"] = {k: tuple(v) for k, v in self.pulses.items()}
        return (_sheet, (state,))


def _sheet(state: dict) -> QickSheet:
    state["pulses"] = {k: Pulse._make(v) for k, v in state["pulses"].items()}
    return QickSheet(**state)
