"""benchmarks/table1_study.py on a tiny setting: it trains, scores with the project's metrics, writes
its table, JSON and plot, and resumes without training a finished run again."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _study():
    spec = importlib.util.spec_from_file_location("table1_study", REPO / "benchmarks" / "table1_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_study_writes_table_json_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    study = _study()
    args = ["--rows", "e_minibatch_stddev", "--seeds", "0", "--schedule-scale", "0.005",
            "--num", "32", "--pairs", "16", "--out", str(tmp_path / "out"), "--docs", str(tmp_path / "docs" / "t1")]
    assert study.main(args) == 0
    results = json.loads((tmp_path / "docs" / "t1.json").read_text())["results"]
    assert [(r["label"], r["seed"]) for r in results] == [("(e)", 0)]
    assert all(set(r["swd"]) == {"swd_32", "swd_16", "swd_avg"} and 0 < r["msssim"] < 1 for r in results)
    table = (tmp_path / "docs" / "t1.md").read_text()
    assert "| (e) |" in table and "(e) < (d) (minibatch stddev helps): not measured" in table
    assert (tmp_path / "docs" / "t1.png").stat().st_size > 1000
    assert (tmp_path / "docs" / "t1_samples.png").stat().st_size > 1000   # each row's last sample grid
    # The runs are done: a second call trains nothing and scores nothing (its wall time is only the summary).
    before = (tmp_path / "out" / "results.jsonl").read_text()
    assert study.main(args) == 0
    assert (tmp_path / "out" / "results.jsonl").read_text() == before
    # The scaled spec extends the twin and keeps its growth.
    assert "extends:" in (tmp_path / "out" / "specs" / "e_minibatch_stddev-x0.005.yaml").read_text()


def test_unknown_row_is_refused(capsys) -> None:
    assert _study().main(["--rows", "z_nothing"]) == 2
    assert "unknown row(s) ['z_nothing']" in capsys.readouterr().err


def test_orderings_say_whether_the_seeds_separate() -> None:
    study = _study()

    def row(label: str, values: list[float]) -> dict:
        return {"label": label, "values": {"swd_avg": values}}

    lines = study.orderings([row("(a)", [10.0, 12.0]), row("(b)", [5.0, 6.0]), row("(c)", [4.0, 11.0])])
    assert lines[0] == "- (b) < (a) (progressive growing improves on the baseline): held, seeds separated (5.50 vs 11.00)"
    assert lines[1] == ("- (c) > (b) (a small minibatch alone hurts): held in the means only (the seeds' ranges "
                        "overlap) (7.50 vs 5.50)")
    assert lines[2] == ("- (d) < (c) (revised training parameters recover): not measured")
    lines = study.orderings([row("(a)", [1.0, 2.0]), row("(b)", [3.0, 4.0])])
    assert lines[0].startswith("- (b) < (a) (progressive growing improves on the baseline): reversed, seeds separated")
