"""Mutation testing: plant small bugs in a module and see whether its tests notice.

    python tools/mutate.py [--module ctrl/noise/calibration.py ...] [--per-module 12] [--seed 0] [--jobs 1]

Each mutant changes one AST node of one module (a comparison flipped or loosened, an arithmetic operator
swapped, an integer constant moved by one, `and`/`or` swapped, a `not` dropped, a returned value
replaced) and runs that module's tests (`TESTS`) against a copy of the package holding only that change,
stopping at the first failure. A mutant is killed when a test fails or the run exceeds three times the
clean run's time; it survives when every test passes. Mutants are drawn at random (seeded) from every
mutable node of the module, so the score estimates the share of such bugs the tests catch.

Prints every mutant (file:line, the change, killed or survived, seconds) and a score per module; the last
line is JSON with every figure. The working tree is never modified: mutants live in a temporary copy.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module -> the tests that are meant to catch its bugs
TESTS = {
    "ctrl/noise/calibration.py": ["tests/test_emulate.py", "tests/test_exact_compiled.py"],
    "ctrl/realtime/decision.py": ["tests/test_realtime.py", "tests/test_emulate.py"],
    "ctrl/compile/schedule.py": ["tests/test_compile.py", "tests/test_dd.py"],
    "ctrl/backends/qick/plan.py": ["tests/test_qick.py"],
    "ctrl/backends/qick/units.py": ["tests/test_qick.py"],
    "ctrl/backends/qick/emit.py": ["tests/test_qick.py"],
    "ctrl/backends/qick/stream.py": ["tests/test_qick.py"],
    "ctrl/backends/qick/assemble.py": ["tests/test_qick.py"],
    "ctrl/backends/qick/patch.py": ["tests/test_qick.py", "tests/test_recompile.py"],
    "ctrl/backends/qick/patch_waves.py": ["tests/test_qick.py", "tests/test_recompile.py"],
    "ctrl/backends/qick/patch_board.py": ["tests/test_qick.py", "tests/test_recompile.py"],
    "ctrl/backends/qick/verify.py": ["tests/test_qick.py"],
    "ctrl/backends/qick/tproc.py": ["tests/test_qick.py"],
    "ctrl/backends/qick/operands.py": ["tests/test_qick.py"],
    "ctrl/lab/results.py": ["tests/test_lab_results.py"],
    "ctrl/lab/journal.py": ["tests/test_lab_results.py"],
    "ctrl/lab/layout.py": ["tests/test_lab_results.py", "tests/test_lab_dataset.py"],
}

_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
        ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}  # fmt: skip
_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
        ast.Mod: ast.FloorDiv, ast.BitXor: ast.BitOr, ast.BitOr: ast.BitXor, ast.BitAnd: ast.BitOr,
        ast.LShift: ast.RShift, ast.RShift: ast.LShift}  # fmt: skip


def sites(tree: ast.AST) -> list[tuple[int, str]]:
    """(node index in ast.walk order, kind) of every node a mutation applies to."""
    out = []
    for i, node in enumerate(ast.walk(tree)):
        if isinstance(node, ast.Compare) and type(node.ops[0]) in _CMP:
            out.append((i, "compare"))
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            out.append((i, "binop"))
        elif isinstance(node, ast.Constant) and type(node.value) is int and not isinstance(node.value, bool):
            out.append((i, "int"))
        elif isinstance(node, ast.BoolOp):
            out.append((i, "boolop"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            out.append((i, "not"))
        elif isinstance(node, ast.Return) and node.value is not None and not isinstance(node.value, ast.Constant):
            out.append((i, "return"))
    return out


def mutate(source: str, index: int, kind: str) -> tuple[str, int, str]:
    """(mutated source, line, description) of the mutation `kind` at node `index`."""
    tree = ast.parse(source)
    node = list(ast.walk(tree))[index]
    before = ast.unparse(node)
    if kind == "compare":
        node.ops[0] = _CMP[type(node.ops[0])]()
    elif kind == "binop":
        node.op = _BIN[type(node.op)]()
    elif kind == "int":
        node.value = node.value + 1 if node.value != 1 else 0
    elif kind == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "not":
        # drop the `not`: replace the node in its parent by its operand
        for parent in ast.walk(tree):
            for field, value in ast.iter_fields(parent):
                if value is node:
                    setattr(parent, field, node.operand)
                elif isinstance(value, list) and any(v is node for v in value):
                    setattr(parent, field, [node.operand if v is node else v for v in value])
    elif kind == "return":
        node.value = ast.Constant(None)
    after = ast.unparse(node) if kind != "not" else ast.unparse(node.operand)
    return ast.unparse(tree), node.lineno, f"{before}  ->  {after}"


def run_tests(pkg_root: Path, tests: list[str], timeout_s: float) -> tuple[bool, float]:
    """(all passed, seconds) for `tests` importing ctrl from `pkg_root`."""
    env = dict(os.environ, PYTHONPATH=str(pkg_root), PYTHONDONTWRITEBYTECODE="1")
    t0 = time.monotonic()
    try:
        # -P: without it `python -m` puts the working folder (the real package) ahead of PYTHONPATH
        r = subprocess.run([sys.executable, "-P", "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=timeout_s)  # fmt: skip
        ok = r.returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    return ok, time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", nargs="+", default=sorted(TESTS), help="modules to mutate (default: every module in TESTS)")
    ap.add_argument("--per-module", type=int, default=12, help="mutants drawn per module (default 12)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    figures: dict = {"tool": "mutate", "seed": args.seed, "modules": {}}
    with tempfile.TemporaryDirectory(prefix="ctrl-mutants-") as tmp:
        pkg = Path(tmp) / "ctrl"
        shutil.copytree(ROOT / "ctrl", pkg, ignore=shutil.ignore_patterns("__pycache__"))
        (Path(tmp) / "device_configs").symlink_to(ROOT / "device_configs")  # found beside the package
        # the tests must import the copy, or every mutant would survive unseen
        where = subprocess.run([sys.executable, "-P", "-c", "import ctrl.errors; print(ctrl.errors.__file__)"],
                               cwd=ROOT, env=dict(os.environ, PYTHONPATH=tmp), capture_output=True, text=True)  # fmt: skip
        if not where.stdout.strip().startswith(tmp):
            raise SystemExit(f"the tests would import ctrl from {where.stdout.strip()}, not the mutated copy")
        for module in args.module:
            tests = TESTS.get(module)
            if tests is None:
                raise SystemExit(f"{module}: no tests listed for it in TESTS")
            source = (ROOT / module).read_text()
            ok, clean_s = run_tests(Path(tmp), tests, timeout_s=3600)
            if not ok:
                raise SystemExit(f"{module}: its tests fail without any mutant ({' '.join(tests)})")
            chosen = rng.sample(sites(ast.parse(source)), min(args.per_module, len(sites(ast.parse(source)))))
            rows = []
            print(f"{module}: {len(sites(ast.parse(source)))} mutable sites, {len(chosen)} drawn; clean run "
                  f"{clean_s:.0f} s ({' '.join(tests)})", flush=True)  # fmt: skip
            for index, kind in sorted(chosen):
                text, line, what = mutate(source, index, kind)
                (pkg / module[len("ctrl/"):]).write_text(text)
                try:
                    ok, secs = run_tests(Path(tmp), tests, timeout_s=3 * clean_s + 30)
                finally:
                    (pkg / module[len("ctrl/"):]).write_text(source)
                verdict = "survived" if ok else "killed"
                rows.append({"line": line, "kind": kind, "change": what, "verdict": verdict, "seconds": round(secs, 1)})
                print(f"  {module}:{line:<5} {kind:<8} {verdict:<8} {secs:5.0f} s  {what}", flush=True)
            killed = sum(r["verdict"] == "killed" for r in rows)
            score = killed / len(rows) if rows else None
            print(f"  score {killed}/{len(rows)}" + (f" = {score:.2f}" if score is not None else ""), flush=True)
            figures["modules"][module] = {"sites": len(sites(ast.parse(source))), "mutants": rows,
                                          "killed": killed, "score": score, "clean_seconds": round(clean_s, 1)}  # fmt: skip
    total = sum(len(m["mutants"]) for m in figures["modules"].values())
    killed = sum(m["killed"] for m in figures["modules"].values())
    figures["score"] = killed / total if total else None
    print(f"overall mutation score {killed}/{total}")
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
