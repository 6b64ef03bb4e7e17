"""Every output of the `ctrl` commands on every shipped device is what tests/golden/outputs.json recorded.

The lock was taken before the architecture redesign (issue 19) so that the redesign is shown to change
no output byte; a change meant to alter outputs rewrites it with tools/lock_outputs.py, which lists the
files that differ for review."""

import json

from outputs_lock import LOCK, digests


def test_outputs_are_the_locked_ones(tmp_path):
    want = json.loads(LOCK.read_text())
    got = digests(tmp_path)
    differ = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not differ, f"outputs differ from the lock (review, then python tools/lock_outputs.py): {differ}"
    assert len(got) >= 40
