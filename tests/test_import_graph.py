"""The stages import only earlier stages, and nothing private crosses a package boundary.

Every import counts, also those inside functions (ctrl defers many imports for start-up time, and a
deferred import of a later stage is still a dependency on it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import ctrl

ROOT = Path(ctrl.__file__).parent

# Stage of each package (or top-level module); a module may import its own stage or an earlier one.
STAGES = {
    "codes": 0, "noise": 0, "device": 0,
    "protocol": 1,
    "sim": 2, "realtime": 2, "collect": 2,
    "compile": 3,
    "backends": 4,
    "outputs": 5,
    "emulate": 6,
    "recompile": 7, "lab": 7,
    "cli": 8,
}  # fmt: skip
UTILITIES = {"errors", "files", "jsontext", "versions", "__init__"}  # usable by every stage


def _modules(root: Path = ROOT):
    for path in sorted(root.rglob("*.py")):
        yield ".".join(path.relative_to(root.parent).with_suffix("").parts), path


def _package(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def _imports(module: str, path: Path):
    """(imported module, imported names) of every ctrl import in the file, relative ones resolved."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "ctrl":
                    yield a.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + is_package]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "ctrl":
                yield target, tuple(a.name for a in node.names)


def _edges(root: Path = ROOT):
    for module, path in _modules(root):
        for target, names in _imports(module, path):
            yield module, target, names


def later_stage_imports(edges) -> list[str]:
    bad = []
    for module, target, _ in edges:
        src, dst = _package(module), _package(target)
        if target == "ctrl" or dst in UTILITIES:
            continue
        if src in UTILITIES:
            bad.append(f"{module} -> {target} (a utility imports a stage)")
        elif STAGES[dst] > STAGES[src]:
            bad.append(f"{module} ({src}, stage {STAGES[src]}) -> {target} ({dst}, stage {STAGES[dst]})")
    return bad


def private_imports(edges) -> list[str]:
    bad = []
    for module, target, names in edges:
        if _package(module) == _package(target):
            continue
        private = [p for p in target.split(".") if p.startswith("_") and p != "__init__"]
        private += [n for n in names if n.startswith("_")]
        if private:
            bad.append(f"{module} imports {', '.join(private)} from {target}")
    return bad


def test_the_scan_sees_the_imports_it_must_judge():
    """A scanner that found nothing would pass everything: it must see known imports, deferred ones too."""
    edges = {(m, t) for m, t, _ in _edges()}
    assert ("ctrl.compile.timed", "ctrl.realtime.decision") in edges
    assert ("ctrl.emulate.run", "ctrl.backends.qick.plan") in edges  # inside slot_timing
    assert ("ctrl.outputs.folder", "ctrl.backends.stim") in edges  # the output layer, above the backends
    packages = {_package(m) for m, _ in _modules()}
    assert packages - UTILITIES == set(STAGES), "a package without a stage"


def test_no_stage_imports_a_later_stage():
    assert later_stage_imports(_edges()) == []


def test_realtime_depends_on_nothing_after_the_protocol():
    """The one module that decides, in software and on the FPGA, knows no compiler or backend."""
    targets = {_package(t) for m, t, _ in _edges() if _package(m) == "realtime"}
    assert targets <= {"realtime", "protocol", "codes", "errors"}, targets


def test_no_private_name_crosses_a_package():
    assert private_imports(_edges()) == []


def test_the_rules_fail_on_planted_violations(tmp_path):
    """A deferred import of a later stage, a private name and a relative import into a private module,
    planted in a copy-shaped tree: every one is found."""
    fake = tmp_path / "ctrl"
    (fake / "realtime").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "realtime" / "__init__.py").write_text("")
    (fake / "realtime" / "bad.py").write_text(
        "def f():\n    from ctrl.compile.timed import TimedProgram\n    from ..sim.sample import _seed\n"
        "    from ..lab import _private\n"
    )
    edges = list(_edges(fake))
    assert ("ctrl.realtime.bad", "ctrl.sim.sample", ("_seed",)) in edges
    assert later_stage_imports(edges) == [
        "ctrl.realtime.bad (realtime, stage 2) -> ctrl.compile.timed (compile, stage 3)",
        "ctrl.realtime.bad (realtime, stage 2) -> ctrl.lab (lab, stage 7)",
    ]
    assert private_imports(edges) == [
        "ctrl.realtime.bad imports _seed from ctrl.sim.sample",
        "ctrl.realtime.bad imports _private from ctrl.lab",
    ]


def package_cycles(edges) -> list[str]:
    """Pairs of packages of one stage that import each other (the stage rule allows it; a reader cannot
    tell which one comes first)."""
    pairs = {(_package(m), _package(t)) for m, t, _ in edges if t != "ctrl"}
    return sorted(f"{a} <-> {b}" for a, b in pairs if a < b and (b, a) in pairs and UTILITIES.isdisjoint((a, b)))


def test_no_two_packages_import_each_other():
    assert package_cycles([("ctrl.sim.report", "ctrl.collect.run", ()), ("ctrl.collect.task", "ctrl.sim.lower", ())]) \
        == ["collect <-> sim"]  # the check sees a cycle where there is one
    assert package_cycles(_edges()) == []
