import os

import pytest

_WORKING_DIR = os.getcwd()
_LEFT_BY_TOOLS = {".pytest_cache", ".hypothesis", "__pycache__", ".ruff_cache"}


@pytest.fixture(autouse=True)
def _private_compile_cache(tmp_path_factory, monkeypatch):
    """`ctrl compile` and `ctrl dry-run` keep their results in the compile cache: each test gets its own,
    never the user's ~/.cache/ctrl."""
    monkeypatch.setenv("CTRL_CACHE_DIR", str(tmp_path_factory.mktemp("ctrl-cache")))


@pytest.fixture(autouse=True, scope="session")
def _private_board_key(tmp_path_factory):
    """Emulated boards and `ctrl run` sign their Pyro messages with the key in $CTRL_BOARD_KEY_FILE: the
    tests use their own (session-wide, as module-scoped boards serve many tests), never the user's."""
    import os

    before = os.environ.get("CTRL_BOARD_KEY_FILE")
    os.environ["CTRL_BOARD_KEY_FILE"] = str(tmp_path_factory.mktemp("ctrl-key") / "board.key")
    yield
    if before is None:
        os.environ.pop("CTRL_BOARD_KEY_FILE", None)
    else:
        os.environ["CTRL_BOARD_KEY_FILE"] = before


@pytest.fixture(scope="session")
def default_program(tmp_path_factory):
    """A folder written by `write_outputs` for the default device at d=3 (read only: lab tests run it)."""
    from ctrl.compile.pipeline import compile_program
    from ctrl.device import DEFAULT_DEVICE, load_device
    from ctrl.outputs import write_outputs

    device = load_device(DEFAULT_DEVICE)
    out = tmp_path_factory.mktemp("default-program")
    write_outputs(compile_program(device, 3), out, device)
    return out


@pytest.fixture(autouse=True, scope="session")
def _nothing_written_where_pytest_runs():
    """No test leaves files in the folder pytest runs from (the repository): every output goes under
    tmp_path. A fuzzed argument once made a dry run write its folder "-1/" there, and it got committed."""
    before = set(os.listdir(_WORKING_DIR))
    yield
    new = sorted(set(os.listdir(_WORKING_DIR)) - before - _LEFT_BY_TOOLS)
    assert not new, f"tests wrote into {_WORKING_DIR}: {new}"
