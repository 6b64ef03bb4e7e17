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
        (["simulate", "-d", "3", "--noise", "uniform:0.001", "--shots", "0"], "positive integer"),
        (["protocol", "-d", "2", "--out", "x"], "odd integer"),
        (["simulate", "-d", "three", "--noise", "uniform:0.001", "--shots", "10"], "invalid int"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) if "three" in argv else _nothing():
        code = main(argv)
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err
    assert "Traceback" not in err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


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
