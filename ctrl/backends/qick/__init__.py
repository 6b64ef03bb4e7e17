"""QICK tProc v2 programs from the timed program, with the real-time abort compiled in, and their verifier.

    from ctrl.backends.qick import emit_qick, write_qick, interpret
    programs = emit_qick(device, compiled.program)       # one tProc v2 program per board
    write_qick(programs, out)                            # qick_<board>.asm / .json, firmware_<board>.json
    again, why = reemit_qick(programs, recalibrated, program)  # pulse-only change: patched (why None)
    trace = interpret(programs.boards[0].dump_dict(), programs.boards[0].firmware_dict(), read)
    # or from what a board receives: {"pmem": ..., "wmem": ..., "ro_chs": {ro: {"length": n}}, ...}

How the timed program maps to tProc v2 (channels, pulses, frames, triggers, decisions, abort, shot
accounting, resource limits, the verifier): docs/qick.md.
"""

from ctrl.backends.qick.assemble import BoardProgram
from ctrl.backends.qick.emit import (
    DEFAULT_ATTEMPTS,
    SHOT_ACCOUNTING,
    QickPrograms,
    emit_qick,
    load_program,
    programs_from_sheet,
    write_qick,
)
from ctrl.backends.qick.patch import patch_qick, reemit_qick
from ctrl.backends.qick.sheet import NotPatchable
from ctrl.backends.qick.decode import decode_pmem, decode_wmem
from ctrl.backends.qick.trace import Event, Trace
from ctrl.backends.qick.verify import BOARD_INPUT_DELAY_S, interpret

__all__ = [
    "DEFAULT_ATTEMPTS", "SHOT_ACCOUNTING", "BoardProgram", "QickPrograms", "emit_qick", "load_program", "write_qick",
    "patch_qick", "reemit_qick", "NotPatchable", "programs_from_sheet",
    "Event", "Trace", "interpret", "BOARD_INPUT_DELAY_S", "decode_pmem", "decode_wmem",
]
