"""Calibration-aware recompilation: diff two calibrations, classify each change by the work it causes,
and redo only that work, with a compile cache keyed by content hashes (docs/recompile.md).

    from ctrl.outputs import CompileCache
    from ctrl.recompile import load_previous, recompile, write, diff_devices
    prev = load_previous("yesterday/", new_device)       # a folder of ctrl compile/recompile, or a device file
    rec = recompile(prev, new_device, margin=0.05, cache=CompileCache())
    paths, report = write(rec, "today/", new_device, cache)
"""

from ctrl.recompile.diff import (CLASSES, CalibrationDiff, Change, calibration_fields, diff_calibrations,
                                 diff_devices, field_class)  # fmt: skip
from ctrl.recompile.output import emit
from ctrl.recompile.previous import Previous, load_previous
from ctrl.recompile.recompile import DEFAULT_MARGIN, PlacementDecision, Recompiled, recompile
from ctrl.recompile.report import emulate_both, report, run, summary, write

__all__ = [
    "CLASSES", "CalibrationDiff", "Change", "calibration_fields", "diff_calibrations", "diff_devices", "field_class",
    "DEFAULT_MARGIN", "PlacementDecision", "Previous", "Recompiled", "emit", "emulate_both", "load_previous",
    "recompile", "report", "run", "summary", "write",
]
