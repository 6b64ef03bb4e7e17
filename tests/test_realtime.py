"""The decision program: streaming == batch == plain rule, on random and on noisy records."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrl.noise.models import UniformNoise
from ctrl.protocol.cn20 import cn20_protocol
from ctrl.realtime.decision import (
    DecisionProgram,
    Rule,
    DecisionPoint,
    Stream,
    check_bits,
    evaluate_batch,
    first_failures,
    protocol_decisions,
    reference_accepts,
)
from ctrl.sim.lower import to_stim


def _checks(circuit, program, rec):
    """The check results of measurement records sampled from the protocol's Stim circuit."""
    return check_bits(program, {k: rec[:, i] for i, k in enumerate(circuit.record)})


def _stream(program, bits, chunk):
    s = Stream(program)
    verdict = None
    for i in range(0, len(bits), chunk):
        verdict = s.feed(bits[i : i + chunk])
        if verdict.status != "continue":
            break
    return verdict


@pytest.fixture(scope="module", params=[3, 5])
def program(request):
    return protocol_decisions(cn20_protocol(request.param), latency=3)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_stream_batch_and_reference_agree(program, data):
    n = len(program.record)
    density = data.draw(st.sampled_from([0.0, 0.002, 0.02, 0.3]))
    seed = data.draw(st.integers(0, 2**31))
    bits = (np.random.default_rng(seed).random((40, n)) < density).astype(np.uint8)
    packed = np.packbits(bits, axis=1, bitorder="little")
    aborts = evaluate_batch(program, packed)
    reference = reference_accepts(program, bits)
    assert ((aborts < 0) == reference).all()
    first = first_failures(program, packed, aborts)
    chunk = data.draw(st.integers(1, 17))
    for shot in range(bits.shape[0]):
        v = _stream(program, bits[shot].tolist(), chunk)
        fired = any(bits[shot, list(r.bits)].sum() % 2 for r in program.rules)
        if fired:
            assert v.status == "abort", "an attempt with a fired check was accepted"
            assert v.point == aborts[shot]
            assert v.check == program.rules[first[shot]].name
        else:
            assert v.status == "accept", "an attempt with no fired check was aborted"


def test_multi_bit_parities_fold_correctly():
    rules = (Rule("a", "syndrome", (0, 3), 1), Rule("b", "flag", (1,), 1), Rule("c", "flag", (2, 4, 9), 2))
    prog = DecisionProgram(
        record=tuple(f"m{i}" for i in range(10)),
        rules=rules,
        points=(DecisionPoint(0, 2, (0, 1), 4), DecisionPoint(1, 3, (2,), 10)),
        duration=5,
        latency=1,
    )
    bits = np.array(
        [[1, 0, 0, 1, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 1, 0, 0, 0, 0, 1]],
        dtype=np.uint8,
    )
    aborts = evaluate_batch(prog, np.packbits(bits, axis=1, bitorder="little"))
    assert aborts.tolist() == [-1, 0, 1]
    assert reference_accepts(prog, bits).tolist() == [True, False, False]


def test_every_check_is_decided_once_and_only_after_its_results():
    c = cn20_protocol(3)
    prog = protocol_decisions(c, latency=4)
    tested = [r for p in prog.points for r in p.rules]
    assert sorted(tested) == list(range(len(prog.rules)))
    for p in prog.points:
        for r in p.rules:
            assert prog.rules[r].ready + prog.latency <= p.time
            assert max(prog.rules[r].bits) < p.needs
            assert prog.rules[r].ready == max(op.step + 1 for op in c.measurements if op.key in prog.rules[r].keys)
    times = [p.time for p in prog.points]
    assert all(b - a >= prog.latency for a, b in zip(times, times[1:]))


def test_larger_latency_means_fewer_points():
    c = cn20_protocol(3)
    assert len(protocol_decisions(c, latency=8).points) < len(protocol_decisions(c, latency=1).points)


