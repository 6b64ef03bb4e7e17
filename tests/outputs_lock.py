"""What the `ctrl` commands write for every shipped device, as digests: the lock a refactoring must keep.

`digests(work)` runs the commands a lab runs (compile at d=3 on every shipped device and at d=5 on
grid55_d5, emulate, dry-run, recompile after a pulse-only, a timing and a quality change, import) into
`work` and returns {file: sha256} over their outputs. What may differ between machines is taken out
first: the `versions` records (library versions), the work folder's path, and the timeline PNG (its
bytes follow matplotlib's version). tests/golden/outputs.json holds the digests; only
`python tools/lock_outputs.py` writes it, after a change whose output differences were reviewed.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from ctrl.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "device_configs"
LOCK = Path(__file__).resolve().parent / "golden" / "outputs.json"
SHOTS = "3000"


def _edited(text: str, pattern: str, replace) -> str:
    new, n = re.subn(pattern, replace, text, count=1, flags=re.M)
    assert n == 1, pattern
    return new


def _changes(text: str) -> dict[str, str]:
    """Three recalibrations of the default device: pulse-only, a duration, an error."""
    return {
        "pulse": _edited(text, r"(cr_phase_rad: )(-?[0-9.]+)", lambda m: f"{m[1]}{float(m[2]) + 0.01:.4f}"),
        "timing": _edited(text, r"(^      duration_s: )([0-9.e+-]+)", lambda m: f"{m[1]}{float(m[2]) * 1.1:.4e}"),
        "quality": _edited(text, r"(^      t1_s: )([0-9.e+-]+)", lambda m: f"{m[1]}{float(m[2]) * 0.5:.4e}"),
    }


def _run(*args: str) -> None:
    code = main(list(args))
    assert code == 0, f"ctrl {' '.join(args)} exited {code}"


def _normal(data: bytes, work: Path) -> bytes:
    text = data.decode("utf-8").replace(str(work), "<work>")
    try:
        doc = json.loads(text)
    except ValueError:
        return text.encode()

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != "versions"}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    return json.dumps(strip(doc), sort_keys=True).encode()


def digests(work: Path) -> dict[str, str]:
    cache = str(work / "cache")
    devices = sorted(p.name for p in CONFIGS.glob("*.yaml"))
    for name in devices:
        stem = name.removesuffix(".yaml")
        _run("compile", "--device", str(CONFIGS / name), "-d", "3", "--out", str(work / f"compile_{stem}_d3"), "--cache", cache)
        _run("dry-run", "--device", str(CONFIGS / name), "--shots", SHOTS, "--out", str(work / f"dry_{stem}"), "--cache", cache)
    _run("compile", "--device", str(CONFIGS / "grid55_d5.yaml"), "-d", "5", "--out", str(work / "compile_grid55_d5_d5"),
         "--cache", cache)  # fmt: skip
    (work / "firmware").symlink_to(CONFIGS / "firmware")
    base = (CONFIGS / "planar16_d3.yaml").read_text()
    for kind, text in _changes(base).items():
        new = work / f"planar16_{kind}.yaml"
        new.write_text(text)
        _run("recompile", "--from", str(work / "compile_planar16_d3_d3"), "--device", str(new),
             "--out", str(work / f"recompile_{kind}"), "--cache", cache, "--emulate-shots", SHOTS)  # fmt: skip
    _run("import", "ibm", str(Path(__file__).resolve().parent / "device" / "ibm" / "props_small.json"),
         "--out", str(work / "imported" / "small.yaml"))  # fmt: skip
    out = {}
    for path in sorted(work.rglob("*")):
        rel = path.relative_to(work)
        if rel.parts[0] in ("cache", "firmware") or path.is_dir() or path.suffix == ".png" or path.parent == work:
            continue
        out[str(rel)] = hashlib.sha256(_normal(path.read_bytes(), work)).hexdigest()
    return out
