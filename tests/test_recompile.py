"""Calibration-aware recompilation: change classes, byte-for-byte equality with a full compile, work done
(counted by wrapping the compiler's passes), the placement decision, the cache, bad inputs, the CLI."""

import importlib
import json
import random
from collections import Counter
from pathlib import Path

import pytest
import yaml

import ctrl.backends.qick as qick_backend
import ctrl.backends.qick.patch as qick_patch
from ctrl.backends.qick.patch_board import BoardPatch
import ctrl.compile.pipeline as pipeline
import ctrl.outputs.folder as folder
from ctrl.cli import main
from ctrl.compile.pipeline import compile_program
from ctrl.device import load_device
from ctrl.device import units as u
from ctrl.device.model import QubitCalibration, Strict
from ctrl.device.units import Q, Quantity
from ctrl.errors import CtrlError
from ctrl.outputs import CompileCache, write_outputs
from ctrl.outputs.cache import compile_key
from ctrl.outputs.folder import seal_inputs
from ctrl.recompile import CLASSES, calibration_fields, diff_calibrations, field_class, load_previous, recompile, run
from ctrl.recompile.diff import METADATA, PULSE, QUALITY, STRUCTURE, TIMING, UNCLASSIFIED

CONFIGS = Path(__file__).resolve().parents[1] / "device_configs"
driver = importlib.import_module("ctrl.recompile.recompile")  # the module; the package exports its function


# ------------------------------------------------------------------------------------ helpers


def variant(tmp_path: Path, name: str, edit=None, base: str = "planar16_d3") -> Path:
    """A copy of a shipped device file in tmp_path, edited as YAML data (firmware reached by a symlink)."""
    fw = tmp_path / "firmware"
    if not fw.exists():
        fw.symlink_to(CONFIGS / "firmware")
    doc = yaml.safe_load((CONFIGS / f"{base}.yaml").read_text())
    if edit is not None:
        edit(doc)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def qubit(doc, name):
    return next(q for q in doc["calibration"]["qubits"] if q["name"] == name)


def coupler(doc, a, b):
    return next(c for c in doc["calibration"]["couplers"] if set(c["qubits"]) == {a, b})


@pytest.fixture
def calls(monkeypatch):
    """How often each compiler pass and the Stim emitter run (wrapping the functions the pipeline calls)."""
    counts = Counter()

    def wrap(module, name, label):
        fn = getattr(module, name)

        def counted(*args, **kwargs):
            counts[label] += 1
            return fn(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)

    wrap(pipeline, "place", "placement")
    wrap(driver, "place", "placement")
    wrap(pipeline, "to_native", "natives")
    wrap(pipeline, "scheduled" if hasattr(pipeline, "scheduled") else "schedule", "schedule")
    wrap(folder, "timed_to_stim", "stim")
    wrap(qick_backend, "emit_qick", "qick")  # looked up there by write_outputs and by the driver at call time
    wrap(qick_patch, "emit_qick", "qick")  # reemit_qick's fallback
    wrap(qick_patch, "patch_qick", "qick_patch")
    return counts


def day0(tmp_path: Path, device_file: Path, cache: Path) -> Path:
    """Yesterday's compile, written by ctrl recompile (so the folder records its calibration)."""
    out = tmp_path / "day0"
    run(device_file, device_file, out, cache_dir=cache)
    return out


def full(device_file: Path, out: Path):
    """What `ctrl compile` writes, QICK programs included."""
    device = load_device(device_file)
    compiled = compile_program(device, 3)
    return compiled, write_outputs(compiled, out, device)


def assert_same_outputs(full_paths, full_dir: Path, re_dir: Path):
    """Every file of the full compile, byte for byte; report.json up to its `passes` (what ran)."""
    for p in full_paths:
        name = p.relative_to(full_dir).as_posix()
        mine = re_dir / name
        assert mine.is_file(), name
        if name == "report.json":
            a, b = json.loads(p.read_text()), json.loads(mine.read_text())
            a.pop("passes"), b.pop("passes")
            assert a == b
        else:
            assert mine.read_bytes() == p.read_bytes(), name


# ------------------------------------------------------------------------------------ change classes


def test_every_calibration_field_has_a_change_class():
    fields = dict(calibration_fields())
    unclassified = sorted(p for p, k in fields.items() if k == UNCLASSIFIED)
    assert not unclassified, f"give these fields a change class in ctrl/recompile/diff.py: {unclassified}"
    expect = {
        "qubits.t1_s": QUALITY, "qubits.t2_echo_s": QUALITY, "qubits.usable": QUALITY, "qubits.position": QUALITY,
        "qubits.x90.error": QUALITY, "qubits.readout.error_0to1": QUALITY, "couplers.CZGate.error": QUALITY,
        "qubits.x90.duration_s": TIMING, "qubits.readout.window_s": TIMING, "qubits.readout.time_of_flight_s": TIMING,
        "qubits.readout.reset.duration_s": TIMING, "couplers.CrossResonanceGate.duration_s": TIMING,
        "couplers.CZGate.gate": TIMING, "couplers.CrossResonanceGate.control": TIMING,
        "couplers.CZGate.flux_pulse.element": TIMING, "crosstalk_exclusions.couplers": TIMING,
        "couplers.CrossResonanceGate.cancellation_pulse": TIMING,
        "qubits.x90.pulse.DragPulse.amplitude": PULSE, "qubits.x90.pulse.DragPulse.sigma_s": PULSE,
        "qubits.x90.pulse.DragPulse.drag_coefficient": PULSE, "qubits.readout.threshold": PULSE,
        "qubits.readout.iq_rotation_rad": PULSE, "qubits.frequency_hz": PULSE, "qubits.readout.frequency_hz": PULSE,
        "couplers.CZGate.phase_corrections_rad": PULSE, "couplers.CrossResonanceGate.cr_phase_rad": PULSE,
        "calibrated_at": METADATA, "qubits.note": METADATA, "qubits.name": STRUCTURE,
    }  # fmt: skip
    for path, kind in expect.items():
        assert fields[path] == kind, path


