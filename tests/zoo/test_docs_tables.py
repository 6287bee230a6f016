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
