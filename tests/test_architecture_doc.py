"""docs/architecture.md shows the passes and package layers the code has (tools/draw_architecture.py)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from draw_architecture import DOC, PIPELINE, render  # noqa: E402


def test_the_document_is_what_the_code_draws():
    text = DOC.read_text()
    assert render(text) == text, "docs/architecture.md is stale: python tools/draw_architecture.py"
    for x in PIPELINE.passes:
        assert f"| `{x.name}`" in text