def test_a_field_no_rule_covers_is_unclassified():
    """A new field with a new kind of quantity, or a new flag, is not silently put in a cheap class."""
    kelvin = Quantity("a temperature", "K", 0.0, 1.0)

    class NewQubit(QubitCalibration):
        fridge_temperature: Q(kelvin, "mixing chamber temperature") = 0.01
        tunable: bool = False

    class NewThing(Strict):
        weights: dict[str, float] = {}

    assert field_class(NewQubit, "fridge_temperature") == UNCLASSIFIED
    assert field_class(NewQubit, "tunable") == UNCLASSIFIED
    assert field_class(NewThing, "weights") == UNCLASSIFIED
    assert field_class(NewQubit, "t1_s") == QUALITY  # the known ones still are
    assert u.COHERENCE.unit == "s"


def test_diff_names_component_field_units_and_class(tmp_path):
    def edit(doc):
        qubit(doc, "Q3")["t1_s"] = 8.0e-05
        qubit(doc, "Q3")["x90"]["pulse"]["amplitude"] = 0.1
        qubit(doc, "Q5")["readout"]["window_s"] = 1.2e-06
        coupler(doc, "Q2", "Q9")["phase_corrections_rad"]["Q2"] = -1.0
        doc["calibration"]["calibrated_at"] = "2025-06-03T08:30:00Z"

    old = load_device(variant(tmp_path, "old"))
    new = load_device(variant(tmp_path, "new", edit))
    diff = diff_calibrations(old.calibration, new.calibration)
    got = {(c.component, c.field): c for c in diff.changes}
    assert set(got) == {("Q3", "t1_s"), ("Q3", "x90.pulse.amplitude"), ("Q5", "readout.window_s"),
                        ("Q2-Q9", "phase_corrections_rad.Q2"), ("calibration", "calibrated_at")}  # fmt: skip
    t1 = got["Q3", "t1_s"]
    assert (t1.kind, t1.old, t1.new, t1.unit) == (QUALITY, 1.59e-04, 8.0e-05, "s")
    assert t1.describe() == "Q3 t1_s: 159 us -> 80 us (-49.7%) [quality]"  # human units, SI in files
    assert got["Q5", "readout.window_s"].kind == TIMING
    assert got["Q2-Q9", "phase_corrections_rad.Q2"].unit == "rad"
    assert diff.classes == (METADATA, PULSE, QUALITY, TIMING)
    assert not diff_calibrations(old.calibration, old.calibration)


@pytest.mark.parametrize("base", ["planar16_d3", "heavyhex65_ecr"])
def test_a_coupler_written_the_other_way_round_is_no_change(tmp_path, base):
    def flipped(doc):
        for c in doc["calibration"]["couplers"][::3]:
            c["qubits"] = c["qubits"][::-1]

    def flipped_and_worse(doc):
        flipped(doc)
        c = doc["calibration"]["couplers"][0]
        c["error"] = c["error"] * 2

    old = load_device(variant(tmp_path, "old", base=base))
    assert not diff_calibrations(old.calibration, load_device(variant(tmp_path, "flip", flipped, base)).calibration)
    worse = load_device(variant(tmp_path, "worse", flipped_and_worse, base)).calibration
    assert [(c.field, c.kind) for c in diff_calibrations(old.calibration, worse).changes] == [("error", QUALITY)]
    assert [(c.field, c.kind) for c in diff_calibrations(worse, old.calibration).changes] == [("error", QUALITY)]


# ------------------------------------------------------------------------------------ equal bytes, less work


def _edit_pulse(doc):
    for name in ("Q0", "Q7"):
        q = qubit(doc, name)
        q["x90"]["pulse"]["amplitude"] = round(q["x90"]["pulse"]["amplitude"] * 1.03, 5)
        q["x180"]["pulse"]["drag_coefficient"] = 0.6
        q["readout"]["threshold"] = q["readout"]["threshold"] + 1.5
        q["readout"]["iq_rotation_rad"] = 0.25
        q["frequency_hz"] = q["frequency_hz"] + 2.0e05
    coupler(doc, "Q2", "Q9")["cr_pulse"]["amplitude"] = 0.35


