"""Projection: beats the best of many random latents on held-out digits, writes its outputs, uses a folder's D."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import progan_zoo
from progan_zoo.cli import main
from progan_zoo.tools.project import (ProjectionSettings, best_random_baseline, learning_rate, load_discriminator,
                                      noise_scale, project, psnr, ssim_u8)

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def mnist32():
    return progan_zoo.load("mnist-32", device="cpu")


@pytest.fixture(scope="module")
def heldout():
    from progan_zoo.data.builtin import load_builtin

    return torch.from_numpy(load_builtin("uci-digits")[[0, 11, 22, 33]].copy())   # digits 0..3, other writers


def test_schedules_follow_the_sg2_ada_shape():
    s = ProjectionSettings(steps=100)
    assert learning_rate(0.0, s) == 0 and learning_rate(0.5, s) == pytest.approx(s.lr)
    assert learning_rate(0.9, s) < s.lr and learning_rate(1.0, s) == pytest.approx(0, abs=1e-12)
    assert noise_scale(0.0, s) == pytest.approx(s.noise) and noise_scale(0.75, s) == 0


def test_projection_beats_best_of_random_latents(mnist32, heldout):
    result = project(mnist32, heldout, ProjectionSettings(steps=40, starts=4), progress=False)
    baseline = best_random_baseline(mnist32, heldout, n=256)
    assert result.latents.shape == (4, mnist32.z_dim)
    assert torch.allclose(result.latents.norm(dim=1), torch.full((4,), mnist32.z_dim ** 0.5), rtol=1e-4)
    got, base = psnr(result.images, heldout), psnr(baseline, heldout)
    assert (got > base).all(), (got, base)
    assert float(got.mean()) > float(base.mean()) + 2                       # dB
    assert float(ssim_u8(result.images, heldout).mean()) > float(ssim_u8(baseline, heldout).mean())
    assert result.history[-1] < result.history[0]


def test_truncated_projection_stays_inside_psi(mnist32, heldout):
    result = project(mnist32, heldout[:2], ProjectionSettings(steps=5, starts=2, truncation=0.5), progress=False)
    assert result.latents.abs().max() <= 0.5


def test_cli_writes_latents_reconstructions_grid(mnist32, heldout, tmp_path, capsys):
    from safetensors import safe_open

    src = tmp_path / "digits"
    src.mkdir()
    for i in range(2):
        Image.fromarray(heldout[i, 0].numpy()).save(src / f"d{i}.png")
    out = tmp_path / "proj"
    assert main(["project", "mnist-32", str(src), "--out", str(out), "--steps", "10", "--starts", "2",
                 "--video", "opt.gif", "--snapshot-every", "5"]) == 0
    assert "no D in the model folder" in capsys.readouterr().out
    with safe_open(str(out / "latents.safetensors"), "pt") as f:
        z, meta = f.get_tensor("z"), f.metadata()
    assert json.loads(meta["names"]) == ["d0", "d1"] and z.shape == (2, mnist32.z_dim)
    recon = np.asarray(Image.open(out / "reconstructions" / "d1.png"))
    assert np.array_equal(recon, mnist32.generate(z)[1, 0].numpy())          # the latents reproduce the images
    with Image.open(out / "grid.png") as g:
        assert g.size == (2 * 32 + 3, 2 * 32 + 3)                           # target | reconstruction, 1 px lines
    with Image.open(out / "opt.gif") as v:
        assert v.n_frames == 3                                              # steps 0, 5 and the result
    scores = json.loads((out / "scores.json").read_text())
    assert [s["name"] for s in scores["images"]] == ["d0", "d1"] and scores["mean_psnr"] > 10


def test_discriminator_features_join_the_loss(tiny_model_with_d, tmp_path, capsys):
    from progan_zoo.tools.project import make_loss, to_model_range

    G = progan_zoo.load(str(tiny_model_with_d), device="cpu")
    D = load_discriminator(tiny_model_with_d, G)
    assert D is not None
    target = to_model_range(G.sample(2, seed=5))
    s = ProjectionSettings(w_structure=0.0)
    plain, with_d = make_loss(target, s), make_loss(target, s, D=D)
    other = to_model_range(G.sample(2, seed=6))
    assert (with_d(other) > plain(other) + 1e-3).all()                    # the feature term is there ...
    assert torch.allclose(with_d(target), torch.zeros(2), atol=1e-6)    # ... and zero at the target
    Image.fromarray(G.sample(1, seed=5)[0, 0].numpy()).save(tmp_path / "x.png")
    assert main(["project", str(tiny_model_with_d), str(tmp_path / "x.png"), "--out", str(tmp_path / "o"),
                 "--steps", "2", "--starts", "1"]) == 0
    assert "with D's features" in capsys.readouterr().out
    assert main(["project", str(tiny_model_with_d), str(tmp_path / "none.png"), "--out", str(tmp_path / "o")]) == 2
