import json

import pytest

from ctrl.cli import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["simulate", "-d", "4", "--noise", "uniform:0.001", "--shots", "10"], "odd integer"),
        (["simulate", "-d", "1", "--noise", "uniform:0.001", "--shots", "10"], "odd integer"),
        (["simulate", "-d", "3", "--noise", "uniform:0.7", "--shots", "10"], "[0, 0.5]"),
        (["simulate", "-d", "3", "--noise", "uniform:-1e-3", "--shots", "10"], "[0, 0.5]"),
        (["simulate", "-d", "3", "--noise", "depolarize:0.001", "--shots", "10"], "unknown noise model"),
        (["simulate", "-d", "3", "--noise", "uniform:abc", "--shots", "10"], "must be a number"),
        (["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "0"], "from 1 to 1000000000"),
        (["protocol", "-d", "2", "--out", "x"], "odd integer"),
        (["simulate", "-d", "three", "--noise", "uniform:0.001", "--shots", "10"], "must be an integer"),
        (["simulate", "-d", "101", "--noise", "uniform:0.001", "--shots", "10"], "from 3 to 15"),
        (["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "1000000000000"], "from 1 to 1000000000"),
        (["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "2000000", "--method", "statevector"],
         "at most 1000000"),
        (["dry-run", "--noise", "uniform:2", "--out", "OUT"], "[0, 0.5]"),
        (["emulate", "--device", "device_configs/planar16_d3.yaml", "-d", "3", "--shots", "10", "--noise",
          "calibration*-1"], "SCALE >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    assert not (tmp_path / "out").exists()  # bad input is refused before anything is written
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err
    assert "Traceback" not in err


def test_protocol_writes_ir_and_stim(tmp_path):
    assert main(["protocol", "-d", "3", "--noise", "uniform:0.001", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "protocol.json").read_text())
    assert doc["distance"] == 3 and len(doc["qubits"]) == 16
    kinds = {c["kind"] for c in doc["checks"]}
    assert kinds == {"logical-H", "cat-parity", "syndrome", "flag"}
    text = (tmp_path / "protocol.stim").read_text()
    assert "DEPOLARIZE2(0.001)" in text and "OBSERVABLE_INCLUDE(0)" in text
    again = tmp_path / "again"
    main(["protocol", "-d", "3", "--noise", "uniform:0.001", "--out", str(again)])
    assert (again / "protocol.json").read_bytes() == (tmp_path / "protocol.json").read_bytes()
    assert (again / "protocol.stim").read_bytes() == (tmp_path / "protocol.stim").read_bytes()


def test_simulate_json(capsys):
    assert main(["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "2000", "--json", "--seed", "3"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("shots", "accepted", "acceptance", "logical_errors", "logical_error_rate", "method", "versions"):
        assert key in r
    assert r["shots"] == 2000 and 0 < r["accepted"] <= 2000
    assert r["acceptance_ci95"][0] <= r["acceptance"] <= r["acceptance_ci95"][1]
    assert sum(r["discards"].values()) == r["shots"] - r["accepted"]


def test_the_help_states_the_bounds_the_parser_enforces():
    from ctrl import cli
    from ctrl.codes.color import MAX_DISTANCE

    assert cli._DISTANCE_HELP.endswith(f"3 to {MAX_DISTANCE}")
    assert cli._SHOTS_HELP.endswith(f"{cli.MAX_SHOTS:,}")