def _edit_timing(doc):
    qubit(doc, "Q3")["x90"]["duration_s"] = 4.4e-08
    qubit(doc, "Q3")["x180"]["duration_s"] = 4.4e-08
    qubit(doc, "Q9")["readout"]["time_of_flight_s"] = 6.0e-07


def _edit_quality(doc):
    qubit(doc, "Q4")["t1_s"] = 1.0e-04
    qubit(doc, "Q4")["x90"]["error"] = 6.0e-04
    coupler(doc, "Q2", "Q9")["error"] = 0.012


def _edit_metadata(doc):
    doc["calibration"]["calibrated_at"] = "2025-06-03T08:30:00Z"
    qubit(doc, "Q1")["note"] = "retuned"


@pytest.mark.parametrize(
    "edit, kind, expected_calls",
    [
        (_edit_metadata, METADATA, {"qick_patch": 1}),
        (_edit_pulse, PULSE, {"qick_patch": 1}),
        (_edit_quality, QUALITY, {"placement": 1, "qick_patch": 1}),
        (_edit_timing, TIMING, {"natives": 1, "schedule": 1, "stim": 1, "qick": 1}),
    ],
    ids=["metadata", "pulse", "quality", "timing"],
)
def test_recompile_equals_full_compile_with_less_work(tmp_path, calls, edit, kind, expected_calls):
    cache = tmp_path / "cache"
    old = variant(tmp_path, "old")
    new = variant(tmp_path, "new", edit)
    yesterday = day0(tmp_path, old, cache)
    calls.clear()
    rec, doc, _ = run(yesterday, new, tmp_path / "re", cache_dir=cache)
    work = dict(calls)
    assert kind in rec.diff.classes and max(rec.diff.classes, key=CLASSES.index) == kind
    assert work == expected_calls, work
    calls.clear()
    compiled, paths = full(new, tmp_path / "full")
    assert dict(calls) == {"placement": 1, "natives": 1, "schedule": 1, "stim": 1, "qick": 1}  # a full compile
    assert_same_outputs(paths, tmp_path / "full", tmp_path / "re")
    assert doc["equals_full_compile"] is True and not doc["placement"]["moved"]
    assert set(doc["compile_passes_skipped"]) >= {"natives", "schedule"} or kind == TIMING
    assert ("placement" in doc["compile_passes_skipped"]) == (kind != QUALITY)
    assert json.loads((tmp_path / "re" / "report.json").read_text())["passes"] == [
        {"name": p.name, "kind": p.kind} for p in rec.compiled.passes]  # fmt: skip
    patched = "QICK programs patched (pulse parameters only)" in doc["outputs"]["produced_by"]
    assert patched == (kind != TIMING), doc["outputs"]["produced_by"]


@pytest.mark.parametrize("edit, kind, expected_calls", [
    (_edit_pulse, PULSE, {"qick_patch": 1}),
    (_edit_timing, TIMING, {"natives": 1, "schedule": 1, "stim": 1, "qick": 1}),
], ids=["pulse", "timing"])  # fmt: skip
def test_echo_pulses_are_carried_over(tmp_path, calls, edit, kind, expected_calls):
    """A compile with dynamical decoupling recompiles with the same sequence, equal to a full compile with it:
    a pulse change keeps the padded program, a timing change pads the new schedule again."""
    cache = tmp_path / "cache"
    old, new = variant(tmp_path, "old"), variant(tmp_path, "new", edit)
    run(old, old, tmp_path / "day0", cache_dir=cache, dd="xy4")
    calls.clear()
    rec, doc, _ = run(tmp_path / "day0", new, tmp_path / "re", cache_dir=cache)
    assert dict(calls) == expected_calls and rec.diff.classes[-1] == kind
    assert rec.previous.dd == "xy4" and doc["protocol"]["dd"] == "xy4"
    device = load_device(new)
    compiled = compile_program(device, 3, dd="xy4")
    assert compiled.report["dynamical_decoupling"]["pulses"] > 0
    assert_same_outputs(write_outputs(compiled, tmp_path / "full", device), tmp_path / "full", tmp_path / "re")
    assert load_previous(tmp_path / "re").dd == "xy4"  # and the next day's recompile keeps it
    with pytest.raises(CtrlError, match="xy4, not xx"):
        load_previous(tmp_path / "re", dd="xx")


def test_a_pulse_change_the_qick_patch_cannot_take_is_emitted_in_full(tmp_path, calls):
    """A CR pulse turning from flat_top into const changes the QICK waveform table: the timed program
    stands, the QICK programs are emitted again (and recompile.json says why), still equal to a full compile."""
    cache = tmp_path / "cache"
    old = variant(tmp_path, "old")

    def const_cr(doc):
        c = coupler(doc, "Q2", "Q9")
        c["cr_pulse"] = {"shape": "const", "amplitude": c["cr_pulse"]["amplitude"]}

    new = variant(tmp_path, "new", const_cr)
    yesterday = day0(tmp_path, old, cache)
    calls.clear()
    rec, doc, _ = run(yesterday, new, tmp_path / "re", cache_dir=cache)
    assert rec.action == "patch" and dict(calls) == {"qick_patch": 1, "qick": 1}
    how = doc["outputs"]["produced_by"]
    assert "QICK programs emitted from the kept timed program (not patched: CR segment of Q9-Q2: its style" in how
    _, paths = full(new, tmp_path / "full")
    assert_same_outputs(paths, tmp_path / "full", tmp_path / "re")


