"""The broken-file corpus: every file fails with its own message, at its own line, and never a traceback."""

import pytest

from corpus import BROKEN, CASES, line_of, render
from ctrl.cli import main
from ctrl.device import validate


def test_corpus_is_large_and_up_to_date():
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)
    on_disk = {p.name for p in BROKEN.glob("*.yaml")}
    assert on_disk == {f"{c.name}.yaml" for c in CASES}, "run python tests/device/corpus.py"
    for c in CASES:
        assert (BROKEN / f"{c.name}.yaml").read_text() == render(c), f"{c.name}: run python tests/device/corpus.py"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_broken_file_gives_its_message_at_its_line(case):
    path = BROKEN / f"{case.name}.yaml"
    messages = validate(path)
    assert messages, f"{case.name} validated"
    hits = [m for m in messages if all(e in m for e in case.expect)]
    assert hits, f"none of {messages} contains all of {case.expect}"
    if case.at:
        line = line_of(path.read_text(), case.at)
        assert hits[0].startswith(f"{path}:{line}:"), hits[0]
    for m in messages:
        assert m.startswith(str(path)) and "\n" not in m and "Traceback" not in m


@pytest.mark.parametrize("case", CASES[::7], ids=lambda c: c.name)
def test_cli_exits_2_with_one_line_per_problem(case, capsys):
    path = BROKEN / f"{case.name}.yaml"
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == validate(path)


def test_the_corpus_covers_the_issue_list():
    names = {c.name for c in CASES}
    for required in ("missing_field", "wrong_type_text", "negative_t2", "t1_in_us", "duration_in_ns", "unknown_key",
                     "duplicate_qubit", "dangling_coupler", "gen_not_in_firmware", "disconnected_graph",
                     "yaml_malformed"):
        assert required in names
