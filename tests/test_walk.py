"""The walks of publish and evaluate_target pass each file at most twice (issue 17; ``tools/walk.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_walk", Path(__file__).resolve().parents[1] / "tools" / "walk.py")
walk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(walk)


def test_publish_and_evaluate_visit_each_file_at_most_twice(capsys):
    results = walk.walks()
    assert [title for title, _, _ in results] == [
        "publish(run, to=DIR)", "evaluate_target(run)", "evaluate_target(folder, --record)"]
    for title, places, runs in results:
        assert places, f"{title}: the tracer saw no step of the walk"
        over = {f: n for f, n in runs.items() if n > 2}
        assert not over, f"{title} returns to these files more than once: {over} (python tools/walk.py -v)"
