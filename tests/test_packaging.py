"""The wheel is self-contained: built from this tree and installed in a fresh virtual environment outside
the repository, `ctrl dry-run` works from any folder with the shipped default device, and `ctrl --version`
names the wheel's version.

The build runs offline when this environment's setuptools can make wheels (setuptools >= 70.1, or the
`wheel` package); otherwise pip builds in isolation and takes setuptools from its configured index, as
`pip install .` itself does. The fresh environment gets ctrl from the wheel alone (--no-deps); the
dependencies already installed here are made visible through a .pth file, so nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "ctrl", "device_configs")


def _offline_build() -> bool:
    if importlib.util.find_spec("wheel") is not None:
        return True
    try:
        major, minor = (int(x) for x in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (70, 1)


def _run(cmd: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv, wheel, a clean environment for its commands): the wheel built from a copy of the sources
    (a build in the tree would leave build/ behind, and reuse it), installed in a new venv."""
    root = tmp_path_factory.mktemp("packaging")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["CTRL_CACHE_DIR"] = str(root / "cache")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    wheels = root / "wheels"
    isolation = ["--no-build-isolation"] if _offline_build() else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *isolation, "-w", wheels, src], root, env)
    (wheel,) = wheels.glob("ctrl-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], root, env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel], root, env)
    # this environment's dependencies, after the venv's own site-packages (so ctrl comes from the wheel)
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root, env).stdout
    Path(purelib.strip(), "zz_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv, wheel, env


def test_wheel_holds_every_package_and_the_device_data(installed):
    _, wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "ctrl").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules - names == set(), "modules missing from the wheel: add their packages to pyproject.toml"
    data = {p.relative_to(REPO).as_posix() for p in (REPO / "device_configs").rglob("*")
            if p.is_file() and p.suffix in (".yaml", ".json")}  # fmt: skip
    assert {"device_configs/planar16_d3.yaml", "device_configs/device.schema.json"} <= data
    assert any(d.startswith("device_configs/firmware/") for d in data)
    assert {f"ctrl/{d}" for d in data} - names == set()


def test_dry_run_from_the_wheel_outside_the_repository(installed, tmp_path):
    venv, wheel, env = installed
    python, ctrl = venv / "bin" / "python", venv / "bin" / "ctrl"
    where = _run([python, "-c", "import ctrl, ctrl.device as d; print(ctrl.__file__); print(d.DEFAULT_DEVICE)"],
                 tmp_path, env).stdout.split()  # fmt: skip
    assert all(Path(p).resolve().is_relative_to(venv.resolve()) for p in where), where
    assert not any(Path(p).resolve().is_relative_to(REPO) for p in where), where

    version = wheel.name.split("-")[1]
    shown = _run([ctrl, "--version"], tmp_path, env).stdout
    assert shown.startswith(f"ctrl {version} (stim "), shown
    assert "qick " in shown and "numpy " in shown

    out = tmp_path / "out"
    run = _run([ctrl, "dry-run", "--shots", "2000", "--out", out], tmp_path, env)
    summary = (out / "summary.txt").read_text()
    assert "planar16_d3" in summary.splitlines()[0], summary
    assert summary.strip() in run.stdout
    assert (out / "program.json").is_file() and (out / "qick_zcu216.asm").is_file()
