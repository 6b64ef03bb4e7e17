"""One decision program: the compiler builds it once, and every consumer reads that very object.

The Stim detectors, the QICK plan's decision points, the emulator and the lab client's cross-check all
take the post-selection rule from `TimedProgram.decisions`; the three evaluators of the real-time
module agree on records drawn from the compiled program's own Stim circuit.
"""

import json
from types import SimpleNamespace

import numpy as np
import pytest

import ctrl.collect.task as collect_task
import ctrl.emulate.run as emulate_run
import ctrl.realtime.decision as decision
from ctrl.backends.qick.boardplan import Decision
from ctrl.backends.qick.plan import plan_program
from ctrl.backends.stim import timed_to_stim
from ctrl.compile.pipeline import compile_program
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.noise.models import UniformNoise
from ctrl.realtime.decision import DecisionProgram, Stream, evaluate_batch, first_failures, reference_accepts
from ctrl.sim.lower import IDEAL


@pytest.fixture(scope="module")
def default():
    dev = load_device(DEFAULT_DEVICE)
    return dev, compile_program(dev, 3).program


def test_the_compiled_program_holds_one_typed_decision_program(default):
    _, program = default
    rule = program.decisions
    assert isinstance(rule, DecisionProgram)
    assert sorted(rule.record) == sorted(r.name for r in rule.rules), "one record bit per check"
    assert [r.name for r in rule.rules] == [c["name"] for c in json.loads(program.to_json())["checks"]]
    # the record is the order of decision: point by point, a prefix each
    assert [rule.rules[i].name for p in rule.points for i in p.rules] == list(rule.record)
    assert [p.needs for p in rule.points] == list(np.cumsum([len(p.rules) for p in rule.points]))
    for p in rule.points:
        assert all(rule.rules[i].ready + rule.latency == p.time for i in p.rules)
    assert any(p.realtime for p in rule.points)


def test_stim_detectors_are_the_decision_record(default):
    _, program = default
    rule = program.decisions
    circuit = timed_to_stim(program, "X")
    detectors = [i for i in circuit.flattened() if i.name == "DETECTOR" and i.tag != IDEAL]
    assert [d.tag for d in detectors] == list(rule.record)
    # the detectors come before the ideal round: their lookbacks count from the program's measurements
    keys = [t.op.key for t in program.ops if t.op.name == "MEASURE"]
    n_meas = len(keys)
    for d in detectors:
        (r,) = [r for r in rule.rules if r.name == d.tag]
        assert sorted(keys[n_meas + t.value] for t in d.targets_copy()) == sorted(r.keys)


def test_qick_plan_decides_the_programs_points(default):
    dev, program = default
    rule = program.decisions
    (plan,) = plan_program(dev, program, 1).values()
    taken = [it for it in plan.attempt.items if isinstance(it, Decision)]
    assert taken, "the default device decides in real time"
    for it in taken:
        p = rule.points[it.index]
        assert (it.t, it.checks) == (p.time, rule.names(p)) and p.realtime
    post = {s.decision: s.checks for s in plan.post_selected}
    assert sorted([it.index for it in taken] + list(post)) == [p.index for p in rule.points]
    assert all(post[i] == rule.names(rule.points[i]) for i in post)
    assert set(plan.aborts) == {it.index for it in taken}


def test_emulator_evaluates_the_stored_program(default, monkeypatch):
    dev, program = default
    seen = []

    def spy(prog, packed):
        seen.append(prog)
        return evaluate_batch(prog, packed)

    monkeypatch.setattr(collect_task, "evaluate_batch", spy)  # the one sampler emulate runs
    emulate_run.emulate(dev, program, 300, "uniform:0.003", seed=1)
    assert seen and all(p is program.decisions or p == program.decisions.realtime_only() for p in seen)
    assert any(p is program.decisions for p in seen)


def test_lab_cross_check_evaluates_the_stored_program(default, monkeypatch):
    """The client's rule verdicts on a batch of readouts come from the program's own DecisionProgram, and
    equal the streaming evaluator's, slot by slot."""
    from ctrl.lab.client import _batch

    _, program = default
    rule = program.decisions
    keys = [t.op.key for t in program.ops if t.op.name == "MEASURE"]
    n = 64
    rng = np.random.default_rng(3)
    ones = (rng.random((n, len(keys))) < 0.02).astype(float)
    raw = [np.stack([ones, np.zeros_like(ones)], axis=-1).reshape(-1)]
    compiled = SimpleNamespace(program=program, labels={0: keys}, thresholds={k: 0.5 for k in keys})
    seen = []

    def spy(prog, packed):
        seen.append(prog)
        return evaluate_batch(prog, packed)

    monkeypatch.setattr(decision, "evaluate_batch", spy)
    doc = _batch(0, 0, compiled, SimpleNamespace(ro_chs=[0]), raw, np.zeros(n, dtype=np.int64), None)
    assert len(seen) == 1 and seen[0] is rule
    bits = {k: ones[:, i].astype(np.uint8) for i, k in enumerate(keys)}
    checks = decision.check_bits(rule, bits)
    for shot in range(n):
        v = Stream(rule).feed(checks[shot].tolist())
        assert doc["rule_outcomes"][shot] == (0 if v.status == "accept" else v.point + 1)
    assert 0 < sum(o > 0 for o in doc["rule_outcomes"]) < n


@pytest.mark.parametrize("proxy", "XZ")
def test_three_evaluators_agree_on_the_compiled_programs_records(default, proxy):
    _, program = default
    rule = program.decisions
    circuit = timed_to_stim(program, proxy, UniformNoise(3e-3))
    det = circuit.compile_detector_sampler(seed=11).sample(4000)
    bits = det[:, : len(rule.record)].astype(np.uint8)
    packed = np.packbits(bits, axis=1, bitorder="little")
    for prog in (rule, rule.realtime_only()):
        aborts = evaluate_batch(prog, packed)
        assert ((aborts < 0) == reference_accepts(prog, bits)).all()
        first = first_failures(prog, packed, aborts)
        for shot in range(0, len(bits), 9):
            v = Stream(prog).feed(bits[shot].tolist())
            if aborts[shot] < 0:
                assert v.status == "accept"
            else:
                assert (v.status, v.point, v.check) == ("abort", aborts[shot], prog.rules[first[shot]].name)
    aborts = evaluate_batch(rule, packed)
    assert 0 < (aborts < 0).sum() < len(aborts), "both outcomes occur"
