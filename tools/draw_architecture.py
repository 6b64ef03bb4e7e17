"""Draw the parts of docs/architecture.md that the code defines: the pass table and the package layers.

    python tools/draw_architecture.py [--check]

The pass table comes from the compiler's declarations (`ctrl.compile.pipeline.PIPELINE`); the layers from
the import statements of every module under ctrl/ (which packages each package imports). Both go between
the `<!-- drawn: ... -->` markers of docs/architecture.md; tests/test_architecture_doc.py fails when the
document differs from what this draws. With --check nothing is written. The last line is JSON.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ctrl.compile.pipeline import PIPELINE  # noqa: E402

DOC = ROOT / "docs" / "architecture.md"
# the stages are the ones tests/test_import_graph.py holds the code to (a package may import only from its
# own stage or an earlier one): drawn from there, not written twice
sys.path.insert(0, str(ROOT / "tests"))
from test_import_graph import STAGES, UTILITIES  # noqa: E402

LAYERS = tuple(tuple(p for p, s in STAGES.items() if s == n) for n in sorted(set(STAGES.values())))


def pass_table() -> str:
    rows = ["| pass | kind | requires | provides |", "|---|---|---|---|"]
    for x in PIPELINE.passes:
        when = " (when `dd` is set)" if x.name == "dd" else ""
        rows.append(f"| `{x.name}`{when} | {x.kind} | {', '.join(f'`{r}`' for r in x.requires)} | "
                    f"{', '.join(f'`{p}`' for p in x.provides)} |")  # fmt: skip
    return "\n".join(rows)


def package_imports() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / "ctrl").rglob("*.py")):
        rel = path.relative_to(ROOT / "ctrl").parts
        pkg = rel[0].removesuffix(".py")
        if pkg in ("__init__",):
            continue
        found = out.setdefault(pkg, set())
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for n in names:
                parts = n.split(".")
                if parts[0] == "ctrl" and len(parts) > 1 and parts[1] != pkg:
                    found.add(parts[1])
    return out


def layer_table() -> str:
    imports = package_imports()
    rows = ["| stage | package | imports (ctrl packages, utilities aside) |", "|---|---|---|"]
    for i, layer in enumerate(LAYERS):
        for pkg in layer:
            used = sorted(imports.get(pkg, set()) - set(UTILITIES))
            rows.append(f"| {i} | `{pkg}` | {', '.join(f'`{u}`' for u in used) or '-'} |")
    return "\n".join(rows)


def drawn() -> dict[str, str]:
    return {"passes": pass_table(), "layers": layer_table()}


def render(doc: str) -> str:
    for name, text in drawn().items():
        start, end = f"<!-- drawn: {name} -->", f"<!-- end drawn: {name} -->"
        i, j = doc.index(start) + len(start), doc.index(end)
        doc = doc[:i] + "\n" + text + "\n" + doc[j:]
    return doc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/architecture.md is not what this draws")
    args = ap.parse_args()
    old = DOC.read_text()
    new = render(old)
    changed = new != old
    if changed and not args.check:
        DOC.write_text(new)
    print(json.dumps({"changed": changed, "written": changed and not args.check}))
    return 1 if changed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
