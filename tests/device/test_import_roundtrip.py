"""Import -> validate -> compile -> emulate -> recompile, with the plain CLI, on IBM-format snapshots written here.

Two snapshots of one 5x5 grid device in the backend-properties format (ECR both ways with their own
errors, static ZZ, one qubit that reads at random), as a lab has them a day apart."""

from __future__ import annotations

import json
import random

import pytest

from ctrl.cli import main
from ctrl.device import load_device

SIDE = 5


def snapshot(seed: int) -> dict:
    rng = random.Random(seed)
    n = SIDE * SIDE
    date = f"2025-03-0{seed}T10:00:00+00:00"

    def param(name, unit, value):
        return {"date": date, "name": name, "unit": unit, "value": value}

    qubits = []
    for i in range(n):
        ro = rng.uniform(0.005, 0.03)
        qubits.append([
            param("T1", "us", rng.uniform(150, 350)), param("T2", "us", rng.uniform(80, 250)),
            param("frequency", "GHz", 4.6 + 0.05 * (i % 7)), param("anharmonicity", "GHz", -0.31),
            param("readout_error", "", 0.5 if i == 7 else ro), param("prob_meas0_prep1", "", ro * 1.2),
            param("prob_meas1_prep0", "", ro * 0.8), param("readout_length", "ns", 1216),
        ])  # fmt: skip
    gates = []
    for i in range(n):
        for kind, length, err in (("sx", 60, 2.5e-4), ("x", 60, 2.5e-4), ("reset", 1300, None)):
            ps = [param("gate_length", "ns", length)] + ([param("gate_error", "", err * rng.uniform(0.5, 2))] if err else [])
            gates.append({"qubits": [i], "gate": kind, "parameters": ps, "name": f"{kind}{i}"})
    general = []
    for r in range(SIDE):
        for c in range(SIDE):
            i = r * SIDE + c
            for j in ([i + 1] if c + 1 < SIDE else []) + ([i + SIDE] if r + 1 < SIDE else []):
                for a, b in ((i, j), (j, i)):
                    gates.append({"qubits": [a, b], "gate": "ecr", "name": f"ecr{a}_{b}", "parameters": [
                        param("gate_error", "", rng.uniform(4e-3, 1.2e-2)), param("gate_length", "ns", rng.choice([533, 660]))]})
                general.append(param(f"zz_{i}{j}" if i < 10 and j < 10 else f"zz_{i}_{j}", "GHz", rng.uniform(1e-6, 2e-5)))
    return {"backend_name": "fake_grid25", "backend_version": "1.0.0", "last_update_date": date,
            "qubits": qubits, "gates": gates, "general": general, "general_qlists": []}


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    d = tmp_path_factory.mktemp("snapshots")
    for k in (1, 2):
        (d / f"props_{k}.json").write_text(json.dumps(snapshot(k)))
    return d


def test_import_validate_compile_emulate_recompile(snapshots, tmp_path, capsys):
    for k in (1, 2):
        assert main(["import", "ibm", str(snapshots / f"props_{k}.json"), "--out", str(tmp_path / f"dev{k}.yaml")]) == 0
        assert main(["validate", str(tmp_path / f"dev{k}.yaml")]) == 0
    dev = load_device(tmp_path / "dev1.yaml")
    assert not dev.qubit("Q7").usable  # reads at random: the compiler must not place on it
    capsys.readouterr()
    out = tmp_path / "c1"
    assert main(["compile", "--device", str(tmp_path / "dev1.yaml"), "-d", "3", "--out", str(out),
                 "--cache", str(tmp_path / "cache")]) == 0  # fmt: skip
    said = capsys.readouterr().out
    assert "no QICK programs" in said
    program = json.loads((out / "program.json").read_text())
    placed = [q["device"] for q in program["qubits"]]
    assert "Q7" not in placed and sum(q["role"] == "data" for q in program["qubits"]) == 7
    assert main(["emulate", "--device", str(tmp_path / "dev1.yaml"), "-d", "3", "--shots", "3000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["shots"] == 3000 and result["provenance"]["calibration_hash"] == dev.calibration_hash
    assert main(["recompile", "--from", str(out), "--device", str(tmp_path / "dev2.yaml"), "--out",
                 str(tmp_path / "c2"), "--cache", str(tmp_path / "cache")]) == 0  # fmt: skip
    rec = json.loads((tmp_path / "c2" / "recompile.json").read_text())
    assert rec["to"]["calibration_hash"] == load_device(tmp_path / "dev2.yaml").calibration_hash
    assert {"quality"} <= set(rec["change_classes"])
    # the recompiled folder equals a full compile of the new snapshot at the placement recompile chose
    full = tmp_path / "full"
    assert main(["compile", "--device", str(tmp_path / "dev2.yaml"), "-d", "3", "--out", str(full),
                 "--cache", str(tmp_path / "cache2")]) == 0  # fmt: skip
    new = json.loads((tmp_path / "c2" / "program.json").read_text())
    if new["qubits"] == json.loads((full / "program.json").read_text())["qubits"]:
        assert (tmp_path / "c2" / "program.json").read_text() == (full / "program.json").read_text()
