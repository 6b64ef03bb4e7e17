"""The timeline plot: a Figure, built without pyplot or a backend switch, with a legend, hatched readout
windows and a window that draws only its operations."""

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