def _x180_as_x90(doc):  # X180 plays the X90 pulse: plays of both share waveforms where their phases agree
    for q in doc["calibration"]["qubits"]:
        q["x180"]["pulse"] = dict(q["x90"]["pulse"])


def _x90_louder(doc):
    for q in doc["calibration"]["qubits"]:
        q["x90"]["pulse"]["amplitude"] = round(q["x90"]["pulse"]["amplitude"] * 1.01, 6)


@pytest.mark.parametrize("old_edit, new_edit, why", [
    (None, _x180_as_x90, "would merge"),
    (_x180_as_x90, lambda doc: (_x180_as_x90(doc), _x90_louder(doc)), "some of the pulses sharing it changed"),
], ids=["merge", "split"])  # fmt: skip
def test_a_pulse_change_that_changes_the_waveform_table_is_emitted_in_full(tmp_path, old_edit, new_edit, why):
    """Two waveforms that would become one, or plays of one waveform that would no longer agree: the
    QICK programs' waveform table changes, so they are emitted anew (and recompile.json says why)."""
    cache = tmp_path / "cache"
    old = variant(tmp_path, "old", old_edit)
    new = variant(tmp_path, "new", new_edit)
    yesterday = day0(tmp_path, old, cache)
    rec, doc, _ = run(yesterday, new, tmp_path / "re", cache_dir=cache)
    assert rec.action == "patch"
    assert "emitted from the kept timed program (not patched: waveform" in doc["outputs"]["produced_by"]
    assert why in doc["outputs"]["produced_by"], doc["outputs"]["produced_by"]
    _, paths = full(new, tmp_path / "full")
    assert_same_outputs(paths, tmp_path / "full", tmp_path / "re")


def test_cz_virtual_z_corrections_are_patched_into_the_kept_program(tmp_path, calls):
    """On a CZ device the couplers' phase corrections live in the timed program: a pulse-only change of
    them patches the CZ operations (kept beside the cached ones, never unpickled), day after day and back
    again, and each day's result equals a full compile, program and files."""
    cache = tmp_path / "cache"
    old = variant(tmp_path, "old", base="grid55_d5")
    probe = compile_program(load_device(old), 3)
    cz = [t.op.qubits for t in probe.program.ops if t.op.name == "CZ"]

    def shift(by, pairs):
        def edit(doc):
            for pair in pairs:
                c = coupler(doc, *pair)
                c["phase_corrections_rad"] = {k: v + by for k, v in c["phase_corrections_rad"].items()}
        return edit

    yesterday = day0(tmp_path, old, cache)
    def back(doc):  # the first day's corrections, noted as another calibration (else the cache has it)
        doc["calibration"]["calibrated_at"] = "2026-02-01T08:00:00Z"

    days = [("d1", shift(0.1, cz[:1])), ("d2", shift(-0.05, sorted(set(cz))[:5])), ("d3", back)]
    for name, edit in days:
        new = variant(tmp_path, name, edit, base="grid55_d5")
        calls.clear()
        rec, doc, _ = run(yesterday, new, tmp_path / name, cache_dir=cache)
        assert PULSE in rec.diff.classes and dict(calls) == {"qick_patch": 1}
        assert "program.json patched (calibration hash, CZ corrections)" in doc["outputs"]["produced_by"]
        compiled, paths = full(new, tmp_path / f"full_{name}")
        assert_same_outputs(paths, tmp_path / f"full_{name}", tmp_path / name)
        assert rec.compiled.program == compiled.program and rec.compiled.program.ops == compiled.program.ops
        assert (compiled.program.ops == probe.program.ops) == (edit is back)  # the phases are in the program
        assert bool(rec.entry.phases) == (edit is not back)  # beside the cached operations
        yesterday = tmp_path / name
    # the last day's result as the cache keeps it: the same program
    assert CompileCache(cache).get(rec.key).compiled.program.ops == probe.program.ops


# ------------------------------------------------------------------------------------ placement