def test_early_abort_saves_time_on_noisy_shots():
    c = cn20_protocol(3)
    prog = protocol_decisions(c, latency=2)
    rec = to_stim(c, "X", UniformNoise(1e-3)).compile_sampler(seed=7).sample(20000)
    bits = _checks(c, prog, rec)
    packed = np.packbits(bits, axis=1, bitorder="little")
    aborts = evaluate_batch(prog, packed)
    first = first_failures(prog, packed, aborts)
    accepted = aborts < 0
    assert 0.3 < accepted.mean() < 0.9
    stopped_at = np.array([p.time for p in prog.points])[aborts[~accepted]]
    assert stopped_at.mean() < prog.duration, "an aborted attempt ends before a full one would"
    spent = stopped_at.sum() + accepted.sum() * prog.duration
    assert spent / accepted.sum() > prog.duration
    assert ((first >= 0) == ~accepted).all(), "every aborted shot names the check that stopped it"


def test_points_out_of_record_order_use_the_general_path():
    rules = (Rule("late-bit", "flag", (5,), 1), Rule("early-bit", "flag", (2,), 2))
    prog = DecisionProgram(
        record=tuple(f"m{i}" for i in range(8)),
        rules=rules,
        points=(DecisionPoint(0, 2, (0,), 6), DecisionPoint(1, 3, (1,), 6)),
        duration=5,
        latency=1,
    )
    bits = np.zeros((3, 8), dtype=np.uint8)
    bits[0, 2] = 1  # only the check of point 1 fired
    bits[1, [2, 5]] = 1  # both: point 0 decides first
    aborts = evaluate_batch(prog, np.packbits(bits, axis=1, bitorder="little"))
    assert aborts.tolist() == [1, 0, -1]


def test_latency_budget_of_the_compiled_program():
    from ctrl.compile.pipeline import compile_program
    from ctrl.device import DEFAULT_DEVICE, load_device
    from ctrl.realtime.budget import latency_budget

    dev = load_device(DEFAULT_DEVICE)
    c = compile_program(dev, 3)
    budget = latency_budget(c.program.decisions)
    assert budget == c.report["latency_budget"]
    assert len(budget) == len(c.program.decisions.points)
    latency = round(dev.wiring.controller.readout_to_decision_latency_s * c.program.clock_hz)
    for b in budget:
        assert b["readout_to_decision_cycles"] == latency > 0
        assert b["decision_cycle"] == b["window_end_cycle"] + latency + b["slack_cycles"]
        assert b["slack_cycles"] >= 0


@pytest.mark.parametrize("d", [3, 5])
def test_every_protocol_check_is_decided_once_and_aborts_on_its_own(d):
    """The decision program tests the protocol's checks, all of them, each once: for every check, a record
    whose only 1 is one of that check's measurements must be aborted, and the all-zero record accepted."""
    circuit = cn20_protocol(d)
    program = protocol_decisions(circuit, latency=3)
    assert [(r.name, r.kind, r.keys) for r in program.rules] == [(c.name, c.kind, c.measurements) for c in circuit.checks]
    decided = sorted(i for p in program.points for i in p.rules)
    assert decided == list(range(len(program.rules)))
    assert sorted(b for r in program.rules for b in r.bits) == list(range(len(program.record)))
    n = len(circuit.record)
    rec = np.zeros((len(circuit.checks) + 1, n), dtype=np.uint8)
    for row, check in enumerate(circuit.checks):
        rec[row, circuit.record.index(check.measurements[0])] = 1
    bits = _checks(circuit, program, rec)
    aborts = evaluate_batch(program, np.packbits(bits, axis=1, bitorder="little"))
    assert (aborts[:-1] >= 0).all(), "a check whose measurement read 1 let the attempt through"
    assert aborts[-1] < 0, "the all-zero record was aborted"


@pytest.mark.parametrize("d", [3, 5])
def test_fast_paths_agree_with_the_point_by_point_evaluation(d):
    """The word tricks of `evaluate_batch` (one padded word at d=3, two overlapping unaligned words at d=5)
    give, shot for shot, the aborting point the plain point-by-point evaluation gives, and accept exactly
    what the reference rule accepts, on noisy records."""
    from ctrl.realtime.decision import _evaluate_by_points

    c = cn20_protocol(d)
    prog = protocol_decisions(c, latency=3)
    rec = to_stim(c, "X", UniformNoise(3e-3)).compile_sampler(seed=d).sample(20000)
    bits = _checks(c, prog, rec)
    packed = np.packbits(bits, axis=1, bitorder="little")
    fast = evaluate_batch(prog, packed)
    assert 0 < (fast < 0).sum() < len(fast)  # both outcomes occur
    assert (fast == _evaluate_by_points(prog, packed)).all()
    assert ((fast < 0) == reference_accepts(prog, bits)).all()
