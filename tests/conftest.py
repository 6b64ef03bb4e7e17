import pytest


@pytest.fixture(autouse=True)
def _private_compile_cache(tmp_path_factory, monkeypatch):
    """`ctrl compile` and `ctrl dry-run` keep their results in the compile cache: each test gets its own,
    never the user's ~/.cache/ctrl."""
    monkeypatch.setenv("CTRL_CACHE_DIR", str(tmp_path_factory.mktemp("ctrl-cache")))
