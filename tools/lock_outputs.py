"""Record what the `ctrl` commands write for every shipped device (tests/golden/outputs.json).

    python tools/lock_outputs.py [--check]

The lock holds a digest per output file (tests/outputs_lock.py says which commands and what is taken out
before hashing). Refactorings must leave it as it is (tests/test_outputs_lock.py). Rewrite it only after a
change meant to alter outputs, with the differing files reviewed: this prints them. With --check nothing
is written. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from outputs_lock import LOCK, digests  # noqa: E402

from ctrl.files import write_atomic  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 if the lock differs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        new = digests(Path(tmp))
    old = json.loads(LOCK.read_text()) if LOCK.exists() else {}
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    for k in changed:
        print(f"{'changed' if k in old and k in new else 'added' if k in new else 'removed'}: {k}")
    if changed and not args.check:
        write_atomic(LOCK, json.dumps(new, indent=1, sort_keys=True) + "\n")
        print(f"wrote {LOCK}")
    print(json.dumps({"files": len(new), "changed": len(changed), "written": bool(changed and not args.check)}))
    return 1 if changed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
