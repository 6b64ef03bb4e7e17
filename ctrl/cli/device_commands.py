"""`ctrl validate`, `ctrl import`, `ctrl schema` and `ctrl diff-device`: device files, checked, made from a
lab's calibration, described, compared."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ctrl.errors import CtrlError
from ctrl.files import write_atomic


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


def _cmd_diff_device(args: argparse.Namespace) -> int:
    from ctrl.device import load_device
    from ctrl.recompile import diff_devices

    old, new = load_device(args.old), load_device(args.new)
    diff = diff_devices(old, new)
    print(f"{args.old} -> {args.new}: {len(diff.changes)} change(s)" + (f" ({', '.join(diff.classes)})" if diff else ""))
    print(diff.text())
    return 1 if diff.changes else 0  # as diff(1): 0 the same, 1 different, 2 trouble (a bad file)
