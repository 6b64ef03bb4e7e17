"""Regenerate the QICK golden files (tests/golden/) after checking them independently.

    python tools/update_golden.py [--check]

The golden files pin the tiny program's assembly and its interpreted trace (tests/test_qick.py). The code
under test writes them, so they are written only here, and only when two checks that do not use the
emitter's plan pass: the trace matches the timed program and the device file pulse by pulse
(`check_attempt`, frames recomputed from virtual Z and calibrated corrections), and every threshold test
in the assembly uses floor(threshold) + 1 of a qubit read on that input port, from the raw device file and
firmware description. With --check nothing is written; the exit code says whether the files are current.
Prints what changed; the last line is JSON.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_qick import (  # noqa: E402 - the test module's independent checks are the point
    GOLDEN,
    base_of,
    bit_reader,
    check_attempt,
    golden_thresholds_problems,
    tiny_golden,
    tiny_program,
)

from ctrl.backends.qick import emit_qick, interpret  # noqa: E402
from ctrl.device import DEFAULT_DEVICE, load_device  # noqa: E402
from ctrl.files import write_atomic  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    args = ap.parse_args()
    device = load_device(DEFAULT_DEVICE)
    program = tiny_program(device)
    programs = emit_qick(device, program, attempts=2)
    files = tiny_golden(device, program, programs)
    (bp,) = programs.boards
    tr = interpret(bp.dump_dict(), bp.firmware_dict(), bit_reader(device, program, programs, bp.board))
    check_attempt(device, program, {bp.board: (tr, bp.firmware_dict())}, base_of(programs, program))
    problems = golden_thresholds_problems(files["qick_tiny.asm"])
    if problems:
        print("threshold tests that are not the device file's:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    changed = {}
    for name, text in files.items():
        path = GOLDEN / name
        old = path.read_text() if path.exists() else ""
        if old != text:
            diff = list(difflib.unified_diff(old.splitlines(), text.splitlines(), name, name, lineterm="", n=1))
            changed[name] = len([x for x in diff if x[:1] in "+-" and x[:3] not in ("+++", "---")])
            print("\n".join(diff[:60]) + ("\n..." if len(diff) > 60 else ""))
            if not args.check:
                write_atomic(path, text)
    print(json.dumps({"tool": "update_golden", "checked": True, "changed_lines": changed, "written": not args.check}))
    return 1 if (changed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
