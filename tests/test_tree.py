"""The shared-register family: stored designs are what they claim, the searches find valid parts, and the
compiler picks a family per device and says which."""

import dataclasses

import networkx as nx
import numpy as np
import pytest

from ctrl.codes.color import color_code
from ctrl.compile.pipeline import compile_program
from ctrl.device import DEFAULT_DEVICE, load_device
from ctrl.errors import CtrlError
from ctrl.protocol.cn20 import cn20_protocol, variants
from ctrl.protocol.tree import (
    Design,
    Register,
    TreeLayout,
    build,
    check_design,
    design_path,
    stored_design,
)

STORED = [(d, deg) for d in (3, 5, 7) for deg in (3, 4) if design_path(d, deg).exists()]


def _gf2_register(reg: Register, n_data: int) -> dict[int, set[str]]:
    """What each data qubit receives from a register, by pushing label sets through the CX list by hand
    (independent of Register.contents)."""
    value = {a: {label} for a, label in reg.roots}
    for u, v in reg.spread:
        value[v] = set(value.get(v, set())) ^ set(value.get(u, set()))
    got: dict[int, set[str]] = {q: set() for q in range(n_data)}
    for a, q in reg.actions:
        got[q] ^= value.get(a, set())
    return got


@pytest.mark.parametrize("d, degree", STORED)
def test_stored_design_measures_what_it_claims(d, degree):
    design = stored_design(d, degree)
    code = color_code(d)
    check_design(code, design)
    circuit = build(code, design)
    assert max(dict(nx.Graph(circuit.couplers).degree).values()) <= degree
    for gadgets in design.rounds:
        for g in gadgets:
            got = _gf2_register(g.register, code.n)
            for q in range(code.n):
                want = {"L"} if g.kind == "HL" else {f"F{f}" for f in code.faces_of(q)}
                assert got[q] == want, (g.kind, q)
    assert Design.from_doc(design.to_doc()) == design


def test_a_broken_design_is_refused():
    design = stored_design(3, 3)
    code = color_code(3)
    first = design.rounds[0]
    x = next(i for i, g in enumerate(first) if g.kind == "X")
    reg = first[x].register
    short = dataclasses.replace(first[x], register=dataclasses.replace(reg, actions=reg.actions[:-1]))
    bad = dataclasses.replace(design, rounds=(first[:x] + (short,) + first[x + 1 :],))
    with pytest.raises(CtrlError, match="data qubit"):
        check_design(code, bad)
    enc = dataclasses.replace(design.encoder, layers=design.encoder.layers[:-1])
    with pytest.raises(CtrlError, match="encoder"):
        check_design(code, dataclasses.replace(design, encoder=enc))


def test_searches_find_valid_registers_and_encoders_on_the_stored_layout():
    pytest.importorskip("ortools")
    from ctrl.protocol.search import block, encoder, gadget_steps

    code = color_code(3)
    design = stored_design(3, 3)
    layout = design.layout
    faces = {f"F{f.index}": f.qubits for f in code.faces}
    reg = block(layout, faces, seconds=20)
    got = _gf2_register(reg, code.n)
    assert all(got[q] == {f"F{f}" for f in code.faces_of(q)} for q in range(code.n))
    stored_x = next(g.register for g in design.rounds[0] if g.kind == "X")
    assert gadget_steps(reg, "CX") <= gadget_steps(stored_x, "CX") + 1
    enc = encoder(layout, faces, code.logical, seconds=30)
    assert len(enc.layers) <= len(design.encoder.layers)
    check_design(code, dataclasses.replace(design, encoder=enc))


def test_tree_layout_is_planar_connected_and_within_the_paper():
    c = cn20_protocol(3)
    assert len(c.qubits) <= 16 and c.n_steps <= 36
    g = nx.Graph(c.couplers)
    assert nx.check_planarity(g)[0] and nx.is_connected(g)
    ancillas = [q.index for q in c.qubits if q.role == "ancilla"]
    assert nx.is_tree(g.subgraph(ancillas))


def test_placement_picks_a_family_per_device_and_reports_it():
    planar = compile_program(load_device(DEFAULT_DEVICE), 3)
    assert planar.placement.variant == "tree" and planar.report["placement"]["variant"] == "tree"
    grid = compile_program(load_device(DEFAULT_DEVICE.parent / "grid55_d5.yaml"), 3)
    # grid55 holds the d=5 path layout: the d=3 tree does not embed there, the path does.
    assert grid.placement.variant == "path" and grid.report["placement"]["variant"] == "path"
    names = [name for name, _ in variants(3)]
    assert names[0] == "tree" and "path" in names


def test_design_steps_and_qubits_reach_the_protocol_json():
    import json

    doc = json.loads(cn20_protocol(3).to_json())
    assert doc["time_steps"] == cn20_protocol(3).n_steps and doc["qubit_count"] == 16
    assert np.all([q["role"] in ("data", "ancilla") for q in doc["qubits"]])


def test_unknown_design_format_is_refused():
    doc = stored_design(3, 3).to_doc() | {"format": "ctrl.design/0"}
    with pytest.raises(CtrlError, match="format"):
        Design.from_doc(doc)
    assert isinstance(stored_design(3, 3).layout, TreeLayout)


def test_late_readout_moves_only_the_flagged_gadgets_readout_later():
    code = color_code(3)
    design = stored_design(3, 3)
    last = tuple(dataclasses.replace(g, late_readout=g.kind != "HL") for g in design.rounds[-1])
    late = dataclasses.replace(design, rounds=design.rounds[:-1] + (last,))
    assert Design.from_doc(late.to_doc()) == late and "late_readout" not in str(design.to_doc())
    before, after = build(code, design), build(code, late)
    assert after.n_steps == before.n_steps
    step = {op.key: op.step for op in before.ops if op.key}
    moved = {op.key: op.step for op in after.ops if op.key}
    flagged = {f"r{len(design.rounds) - 1}.{g.kind}" for g in last if g.late_readout}
    assert all(moved[k] == step[k] for k in step if k.split("/")[0] not in flagged)
    assert all(moved[k] >= step[k] for k in step) and any(moved[k] > step[k] for k in step)


def test_the_search_tries_late_readouts_on_the_last_round_only():
    from ctrl.protocol.search import late_last_round
    from ctrl.sim.faults import design_score

    design = stored_design(3, 3)
    late = late_last_round(design)
    assert [[g.late_readout for g in r] for r in late.rounds[:-1]] == [[False] * len(r) for r in design.rounds[:-1]]
    assert [g.late_readout for g in late.rounds[-1]] == [g.kind != "HL" for g in design.rounds[-1]]
    # the variant keeps fault distance and the step count, and scores as its own design
    assert design_score(build(color_code(3), late)) is not None
    assert build(color_code(3), late).n_steps == build(color_code(3), design).n_steps
