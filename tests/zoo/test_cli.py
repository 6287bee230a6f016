"""The zoo's subcommands: export, generate, interpolate, leaderboard (text and HTML)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from progan_zoo import load
from progan_zoo.zoo import records as F
from progan_zoo.zoo import registry as R
from progan_zoo.zoo.images import latent_walk, slerp
from progan_zoo.zoo.leaderboard import format_tables, gather

import zoocli
from conftest import with_results


def test_export_cli(tmp_path, tiny_run, capsys):
    out = tmp_path / "m"
    assert zoocli.main(["export", str(tiny_run), str(out), "--resolution", "8", "--samples", "16"]) == 0
    assert "8x8 (stage 1)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(F.FILES)
    assert zoocli.main(["export", str(tiny_run), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert zoocli.main(["export", str(tmp_path), str(tmp_path / "x")]) == 2
    assert "neither a run directory" in capsys.readouterr().err


def test_generate(tmp_path, tiny_model):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert zoocli.main(["generate", str(tiny_model), "--n", "12", "--seed", "7", "--cols", "4", "--out", str(a),
                        "--device", "cpu", "--separate", str(tmp_path / "each")]) == 0
    assert zoocli.main(["generate", str(tiny_model), "--n", "12", "--seed", "7", "--cols", "4", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    with Image.open(a) as im:
        assert im.size == (4 * 16, 3 * 16) and im.mode == "RGB"
        grid = torch.from_numpy(np.array(im)).permute(2, 0, 1)
    first = load(tiny_model).sample(12, seed=7)[0]
    assert torch.equal(grid[:, :16, :16], first)
    assert len(list((tmp_path / "each").glob("*.png"))) == 12


def test_interpolate(tmp_path, tiny_model):
    out = tmp_path / "walk.gif"
    assert zoocli.main(["interpolate", str(tiny_model), "--out", str(out), "--seeds", "1,2,3", "--steps", "5"]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 15 and im.size == (256, 256)
    assert zoocli.main(["interpolate", str(tiny_model), "--out", str(out), "--seeds", "1"]) == 2


def test_slerp_walk_passes_through_the_seeds():
    keys = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    walk = latent_walk(keys, 4)
    assert torch.allclose(walk[0], keys[0]) and torch.allclose(walk[4], keys[1]) and torch.allclose(walk[8], keys[2])
    mid = slerp(keys[:1], keys[1:2], 0.5)
    # On the sphere: the norm stays between the two end norms (lerp would shrink it).
    lo, hi = sorted([keys[0].norm().item(), keys[1].norm().item()])
    assert lo - 1e-4 <= mid.norm().item() <= hi + 1e-4


def test_leaderboard(tmp_path, tiny_model, isolated, capsys):
    reg = isolated / "registry.json"
    for name, swd, fid, num in (("a", 30.0, 9.0, 1000), ("b", 10.0, 20.0, 1000), ("c", 20.0, 5.0, 50)):
        R.add_entry(reg, name, {"folder": str(with_results(tiny_model, tmp_path / name, swd, fid, num))})
    rows, notes = gather(include_hub=False)
    rows = [r for r in rows if r.dataset == "lfw-100"]  # shipped models have their own tables
    assert {r.model for r in rows} == {"a", "b", "c"}
    assert any("celebahq-1024" in n for n in notes)
    text = format_tables(rows, "swd_avg")
    body = [line.split()[1] for line in text.splitlines() if line[:1].isdigit()]
    assert body == ["b", "c", "a"]
    assert "c fid was evaluated differently: num_images=50 (reference 1000)" in text
    # The spec column: each row's resolved spec sha256 (the model's identity), as its card states it.
    identity = F.read_metadata(tiny_model).spec["resolved_sha256"]
    assert {r.spec for r in rows} == {identity} and f" {identity[:12]} " in text
    (mnist,) = [r for r in gather(include_hub=False)[0] if r.model == "mnist-32"]
    assert mnist.spec == F.read_metadata(R.SHIPPED.parent / "models" / "mnist-32").spec["resolved_sha256"]
    text = format_tables(rows, "fid")
    assert [line.split()[1] for line in text.splitlines() if line[:1].isdigit()] == ["c", "a", "b"]
    html = tmp_path / "html"
    assert zoocli.main(["leaderboard", "--metric", "fid", "--html", str(html), "--no-hub"]) == 0
    out = capsys.readouterr().out
    assert "LFW (first 100 faces) 16x16 - sorted by fid" in out
    page = (html / "index.html").read_text()
    assert "samples/b.png" in page and (html / "samples" / "b.png").is_file()
    assert "class='mark'" in page
    assert zoocli.main(["leaderboard", "--metric", "nope", "--no-hub"]) == 2
