"""Behaviour is unchanged: today's fingerprint (tests/fingerprint.py) equals the recorded one.

The fixture was recorded from the tree before the re-shelving refactor (issue 17); a change that is
meant to change outputs records it again with ``python tests/fingerprint.py --write`` and says why.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path


_spec = importlib.util.spec_from_file_location("_fingerprint", Path(__file__).parent / "fingerprint.py")
fp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fp)


def _diff(want, have, where=""):
    if isinstance(want, dict) and isinstance(have, dict):
        for k in sorted(set(want) | set(have)):
            yield from _diff(want.get(k), have.get(k), f"{where}/{k}")
    elif want != have:
        yield f"{where}: recorded {want!r}, now {have!r}"


def test_fingerprint_unchanged():
    want = json.loads(fp.FIXTURE.read_text(encoding="utf-8"))
    have = json.loads(json.dumps(fp.fingerprint()))
    diffs = list(_diff(want, have))
    assert not diffs, "behaviour changed:\n" + "\n".join(diffs[:40])
