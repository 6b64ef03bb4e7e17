"""Timed program -> QICK tProc v2 programs, one per board (`emit_qick`): the programs' forms, their files,
the run report, and a program rebuilt from its files and sheet (what `patch.py` starts from).

Per board: `plan.py` lowers the timed program to a plan, `resources.py` checks it against the firmware,
`stream.py` writes its instructions and `assemble.py` assembles them through qick.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from ctrl.backends.qick.assemble import BoardProgram, board_program, quiet_qick
from ctrl.backends.qick.boardplan import BoardPlan
from ctrl.backends.qick.plan import lower
from ctrl.backends.qick.resources import check_plan
from ctrl.backends.qick.sheet import QickSheet
from ctrl.compile.timed import TimedProgram
from ctrl.errors import CtrlError
from ctrl.files import write_atomic

if TYPE_CHECKING:
    from ctrl.device import Device

DEFAULT_ATTEMPTS = 1000

SHOT_ACCOUNTING = (
    "one acquire() shot = one attempt slot (reset, then the attempt until completion or abort); every slot "
    "fires the same readout triggers: an aborted attempt fires its remaining windows as dummy triggers. "
    "dmem[slot] = 0 if the attempt ran to its end, k + 1 if it aborted at decision k; dummy and reset "
    "windows are listed per readout under `readouts`."
)


@dataclass(frozen=True)
class QickPrograms:
    boards: tuple[BoardProgram, ...]
    report: dict
    sheet: QickSheet | None = field(repr=False, compare=False, default=None)

    def __repr__(self) -> str:
        rt = len(self.report["realtime_decisions"])
        return f"QickPrograms({', '.join(repr(b) for b in self.boards)}; {rt} real-time decisions)"

    def board(self, name: str) -> BoardProgram:
        for b in self.boards:
            if b.board == name:
                return b
        raise CtrlError(f"no QICK program for board {name!r} (boards: {', '.join(b.board for b in self.boards)})")

    def texts(self) -> dict[str, str]:
        """The files write_qick writes, by name."""
        out = {}
        for b in self.boards:
            out[f"qick_{b.board}.asm"] = b.asm
            out[f"qick_{b.board}.json"] = b.dump
            out[f"firmware_{b.board}.json"] = b.firmware
        return out


def emit_qick(
    device: Device, program: TimedProgram, attempts: int = DEFAULT_ATTEMPTS, firmware: Mapping[str, dict] | None = None
) -> QickPrograms:
    """tProc v2 programs for every board `program` uses: `attempts` attempt slots each (one acquire() shot
    per slot). `firmware` maps a board to the description to compile against (a board's own
    `soc.dump_cfg()`) instead of the device file's. Raises CtrlError on any resource limit, before qick
    compiles."""
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise CtrlError(f"attempts must be a positive integer, got {attempts!r}")
    device.target.check_program(program)
    firmware = dict(firmware or {})
    plans, units = lower(device, program, attempts, firmware)
    boards = []
    for name, plan in sorted(plans.items()):
        fw = units.fw[name]
        dmem = int(fw["tprocs"][0]["dmem_size"])
        if attempts > dmem:
            raise CtrlError(
                f"board {name}: data memory: {attempts} attempt slots need one outcome word each; dmem_size is {dmem}"
            )
        usage = check_plan(plan, fw)
        boards.append(board_program(plan, fw, usage, units))
    report = _report(program, plans, boards)
    sheet = QickSheet(
        device.wiring_hash, {b.board: firmware_sha(b.firmware) for b in boards},
        tuple(sorted(b for b in plans if b in firmware)),
        attempts, program.clock_hz, units.pulses(), {q: tuple(v) for q, v in units.tape.items()},
        dict(units.corrections), frame_sums(units.tape, units.corrections), tuple(units.readout_users),
        {b.board: b.sheet for b in boards}, report,
    )  # fmt: skip
    return QickPrograms(tuple(boards), report, sheet)


def programs_from_sheet(sheet: QickSheet, files: Mapping[str, str | bytes]) -> QickPrograms:
    """The QICK programs of an emission from its sheet and the files write_qick wrote (by name, text or
    bytes), as patch_qick needs them (their `plan` is not kept)."""
    def text(name: str) -> str:
        v = files[name]
        return v.decode() if isinstance(v, bytes) else v

    boards = tuple(
        BoardProgram(b, text(f"qick_{b}.asm"), text(f"qick_{b}.json"), text(f"firmware_{b}.json"), bs.usage,
                     _plan_not_kept, bs)
        for b, bs in sorted(sheet.boards.items())
    )  # fmt: skip
    return QickPrograms(boards, sheet.report, sheet)


def _plan_not_kept():
    raise CtrlError("the plan of QICK programs rebuilt from their files is not kept: emit_qick gives it")


def frame_sums(tape: dict, corrections: dict) -> dict[str, tuple[float, ...]]:
    """Each qubit's frame after each of its increments, summed in the lowering's order."""
    values = {gate: dict(pairs) for gate, pairs in corrections.items()}
    out = {}
    for q, entries in tape.items():
        s = 0.0
        sums = [s]
        for e in entries:
            s = s + (values[(e[1], e[2])][q] if isinstance(e, tuple) else e)
            sums.append(s)
        out[q] = tuple(sums)
    return out


def firmware_sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def write_qick(programs: QickPrograms, out: Path) -> list[Path]:
    """qick_<board>.asm, qick_<board>.json (dump_prog) and firmware_<board>.json per board."""
    out = Path(out)
    paths = []
    for b in programs.boards:
        for name, text in ((f"qick_{b.board}.asm", b.asm), (f"qick_{b.board}.json", b.dump),
                           (f"firmware_{b.board}.json", b.firmware)):  # fmt: skip
            write_atomic(out / name, text)
            paths.append(out / name)
    return paths


def load_program(dump: dict | str, firmware: dict | str):
    """A qick program object rebuilt from a dump (as a client would load it)."""
    from qick import QickConfig
    from qick.asm_v2 import AcquireProgramV2

    dump = json.loads(dump) if isinstance(dump, str) else dump
    firmware = json.loads(firmware) if isinstance(firmware, str) else firmware
    with quiet_qick():
        prog = AcquireProgramV2(QickConfig(firmware))
        prog.load_prog(dump)
    return prog


# ------------------------------------------------------------------------------------------ the report


def _report(program: TimedProgram, plans: dict[str, BoardPlan], boards: list[BoardProgram]) -> dict:
    clk = program.clock_hz
    any_plan = next(iter(plans.values()))
    realtime = sorted({k for p in plans.values() for k in p.aborts})
    post = [{"decision": p.decision, "checks": list(p.checks), "reason": p.reason} for p in any_plan.post_selected]
    out = {
        "shot_accounting": SHOT_ACCOUNTING,
        "attempt_slots": any_plan.attempts,
        "reset_cycles": any_plan.reset.length,
        "reset_s": any_plan.reset.length / clk,
        "abort_duration_cycles": program.abort_duration,
        "realtime_decisions": realtime,
        "post_selected": post,
        "checks_post_selected": sorted(c for p in any_plan.post_selected for c in p.checks),
        "boards": {},
    }
    for bp in boards:
        p = bp.plan
        out["boards"][bp.board] = {
            "usage": bp.usage,
            "attempt_cycles": p.attempt.length,
            "abort_cycles": {str(k): blk.length for k, blk in sorted(p.aborts.items())},
            "reads_per_shot": {str(ro): len(v) for ro, v in p.readout_labels.items()},
            "readouts": {str(ro): list(v) for ro, v in p.readout_labels.items()},
            "heralded_reset": list(p.heralded),
        }
    return out
