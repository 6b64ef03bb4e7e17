"""The pass declarations are true: a pass that a recalibration does not make stale gives the same results.

For each kind of recalibration of the default device, the whole pipeline runs on the old and on the new
calibration (placement fixed, as a recompile that keeps it); every property provided by a pass that
`PIPELINE.stale` leaves out must come out equal. A pass that reads a facet it does not declare fails here."""

import re

import pytest

from ctrl.compile.passes import FACETS, Pass, PassManager
from ctrl.compile.pipeline import PIPELINE, compile_program, invalid_facets
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.recompile.diff import diff_calibrations

BASE = DEFAULT_DEVICE.read_text()


def _edit(pattern: str, replace) -> str:
    new, n = re.subn(pattern, replace, BASE, count=1, flags=re.M)
    assert n == 1
    return new


EDITS = {
    "metadata": _edit(r'^(  calibrated_at: )"[^"]*"', lambda m: f'{m[1]}"2030-01-01T00:00:00Z"'),
    "pulse": _edit(r"(cr_phase_rad: )(-?[0-9.]+)", lambda m: f"{m[1]}{float(m[2]) + 0.01:.4f}"),
    "quality": _edit(r"(^      t1_s: )([0-9.e+-]+)", lambda m: f"{m[1]}{float(m[2]) * 0.7:.4e}"),
    "timing": _edit(r"(^        duration_s: )([0-9.e+-]+)", lambda m: f"{m[1]}{float(m[2]) * 1.5:.4e}"),
}


def _run(device, placement):
    inputs = {"device": device, "distance": 3, "policy": "asap", "exclude": frozenset(), "placement_given": placement,
              "channels": True, "dd": "xy4", "placement": placement, "layout": (placement.layout, placement.qubits)}
    return PIPELINE.run(inputs)[0]


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_passes_left_out_by_stale_give_equal_results(kind, tmp_path):
    (tmp_path / "firmware").symlink_to(DEFAULT_DEVICE.parent / "firmware")
    path = tmp_path / "new.yaml"
    path.write_text(EDITS[kind])
    old, new = load_device(DEFAULT_DEVICE), load_device(path)
    diff = diff_calibrations(old.calibration, new.calibration)
    assert diff.classes == (kind,)
    invalid = invalid_facets(diff.classes, old, new) | {"placement"}  # the kept placement's cost is new
    stale = PIPELINE.stale(invalid, decided=("placement",))
    placement = compile_program(old, 3).placement
    a, b = _run(old, placement), _run(new, placement)
    fresh = [x for x in PIPELINE.passes if x.name not in stale and x.name != "placement"]
    assert fresh, "every pass stale: nothing tested"
    for x in fresh:
        for prop in x.provides:
            if prop in ("walk",):  # an internal memo of the schedule (equal when its inputs are)
                continue
            assert a[prop] == b[prop], f"{kind}: {x.name} is not stale but its {prop} changed"
    # and the stale ones do see a change somewhere (the declarations are not vacuous)
    assert a["report"] != b["report"]


def test_stale_follows_requires_and_provides():
    def nothing(p):
        return (None,)

    m = PassManager((
        Pass("a", "analysis", ("calibration.quality",), ("x",), nothing),
        Pass("b", "transformation", ("x",), ("y",), nothing),
        Pass("c", "transformation", ("calibration.timing",), ("z",), nothing),
        Pass("d", "analysis", ("y", "z"), ("w",), nothing),
    ))  # fmt: skip
    assert m.stale({"calibration.quality"}) == ("a", "b", "d")
    assert m.stale({"calibration.timing"}) == ("c", "d")
    assert m.stale({"calibration.quality"}, decided=("a",)) == ("a",)
    assert m.reading("d", {"calibration.quality"}) == {"y"}
    with pytest.raises(ValueError, match="requires"):
        PassManager((Pass("late", "analysis", ("y",), ("q",), nothing), Pass("b", "analysis", ("x",), ("y",), nothing)))
    assert set(FACETS) >= {r for x in PIPELINE.passes for r in x.requires if r.startswith("calibration.")}


def test_every_compile_pass_is_declared_and_logged_in_order():
    compiled = compile_program(load_device(DEFAULT_DEVICE), 3, dd="xx")
    assert [r.name for r in compiled.passes] == [x.name for x in PIPELINE.passes]
