"""The timeline plot: a Figure, built without pyplot or a backend switch, with a legend, hatched readout
windows and a window that draws only its operations; one page per board for a program on several."""

import sys
from pathlib import Path

import pytest

from ctrl.errors import CtrlError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def program():
    from ctrl.compile.pipeline import compile_program
    from ctrl.device import load_device

    return compile_program(load_device(ROOT / "device_configs" / "planar16_d3.yaml"), 3).program


def test_returns_a_figure_and_leaves_the_backend_and_pyplot_alone(program, tmp_path):
    import matplotlib
    from matplotlib.figure import Figure

    from ctrl.backends.plot import plot_timeline

    backend = matplotlib.get_backend()
    pyplot_before = "matplotlib.pyplot" in sys.modules
    fig = plot_timeline(program, tmp_path / "t.png")
    assert isinstance(fig, Figure)
    assert matplotlib.get_backend() == backend
    if not pyplot_before:
        assert "matplotlib.pyplot" not in sys.modules  # no global figure state was touched
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert isinstance(plot_timeline(program), Figure)  # no file asked: only the figure


def test_legend_and_readout_windows_unlike_pulses(program):
    from matplotlib.collections import PolyCollection

    from ctrl.backends.plot import plot_timeline

    ax = plot_timeline(program).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"single-qubit pulse", "two-qubit gate", "readout pulse", "readout window (ro)"} <= set(labels)
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    hatched = [c for c in polys if c.get_hatch()]
    assert hatched and all(len(c.get_facecolor()) == 0 or c.get_facecolor()[0][3] == 0 for c in hatched)
    assert any(not c.get_hatch() and c.get_facecolor()[0][3] > 0 for c in polys)  # pulses are filled
    # one collection per kind of mark, not one artist per operation
    assert len(ax.collections) < 20 and len(ax.patches) == 0


def test_window_draws_only_its_operations_and_says_so(program):
    from ctrl.backends.plot import plot_timeline

    def bars(fig):
        return sum(len(c.get_paths()) for c in fig.axes[0].collections if c.get_hatch() is None)

    full = plot_timeline(program)
    fig = plot_timeline(program, window_us=(0, 2))
    ax = fig.axes[0]
    assert ax.get_xlim() == (0, 2)
    assert "window 0 to 2 us" in ax.get_title(loc="left")
    assert 0 < bars(fig) < bars(full) / 3
    with pytest.raises(CtrlError, match="start before"):
        plot_timeline(program, window_us=(5, 2))


def test_height_grows_with_rows_up_to_a_cap(program):
    from ctrl.backends.plot import MAX_HEIGHT_IN, plot_timeline

    h = plot_timeline(program).get_figheight()
    assert 4 <= h <= MAX_HEIGHT_IN


def test_bad_suffix_is_refused_before_drawing(program, tmp_path):
    from ctrl.backends.plot import plot_timeline

    with pytest.raises(CtrlError, match=r"\.png, \.svg or \.pdf"):
        plot_timeline(program, tmp_path / "t.jpg")
    assert not (tmp_path / "t.jpg").exists()


def test_cli_plot_window(tmp_path, capsys):
    from ctrl.cli import main

    out = tmp_path / "c"
    assert main(["compile", "--device", str(ROOT / "device_configs" / "planar16_d3.yaml"), "-d", "3", "--out",
                 str(out), "--cache", str(tmp_path / "cache")]) == 0  # fmt: skip
    assert main(["plot", str(out / "program.json"), "-o", str(tmp_path / "w.svg"), "--window-us", "1", "3"]) == 0
    assert "window 1 to 3 us" in (tmp_path / "w.svg").read_text()


@pytest.fixture(scope="module")
def boards_program(tmp_path_factory):
    """grid25_cz at d=3: a program on several boards, with gates played from a neighbour board's channel."""
    from ctrl.compile.pipeline import compile_program
    from ctrl.device import load_device
    from ctrl.outputs import write_outputs

    device = load_device(ROOT / "device_configs" / "grid25_cz.yaml")
    out = tmp_path_factory.mktemp("grid25")
    write_outputs(compile_program(device, 3), out, device)
    return out / "program.json"


def _rows(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_yticklabels()]


def test_one_page_per_board_each_with_its_own_qubits_and_channels(boards_program, tmp_path):
    import json

    import matplotlib
    from matplotlib.figure import Figure

    from ctrl.backends.plot import ROW_IN, page_path, plot_boards, plot_timeline

    doc = json.loads(boards_program.read_text())
    used = sorted({c.split("/")[0] for op in doc["ops"] for c in op["channels"] if "/" in c})
    assert len(used) > 1
    backend = matplotlib.get_backend()
    pages = plot_boards(boards_program, tmp_path / "t.png")
    assert matplotlib.get_backend() == backend
    assert sorted(pages) == used and all(isinstance(f, Figure) for f in pages.values())
    whole = plot_timeline(boards_program)
    own_rows = []
    for board, fig in pages.items():
        assert page_path(tmp_path / "t.png", board).read_bytes()[:4] == b"\x89PNG"
        rows = _rows(fig)
        channels = [r for r in rows if "/" in r]
        assert channels and all(r.startswith(board + "/") for r in channels)
        # a qubit of another board is marked with its board; its own qubits come first
        qubit_rows = [r for r in rows[1:] if r and "/" not in r]
        own = [r for r in qubit_rows if r.count(",") == 0]
        assert qubit_rows[: len(own)] == own
        own_rows += [r.split()[0] for r in own]
        # a page is as tall as its rows ask (plus the margins), never the capped whole page
        assert fig.get_figheight() == pytest.approx(max(4.0, 1.8 + ROW_IN * len(rows)))
        assert fig.get_figheight() < whole.get_figheight()
        assert f"board {board}:" in fig.axes[0].get_title(loc="left")
    # every qubit of the program is some board's own, exactly once
    assert sorted(own_rows) == sorted(q["device"] for q in doc["qubits"])


def test_each_page_draws_both_ends_of_its_two_qubit_gates(boards_program):
    import json

    from ctrl.backends.plot import plot_boards

    doc = json.loads(boards_program.read_text())
    for board, fig in plot_boards(boards_program).items():
        names = {r.split()[0] for r in _rows(fig) if r and "/" not in r and r != "decisions"}
        for op in doc["ops"]:
            if len(op["qubits"]) == 2 and any(c.startswith(board + "/") for c in op["channels"]):
                assert set(op["qubits"]) <= names, (board, op["qubits"])


def test_cli_plot_writes_board_pages_only_for_several_boards(boards_program, program, tmp_path, capsys):
    from ctrl.cli import main

    assert main(["plot", str(boards_program), "-o", str(tmp_path / "many" / "t.png")]) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "many").iterdir())
    assert names[0] == "t.png" and len(names) > 2 and all(n.startswith("t_") for n in names[1:])
    assert f"wrote {len(names) - 1} board pages" in out
    one = tmp_path / "one"
    one.mkdir()
    (one / "program.json").write_text(program.to_json())
    assert main(["plot", str(one / "program.json"), "-o", str(one / "t.png")]) == 0
    assert sorted(p.name for p in one.iterdir()) == ["program.json", "t.png"]
    assert "board pages" not in capsys.readouterr().out
