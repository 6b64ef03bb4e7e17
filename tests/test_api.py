"""The top-level API (`ctrl/__init__.py`): each name is the function it documents, imported lazily, and the
subpackages `ctrl.compile` / `ctrl.emulate` keep working whatever was imported first. Import-order
questions are asked in fresh interpreters, where nothing else has imported ctrl yet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_each_name_is_the_function_it_stands_for():
    import ctrl
    from ctrl.backends.plot import plot_timeline
    from ctrl.compile.pipeline import compile_program
    from ctrl.device import DEFAULT_DEVICE, load_device
    from ctrl.emulate import sweep
    from ctrl.emulate.run import emulate
    from ctrl.errors import CtrlError
    from ctrl.lab.dataset import convert, open_dataset, read_results
    from ctrl.outputs import write_outputs

    assert ctrl.load_device is load_device and ctrl.DEFAULT_DEVICE == DEFAULT_DEVICE
    assert ctrl.compile_program is compile_program and ctrl.emulate_program is emulate
    assert ctrl.write_outputs is write_outputs and ctrl.plot_timeline is plot_timeline
    assert ctrl.sweep is sweep and ctrl.CtrlError is CtrlError
    assert ctrl.read_results is read_results and ctrl.convert_results is convert and ctrl.open_dataset is open_dataset
    assert isinstance(ctrl.__version__, str) and ctrl.__version__
    for name in ctrl.__all__:  # every advertised name resolves and is documented in the module docstring
        getattr(ctrl, name)
        assert f"ctrl.{name}" in ctrl.__doc__, name
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        ctrl.nonesuch  # noqa: B018


def test_import_ctrl_stays_cheap():
    # nothing heavy (numpy, stim, matplotlib, xarray, h5py) is imported until a name is used
    out = _python(
        "import sys, ctrl; heavy = ('numpy', 'stim', 'matplotlib', 'xarray', 'h5py', 'ctrl.device');"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    assert out == "[]"


@pytest.mark.parametrize("first", [
    "import ctrl",
    "import ctrl.compile.pipeline",
    "from ctrl.compile.pipeline import compile_program",
    "import ctrl; ctrl.compile_program",
    "import ctrl; ctrl.emulate_program",
    "from ctrl.emulate.run import emulate",
])  # fmt: skip
def test_subpackages_and_functions_coexist_in_any_import_order(first):
    out = _python(
        f"{first}\n"
        "import types, ctrl\n"
        "import ctrl.compile.pipeline as p\n"
        "from ctrl.emulate.run import emulate\n"
        "assert isinstance(ctrl.compile, types.ModuleType) and ctrl.compile.pipeline is p\n"
        "assert isinstance(ctrl.emulate, types.ModuleType) and ctrl.emulate.run.emulate is emulate\n"
        "assert ctrl.compile_program is p.compile_program and ctrl.emulate_program is emulate\n"
        "print('ok')"
    )
    assert out == "ok"


def test_bare_import_reaches_the_subpackages():
    # after `import ctrl` alone, ctrl.compile / ctrl.emulate are the packages (imported on first access)
    out = _python("import ctrl, types; print(type(ctrl.compile).__name__, ctrl.compile.__name__, ctrl.emulate.__name__)")
    assert out == "module ctrl.compile ctrl.emulate"


def test_plot_timeline_returns_a_figure_and_leaves_the_backend_alone(tmp_path):
    out = _python(
        # the raw rcParams entry: matplotlib.get_backend() would itself import pyplot to resolve "auto"
        "import matplotlib; raw = lambda: dict.__getitem__(matplotlib.rcParams, 'backend'); before = raw()\n"
        "import ctrl\n"
        "d = ctrl.load_device(ctrl.DEFAULT_DEVICE); c = ctrl.compile_program(d, 3)\n"
        f"fig = ctrl.plot_timeline(c.program, out={str(tmp_path / 't.png')!r})\n"
        "from matplotlib.figure import Figure; import sys\n"
        "print(isinstance(fig, Figure), raw() == before, 'matplotlib.pyplot' in sys.modules)"
    )
    assert out == "True True False"
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
