"""``progan-zoo evaluate``: runs log to metrics.jsonl, saved models record scores on their card."""

from __future__ import annotations

import json

import pytest

from progan_zoo.zoo import records as F
from progan_zoo.zoo import registry as R
from progan_zoo.zoo.card import parse_card
from progan_zoo.zoo.evaluate import to_entries
from progan_zoo.zoo.leaderboard import format_tables, gather

import zoocli
from conftest import make_run

pytest.importorskip("progan_zoo.metrics.evaluate")


def test_run_appends_to_metrics_log(tmp_path, capsys):
    run = make_run(tmp_path / "run", nimg=3000)
    out = tmp_path / "r.json"
    assert zoocli.main(["evaluate", str(run), "--metrics", "swd", "--num", "48", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "swd_avg" in text and "swd_16" in text
    res = json.loads(out.read_text())
    assert res["swd"]["swd_avg"] > 0 and res["settings"]["num"] == 48
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["metric"] == "swd"
    assert lines[0]["snapshot"] == "ckpt-000003000" and lines[0]["kimg"] == 3.0
    assert lines[0]["results"]["swd_avg"] == pytest.approx(res["swd"]["swd_avg"])
    # The same seed gives the same number (SWD's patches and directions are seeded).
    assert zoocli.main(["evaluate", str(run), "--metrics", "swd", "--num", "48", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["swd"]["swd_avg"] == pytest.approx(res["swd"]["swd_avg"], abs=1e-9)


def test_record_puts_scores_on_the_card(model_copy, tmp_path, isolated, capsys):
    rc = zoocli.main(["evaluate", str(model_copy), "--metrics", "swd", "--num", "64", "--record",
                      "--out", str(tmp_path / "r.json")])
    assert rc == 0, capsys.readouterr().err
    meta = F.read_metadata(model_copy)
    (ev,) = meta.evaluation
    assert ev["metric"] == "swd" and list(ev["values"])[0] == "swd_avg"
    assert ev["settings"]["num_images"] == 64 and ev["settings"]["real"] == "lfw-100"
    front, body = parse_card((model_copy / F.CARD).read_text())
    metrics = front["model-index"][0]["results"][0]["metrics"]
    assert {m["type"] for m in metrics} == {"swd_avg", "swd_16"}
    assert metrics[0]["value"] == pytest.approx(ev["values"]["swd_avg"], rel=1e-5)
    assert "| SWD average (x1e3) |" in body
    # The weights did not change, so the model still verifies and loads.
    from progan_zoo import load

    load(model_copy)
    # The leaderboard finds the row through the registry.
    R.add_entry(isolated / "registry.json", "scored", {"folder": str(model_copy)})
    rows, _ = gather(include_hub=False)
    (row,) = [r for r in rows if r.model == "scored"]
    assert row.values["swd_avg"] == pytest.approx(ev["values"]["swd_avg"], rel=1e-5)
    assert "scored" in format_tables(rows, "swd_avg")


def test_record_needs_a_local_folder(tiny_run, capsys):
    assert zoocli.main(["evaluate", str(tiny_run), "--metrics", "swd", "--num", "8", "--record"]) == 2
    assert "--record" in capsys.readouterr().err


def test_more_images_than_the_data_cycles_the_reals(tiny_model, tmp_path, capsys):
    # The official evaluation reads a repeating dataset: 150 reals of a 100-image set reuse 50 of them.
    out = tmp_path / "r.json"
    assert zoocli.main(["evaluate", str(tiny_model), "--metrics", "swd", "--num", "150", "--out", str(out)]) == 0
    assert "(100 images, cycled" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["swd"]["swd_avg"] > 0 and res["settings"]["real_images"] == 100
    assert res["settings"]["per_metric"]["swd"]["num_real"] == 150


def test_to_entries_names_kid_as_cards_do():
    results = {"fid": {"fid": 12.5}, "kid": {"kid_mean": 0.01, "kid_std": 0.002}, "is": {"unavailable": "no head"},
               "settings": {"per_metric": {"fid": {"weights_sha256": "ab", "weights_path": "/home/x/w.pth"}}},
               "time": {"fid": 3.0}}
    entries = {e["metric"]: e for e in to_entries(results, "/data/faces", 100, 0, 500)}
    assert set(entries) == {"fid", "kid"}
    assert entries["kid"]["values"] == {"kid": 0.01, "kid_std": 0.002}
    s = entries["fid"]["settings"]
    assert s["real"] == "faces" and s["weights_sha256"] == "ab" and "weights_path" not in s and s["real_total"] == 500


@pytest.mark.slow
def test_fid_kid_recorded(model_copy, tmp_path, capsys):
    """FID/KID through torch-fidelity with the offline weights (minutes on CPU)."""
    rc = zoocli.main(["evaluate", str(model_copy), "--metrics", "fid,kid", "--num", "64", "--record",
                      "--out", str(tmp_path / "r.json")])
    assert rc == 0, capsys.readouterr().err
    front, _ = parse_card((model_copy / F.CARD).read_text())
    types = {m["type"]: m for m in front["model-index"][0]["results"][0]["metrics"]}
    assert {"fid", "kid", "kid_std"} <= set(types)
    assert types["fid"]["value"] > 0 and types["fid"]["args"]["feature_extractor"] == "inception-v3-compat"