def test_worst_t1_qubit_unusable_moves_the_placement(tmp_path, calls, capsys):
    cache = tmp_path / "cache"
    old = variant(tmp_path, "old", base="grid55_d5")
    before = compile_program(load_device(old), 3)
    dev = load_device(old)
    worst = min(before.placement.qubits, key=lambda q: dev.qubit(q).t1_s)

    def edit(doc):
        qubit(doc, worst)["usable"] = False

    new = variant(tmp_path, "new", edit, base="grid55_d5")
    yesterday = day0(tmp_path, old, cache)
    calls.clear()
    assert main(["recompile", "--from", str(yesterday), "--device", str(new), "--out", str(tmp_path / "re"),
                 "--cache", str(cache)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert calls["placement"] == 1 and calls["schedule"] == 1  # searched once, not once more by compile_program
    doc = json.loads((tmp_path / "re" / "recompile.json").read_text())
    assert doc["placement"]["moved"] is True
    assert f"qubit {worst} (marked unusable)" in doc["placement"]["why"]
    assert worst in doc["placement"]["old_qubits"] and worst not in doc["placement"]["new_qubits"]
    assert "placement MOVED" in printed
    assert worst in next(line for line in printed.splitlines() if line.strip().startswith("off ")).split("; onto")[0]
    assert [c["field"] for c in doc["changes"]] == ["usable"] and doc["changes"][0]["component"] == worst
    compiled, paths = full(new, tmp_path / "full")
    assert worst not in compiled.placement.qubits
    assert_same_outputs(paths, tmp_path / "full", tmp_path / "re")


def test_margin_keeps_a_placement_that_is_only_slightly_worse(tmp_path):
    """A qubit ten times worse: the best placement avoids it. With a margin larger than the gain the old
    placement stays (and the program equals a compile on that placement); with margin 0 it moves."""
    from ctrl.compile.placement import _subgraph_embeddings
    from ctrl.protocol.cn20 import cn20_protocol

    cache = tmp_path / "cache"
    old = variant(tmp_path, "old", base="grid55_d5")
    dev = load_device(old)
    before = compile_program(dev, 3)
    embeddings = list(_subgraph_embeddings(dev.graph(usable_only=True), cn20_protocol(3, before.placement.layout), 100))
    avoidable = [q for q in before.placement.qubits if any(q not in e for e in embeddings)]
    worst = min(avoidable, key=lambda q: dev.qubit(q).t1_s)

    def edit(doc):
        for key in ("t1_s", "t2_ramsey_s", "t2_echo_s"):
            qubit(doc, worst)[key] /= 10

    new_file = variant(tmp_path, "new", edit, base="grid55_d5")
    new = load_device(new_file)
    best = compile_program(new, 3)
    assert best.placement.qubits != before.placement.qubits
    prev = load_previous(day0(tmp_path, old, cache), new)
    kept = recompile(prev, new, margin=10.0, cache=CompileCache(cache))
    assert not kept.placement.moved and "within the margin" in kept.placement.why
    assert kept.compiled.placement.qubits == before.placement.qubits and not kept.searched
    pinned = compile_program(new, 3, placement=kept.compiled.placement)
    assert kept.compiled.program.to_json() == pinned.program.to_json()
    assert kept.compiled.report == pinned.report
    moved = recompile(prev, new, margin=0.0, cache=CompileCache(cache))
    assert moved.placement.moved and "more than the margin" in moved.placement.why and moved.searched
    assert moved.compiled.program.to_json() == best.program.to_json()
    gain = (moved.placement.old_cost_now - moved.placement.best_cost_now) / moved.placement.old_cost_now
    assert 0 < gain < 10.0


# ------------------------------------------------------------------------------------ cache


def test_unchanged_input_never_recompiles(tmp_path, calls):
    cache = tmp_path / "cache"
    old = variant(tmp_path, "old")
    yesterday = day0(tmp_path, old, cache)
    calls.clear()
    rec, doc, _ = run(yesterday, old, tmp_path / "again", cache_dir=cache)
    assert dict(calls) == {} and rec.action == "unchanged" and rec.passes_run == ()
    reused = sorted(p.name for p in yesterday.iterdir() if p.name != "recompile.json")
    assert any(n.startswith("qick_") for n in reused)
    for name in reused:
        if name == "report.json":  # the same up to the passes run: yesterday's compile, today none
            a, b = (json.loads((d / name).read_text()) for d in (yesterday, tmp_path / "again"))
            assert a.pop("passes") and b.pop("passes") == [] and a == b
        else:
            assert (tmp_path / "again" / name).read_bytes() == (yesterday / name).read_bytes(), name
    # and through the cache's own compile
    c = CompileCache(cache)
    dev = load_device(old)
    first, hit = c.compile(dev, 3)
    assert hit is not None and first.passes == () and dict(calls) == {}


def test_a_recompile_never_reuses_stale_parts(tmp_path, monkeypatch):
    cache = CompileCache(tmp_path / "cache")
    old = load_device(variant(tmp_path, "old"))
    new = load_device(variant(tmp_path, "new", _edit_timing))
    cached, _ = cache.compile(old, 3)
    assert compile_key(old, 3) != compile_key(new, 3)
    fresh, hit = cache.compile(new, 3)
    assert hit is None and fresh.passes  # compiled, not looked up
    starts = lambda c: [(t.start, t.duration) for t in c.program.ops]  # noqa: E731
    assert starts(fresh) != starts(cached)
    assert starts(fresh) == starts(compile_program(new, 3))
    # a different ctrl (source) or protocol never shares an entry
    before = compile_key(old, 3).digest
    monkeypatch.setattr("ctrl.outputs.cache.source_hash", lambda: "sha256:other")
    assert compile_key(old, 3).digest != before
    assert compile_key(old, 3, policy="alap").digest != compile_key(old, 3).digest


def test_editing_a_source_file_changes_the_source_hash(tmp_path, monkeypatch, request):
    import os

    import ctrl.outputs.cache as cache_module

    request.addfinalizer(cache_module.source_hash.cache_clear)  # the real tree's hash, not this one's
    tree = tmp_path / "ctrl"
    (tree / "recompile").mkdir(parents=True)
    (tree / "compile.py").write_text("x = 1\n")
    (tree / "notes.txt").write_text("not a source\n")
    monkeypatch.setattr(cache_module, "__file__", str(tree / "recompile" / "cache.py"))

    def digest() -> str:
        cache_module.source_hash.cache_clear()
        return cache_module.source_hash()

    first = digest()
    assert digest() == first
    (tree / "notes.txt").write_text("edited\n")
    assert digest() == first  # only Python sources count
    (tree / "compile.py").write_text("x = 22\n")  # another size
    second = digest()
    assert second != first
    st = (tree / "compile.py").stat()
    os.utime(tree / "compile.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # same size, rewritten later
    assert digest() != second
    (tree / "recompile" / "new.py").write_text("")
    assert digest() not in (first, second)


def test_recompile_chains_day_after_day(tmp_path, calls):
    cache = tmp_path / "cache"
    yesterday = day0(tmp_path, variant(tmp_path, "d0"), cache)
    run(yesterday, variant(tmp_path, "d1", _edit_timing), tmp_path / "day1", cache_dir=cache)
    calls.clear()

    def both(doc):
        _edit_timing(doc)
        _edit_pulse(doc)

    rec, _, _ = run(tmp_path / "day1", variant(tmp_path, "d2", both), tmp_path / "day2", cache_dir=cache)
    assert rec.diff.classes == (PULSE,) and dict(calls) == {"qick_patch": 1}
    _, paths = full(tmp_path / "d2.yaml", tmp_path / "full")
    assert_same_outputs(paths, tmp_path / "full", tmp_path / "day2")


def _drift(rng, doc) -> None:
    """One day's recalibration: one to four random edits among pulse, quality and timing fields."""
    q, c = rng.choice(doc["calibration"]["qubits"]), rng.choice(doc["calibration"]["couplers"])
    scale = lambda d, k, lo, hi: d.__setitem__(k, round(d[k] * rng.uniform(lo, hi), 6))  # noqa: E731
    shift = lambda d, k, step: d.__setitem__(k, round(d[k] + step, 12))  # noqa: E731
    edits = [
        lambda: scale(q["x90"]["pulse"], "amplitude", 0.95, 1.05),
        lambda: scale(q["x180"]["pulse"], "amplitude", 0.95, 1.05),
        lambda: scale(q["readout"]["pulse"], "amplitude", 0.9, 1.1),
        lambda: shift(q, "frequency_hz", rng.randint(-300, 300) * 1e3),
        lambda: shift(q["readout"], "frequency_hz", rng.randint(-200, 200) * 1e3),
        lambda: shift(q["readout"], "threshold", round(rng.uniform(-3, 3), 3)),
        lambda: q["readout"].__setitem__("iq_rotation_rad", round(rng.uniform(-3, 3), 4)),
        lambda: scale(q["x90"], "error", 0.5, 3),
        lambda: scale(c, "error", 0.5, 3),
        lambda: c.__setitem__("phase_corrections_rad",
                              {k: round(v + rng.uniform(-0.1, 0.1), 6) for k, v in c["phase_corrections_rad"].items()}),
        lambda: scale(c["flux_pulse"]["pulse"] if "flux_pulse" in c else c["cr_pulse"], "amplitude", 0.9, 1.1),
        lambda: shift(q["x90"], "duration_s", 4e-9),
        lambda: shift(q["readout"], "time_of_flight_s", 2e-8),
    ]  # fmt: skip
    for edit in rng.sample(edits, rng.randint(1, 4)):
        edit()


@pytest.mark.parametrize("base, days, dd", [("planar16_d3", 8, None), ("grid25_cz", 4, "xy4")])
def test_random_daily_drift_recompiles_equal_full_compiles(tmp_path, base, days, dd):
    """Day after day of random recalibrations, each recompiled from the day before: whenever the recompile
    says it equals a full compile, every output file does, byte for byte."""
    rng = random.Random(20261204)
    doc = yaml.safe_load((CONFIGS / f"{base}.yaml").read_text())
    cache = tmp_path / "cache"
    first = variant(tmp_path, "day0", base=base)
    run(first, first, tmp_path / "day0", cache_dir=cache, dd=dd)
    actions = Counter()
    for day in range(1, days + 1):
        _drift(rng, doc)
        path = variant(tmp_path, f"cal{day}", lambda d: d.update(doc), base=base)
        rec, report, _ = run(tmp_path / f"day{day - 1}", path, tmp_path / f"day{day}", cache_dir=cache)
        actions[rec.action] += 1
        if report["equals_full_compile"]:
            device = load_device(path)
            compiled = compile_program(device, 3, dd=dd)
            paths = write_outputs(compiled, tmp_path / f"full{day}", device)
            assert_same_outputs(paths, tmp_path / f"full{day}", tmp_path / f"day{day}")
    assert actions["patch"] >= 2 and actions["reschedule"] >= 1, actions  # both paths were exercised


# ------------------------------------------------------------------------------------ full compiles, bad input


def test_wiring_change_is_a_full_compile_and_says_so(tmp_path, capsys):
    cache = tmp_path / "cache"
    yesterday = day0(tmp_path, variant(tmp_path, "old"), cache)

    def rewire(doc):
        doc["wiring"]["controller"]["readout_to_decision_latency_s"] = 5.0e-07

    new = variant(tmp_path, "new", rewire)
    assert main(["recompile", "--from", str(yesterday), "--device", str(new), "--out", str(tmp_path / "re"),
                 "--cache", str(cache)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert sum("wiring changed" in line for line in out.splitlines()) == 1
    doc = json.loads((tmp_path / "re" / "recompile.json").read_text())
    assert doc["action"] == "full" and "wiring" in doc["why"]
    _, paths = full(new, tmp_path / "full")
    assert_same_outputs(paths, tmp_path / "full", tmp_path / "re")


def test_old_schema_record_is_a_full_compile(tmp_path):
    cache = tmp_path / "cache"
    old = variant(tmp_path, "old")
    yesterday = day0(tmp_path, old, cache)
    inputs = yesterday / "compile_inputs.json"
    doc = json.loads(inputs.read_text())
    doc["schema_version"] = 1
    del doc["inputs_sha256"]
    inputs.write_text(seal_inputs(json.dumps(doc)))
    rec, report, _ = run(yesterday, old, tmp_path / "re", cache_dir=cache)
    assert rec.action == "full" and "schema 1" in report["why"]


@pytest.mark.parametrize("case", ["missing", "compile-folder", "not-json", "not-a-folder", "bad-margin"])
def test_bad_input_is_one_line(tmp_path, capsys, case):
    cache = tmp_path / "cache"
    new = variant(tmp_path, "new")
    source = tmp_path / "nothing-here"
    margin = "0.05"
    if case == "compile-folder":
        assert main(["compile", "--device", str(new), "-d", "3", "--out", str(tmp_path / "c")]) == 0
        (tmp_path / "c" / "compile_inputs.json").unlink()  # a folder from before compiles recorded their inputs
        source = tmp_path / "c"
    elif case == "not-json":
        source = day0(tmp_path, new, cache)
        (source / "compile_inputs.json").write_text("{ not json")
    elif case == "not-a-folder":
        source = tmp_path / "empty"
        source.mkdir()
    elif case == "bad-margin":
        source = day0(tmp_path, new, cache)
        margin = "-1"
    capsys.readouterr()
    code = main(["recompile", "--from", str(source), "--device", str(new), "--out", str(tmp_path / "re"),
                 "--cache", str(cache), "--margin", margin])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    want = {"missing": "no such file or folder", "compile-folder": "pass the old device file",
            "not-json": "not valid JSON", "not-a-folder": "not an output folder", "bad-margin": "margin"}[case]
    assert want in err


# ------------------------------------------------------------------------------------ CLI


def test_recompile_from_a_device_file_with_emulation(tmp_path, capsys):
    old = variant(tmp_path, "old")
    new = variant(tmp_path, "new", _edit_quality)
    assert main(["recompile", "--from", str(old), "--device", str(new), "--out", str(tmp_path / "re"),
                 "--cache", str(tmp_path / "cache"), "--emulate-shots", "3000"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    doc = json.loads((tmp_path / "re" / "recompile.json").read_text())
    assert doc["previous_compile_recomputed"]  # the old file had never been compiled into this cache
    em = doc["emulated"]
    for side in ("old", "new"):
        assert 0 < em[side]["acceptance"] < 1 and em[side]["time_per_accepted_state_s"] > 0
    assert em["old"]["acceptance"] != em["new"]["acceptance"]  # different noise
    assert "emulated (3000 shots" in out and "acceptance" in out
    pred = doc["predicted"]
    assert pred["new"]["expected_faults_per_attempt"] > pred["old"]["expected_faults_per_attempt"]  # worse qubits


def test_diff_device_prints_the_changes_with_units(tmp_path, capsys):
    old = variant(tmp_path, "old")
    new = variant(tmp_path, "new", _edit_timing)
    assert main(["diff-device", str(old), str(new)]) == 1  # like diff: 1 when the files differ
    out = capsys.readouterr().out
    assert "Q3 x90.duration_s: 35.6 ns -> 44 ns (+23.6%) [timing]" in out
    assert "Q9 readout.time_of_flight_s:" in out
    assert main(["diff-device", str(old), str(old)]) == 0
    assert "no changes" in capsys.readouterr().out


def test_a_ctrl_compile_folder_is_patched_like_a_recompiled_one(tmp_path, calls):
    """`ctrl compile` keeps its result in the compile cache: the first recompile from its folder patches
    the QICK programs (nothing lowered, scheduled or emitted) and equals a full compile of the new
    calibration."""
    old, new = variant(tmp_path, "old"), variant(tmp_path, "new", _edit_pulse)
    cache = tmp_path / "cache"
    assert main(["compile", "--device", str(old), "-d", "3", "--out", str(tmp_path / "c"), "--cache", str(cache)]) == 0
    calls.clear()
    rec, doc, _ = run(tmp_path / "c", new, tmp_path / "re", cache_dir=cache)
    assert rec.action == "patch" and rec.diff.classes == (PULSE,)
    assert calls["natives"] == calls["schedule"] == calls["placement"] == calls["qick"] == 0
    assert calls["qick_patch"] == 1 and "QICK programs patched" in doc["outputs"]["produced_by"]
    _, paths = full(new, tmp_path / "full")
    assert_same_outputs(paths, tmp_path / "full", tmp_path / "re")


def test_a_compile_folder_without_its_cache_entry_is_lowered_on_its_placement(tmp_path, calls):
    from ctrl.outputs import write_compiled

    old = variant(tmp_path, "old")
    compiled = compile_program(load_device(old), 3)
    paths, problem = write_compiled(compiled, tmp_path / "c", load_device(old))  # no cache
    assert problem is None and sorted(p.name for p in paths) == sorted(p.name for p in (tmp_path / "c").iterdir())
    calls.clear()
    new = variant(tmp_path, "new", _edit_pulse)
    rec, doc, _ = run(tmp_path / "c", new, tmp_path / "re", cache_dir=tmp_path / "cache")
    assert rec.diff.classes == (PULSE,) and "placement" not in rec.passes_run
    assert calls["placement"] == 0 and calls["schedule"] == 1  # lowered again on the recorded placement
    _, paths = full(new, tmp_path / "full")
    assert_same_outputs(paths, tmp_path / "full", tmp_path / "re")


def test_a_cache_that_cannot_be_written_is_a_warning_for_ctrl_compile(tmp_path, capsys):
    old = variant(tmp_path, "old")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    assert main(["compile", "--device", str(old), "-d", "3", "--out", str(tmp_path / "c"), "--cache", str(blocker)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: compile cache") and len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "c" / "compile_inputs.json").is_file() and (tmp_path / "c" / "qick_zcu216.json").is_file()


def test_a_new_median_two_qubit_duration_re_evaluates_the_placement(tmp_path, calls):
    """The median two-qubit duration sets every placement's idle cost: a timing change, and a placement
    question too. Still equal to a full compile."""

    def slower(doc):
        for c in doc["calibration"]["couplers"]:
            c["duration_s"] = round(c["duration_s"] * 1.1, 12)
            c["cr_segment_s"] = round(c["cr_segment_s"] * 1.1, 12)

    cache = tmp_path / "cache"
    yesterday = day0(tmp_path, variant(tmp_path, "old"), cache)
    new = variant(tmp_path, "new", slower)
    calls.clear()
    rec, doc, _ = run(yesterday, new, tmp_path / "re", cache_dir=cache)
    assert rec.diff.classes == (TIMING,) and calls["placement"] == 1 and calls["schedule"] == 1
    costs = doc["placement"]["expected_faults_per_attempt"]
    assert costs["old_placement_new_calibration"] > costs["old_placement_old_calibration"]  # longer idling
    _, paths = full(new, tmp_path / "full")
    assert_same_outputs(paths, tmp_path / "full", tmp_path / "re")


def test_qick_patch_conversions_match_qick():
    """The pulse-only patch converts many gains at once and rewrites a threshold test's immediate in place:
    both as qick does (Converter.gain, the tProc assembler)."""
    import random

    from qick.tprocv2_assembler import Assembler

    from ctrl.backends.qick.convert import Converter

    fw = json.loads((CONFIGS / "firmware" / "zcu216_tprocv2_rev21_mux_pfb_fw20240928.json").read_text())
    board = BoardPatch.__new__(BoardPatch)
    board.fw, board._memo = fw, {}
    conv = Converter(None, fw, "zcu216", {})
    rng = random.Random(1)
    gains = [0.0, 1.0, 0.5, 1e-9, 0.9999999999] + [rng.random() for _ in range(200)]
    gains += [round(rng.random(), 6) for _ in range(200)]
    for gen, g in enumerate(fw["gens"]):
        for style in ("const", "arb") if "maxv_scale" in g else ("arb",):
            assert board.gain_regs(gen, style, gains) == [conv.gain(gen, style, x) for x in gains]

    def assembled(thr):
        inst = {"CMD": "TEST", "OP": f"s8 - #{thr}", "UF": "1", "P_ADDR": 1, "LINE": 1}
        return list(Assembler.list2bin([inst], {})[1][0])

    for old in (0, -7, 100):
        for thr in [0, 1, -1, 2**23 - 1, -(2**23)] + [rng.randint(-(2**23), 2**23 - 1) for _ in range(50)]:
            assert board.test_word(thr, old, assembled(old)) == assembled(thr)


def test_a_new_ecr_control_re_evaluates_the_placement(tmp_path, calls):
    """An ECR control is a timing change for the schedule, but the placement's cost charges the echo's x180
    to the control: the placement is re-evaluated, and the result equals a full compile."""

    def swapped(doc):
        c = doc["calibration"]["couplers"][0]
        c["control"] = next(q for q in c["qubits"] if q != c["control"])

    cache = tmp_path / "cache"
    yesterday = day0(tmp_path, variant(tmp_path, "old"), cache)
    new = variant(tmp_path, "new", swapped)
    calls.clear()
    rec, doc, _ = run(yesterday, new, tmp_path / "re", cache_dir=cache)
    assert TIMING in rec.diff.classes and calls["placement"] == 1
    _, paths = full(new, tmp_path / "full")
    assert_same_outputs(paths, tmp_path / "full", tmp_path / "re")
