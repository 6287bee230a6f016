"""The shipped-models table in docs/zoo.md is generated from the shipped metadata and kept current."""

from __future__ import annotations

import json

from progan_zoo.zoo import docs_tables as T


def test_docs_table_is_current() -> None:
    assert T.check_docs(), "the shipped-models table in docs/zoo.md is stale: run `python -m progan_zoo.zoo.docs_tables --docs`"


def test_table_carries_the_card_numbers() -> None:
    """Every shipped model appears once, with the SWD average its metadata records (2 decimals)."""
    text = T.table()
    for folder in sorted(T.SHIPPED_DIR.iterdir()):
        meta = json.loads((folder / "metadata.json").read_text())
        assert text.count(f"| `{meta['name']}` |") == 1
        swd = next(r["values"] for r in meta["evaluation"] if r["metric"] == "swd")
        assert f"SWD x1e3: {swd['swd_avg']:.2f} avg" in text


def test_a_changed_score_makes_the_docs_stale(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "mnist-32"
    folder.mkdir()
    meta = json.loads((T.SHIPPED_DIR / "mnist-32" / "metadata.json").read_text())
    for rec in meta["evaluation"]:
        if rec["metric"] == "swd":
            rec["values"]["swd_avg"] += 0.07
    (folder / "metadata.json").write_text(json.dumps(meta))
    monkeypatch.setattr(T, "SHIPPED_DIR", tmp_path)
    assert not T.check_docs()


def test_counts_follow_each_metric_when_they_differ():
    def ev(metric, values, n):
        return {"metric": metric, "values": values, "settings": {"num_fake": n, "num_real": n, "levels": [32]}}

    same = {"evaluation": [ev("swd", {"swd_avg": 1.0, "swd_32": 1.0}, 5000), ev("fid", {"fid": 2.0}, 5000)]}
    assert T.scores_cell(same) == "SWD x1e3: 1.00 avg (32px 1.00); FID 2.00 (5,000 generated vs 5,000 real)"
    mixed = {"evaluation": [ev("swd", {"swd_avg": 1.0, "swd_32": 1.0}, 5000), ev("fid", {"fid": 2.0}, 1000)]}
    assert T.scores_cell(mixed) == "SWD x1e3: 1.00 avg (32px 1.00) (5,000 vs 5,000); FID 2.00 (1,000 vs 1,000)"
