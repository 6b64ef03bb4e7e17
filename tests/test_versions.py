from importlib import metadata

from ctrl.versions import versions


def test_versions_are_the_installed_distributions():
    got = versions("qick", "pydantic", "no-such-package-xyz")
    assert list(got)[:4] == ["python", "ctrl", "stim", "numpy"]
    for pkg in ("ctrl", "stim", "numpy", "qick", "pydantic"):
        assert got[pkg] == metadata.version(pkg)
    assert got["no-such-package-xyz"] == "unknown"
