"""Conditional training: the AC-GAN loss against a transcription of the official TF loss, labels drawn
from the data set's label distribution, a conditional run, exact resume and two ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from progan_zoo.compiler import compile_spec
from progan_zoo.compiler.schema import Loss
from progan_zoo.errors import UsageError
from progan_zoo.train import checkpoint as ckpt_io
from progan_zoo.train.acgan import ACGAN, draw_labels
from progan_zoo.train.config import TrainConfig
from progan_zoo.train.losses import WGANGP
from progan_zoo.train.trainer import train

COND = "conditioning:\n  label_size: 10\n  cond_weight: 0.7\n"


@pytest.fixture
def cond_spec(tiny_spec, tmp_path):
    path = tmp_path / "cond.yaml"
    path.write_text(tiny_spec.read_text().replace("name: tiny-mnist-16", "name: tiny-mnist-16-cond") + COND)
    return path


# ---- A line-by-line transcription of the official loss.py (TF) in torch, kept apart from acgan.py:
# per-sample terms with the official shapes ([N, 1] scores, [N] penalties, broadcast together as TF
# does), then train.py's tf.reduce_mean.
def official_D_wgangp_acgan(D, reals, fakes, labels, mixing_factors, wgan_lambda=10.0, wgan_epsilon=0.001,
                            wgan_target=1.0, cond_weight=1.0):
    real_out, fake_out = D(reals), D(fakes)
    real_scores_out, real_labels_out = real_out[:, :1], real_out[:, 1:]
    fake_scores_out, fake_labels_out = fake_out[:, :1], fake_out[:, 1:]
    loss = fake_scores_out - real_scores_out
    mixed_images_out = reals + (fakes - reals) * mixing_factors            # tfutil.lerp
    mixed_images_out.requires_grad_(True)
    mixed_scores_out = D(mixed_images_out)[:, :1]
    mixed_grads = torch.autograd.grad(mixed_scores_out.sum(), mixed_images_out, create_graph=True)[0]
    mixed_norms = torch.sqrt(torch.sum(torch.square(mixed_grads), dim=[1, 2, 3]))
    gradient_penalty = torch.square(mixed_norms - wgan_target)
    loss = loss + gradient_penalty * (wgan_lambda / (wgan_target ** 2))
    epsilon_penalty = torch.square(real_scores_out)
    loss = loss + epsilon_penalty * wgan_epsilon
    label_penalty_reals = -(labels * torch.log_softmax(real_labels_out, dim=1)).sum(dim=1)
    label_penalty_fakes = -(labels * torch.log_softmax(fake_labels_out, dim=1)).sum(dim=1)
    loss = loss + (label_penalty_reals + label_penalty_fakes) * cond_weight
    return torch.mean(loss)


def official_G_wgan_acgan(D, fakes, labels, cond_weight=1.0):
    fake_out = D(fakes)
    loss = -fake_out[:, :1]
    label_penalty_fakes = -(labels * torch.log_softmax(fake_out[:, 1:], dim=1)).sum(dim=1)
    loss = loss + label_penalty_fakes * cond_weight
    return torch.mean(loss)


def test_acgan_loss_equals_the_official_transcription(cond_spec):
    torch.manual_seed(1)
    c = compile_spec(cond_spec)
    D = c.D
    n = 8
    reals = torch.randn(n, 1, 16, 16)
    labels = torch.randint(10, (n,))
    with torch.no_grad():
        fakes = c.G(torch.randn(n, 16), labels=labels)
    mix = torch.rand(n)
    one_hot = F.one_hot(labels, 10).float()
    ours = ACGAN(WGANGP(Loss()), cond_weight=0.7)

    def grads(loss):  # the lower stages' fromRGB do not run at the last stage: no gradient
        return [torch.zeros(()) if g is None else g
                for g in torch.autograd.grad(loss, list(D.parameters()), allow_unused=True, retain_graph=True)]

    d_ours, stats = ours.d_loss(D, reals, fakes, mix, labels=labels)
    d_ref = official_D_wgangp_acgan(D, reals, fakes, one_hot, mix.view(-1, 1, 1, 1), cond_weight=0.7)
    torch.testing.assert_close(d_ours, d_ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads(d_ours), grads(d_ref)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert stats["D/label_real"] > 0 and stats["D/label_fake"] > 0
    # One-hot label vectors give the same loss as class indices.
    torch.testing.assert_close(ours.d_loss(D, reals, fakes, mix, labels=one_hot)[0], d_ours)

    g_ours, _ = ours.g_loss(D, fakes, labels=labels)
    torch.testing.assert_close(g_ours, official_G_wgan_acgan(D, fakes, one_hot, cond_weight=0.7), rtol=1e-5, atol=1e-6)
    # cond_weight 0 is the plain WGAN-GP loss.
    plain, _ = WGANGP(Loss()).d_loss(lambda x: D(x)[:, :1], reals, fakes, mix)
    torch.testing.assert_close(ACGAN(WGANGP(Loss()), 0.0).d_loss(D, reals, fakes, mix, labels=labels)[0], plain)


def test_g_labels_follow_the_data_distribution_and_split_by_rank():
    labels = torch.tensor([0] * 70 + [1] * 20 + [2] * 10)
    drawn = draw_labels(torch.Generator().manual_seed(0), labels, 40000)
    freq = torch.bincount(drawn, minlength=3).float() / len(drawn)
    torch.testing.assert_close(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.01, rtol=0)
    whole = draw_labels(torch.Generator().manual_seed(5), labels, 16)
    parts = [draw_labels(torch.Generator().manual_seed(5), labels, 16, rank, 2) for rank in (0, 1)]
    assert torch.equal(whole[0::2], parts[0]) and torch.equal(whole[1::2], parts[1])


def _final(run_dir):
    ckpt = ckpt_io.latest_checkpoint(run_dir)
    return ckpt, {stem: load_file(str(ckpt / f"{stem}.safetensors")) for stem in ckpt_io.WEIGHT_FILES}


def test_conditional_run_and_exact_resume(cond_spec, tmp_path):
    common = dict(spec=str(cond_spec), progress=False, tick_kimg=0.1, mirror=True, grid=20)
    train(TrainConfig(out=str(tmp_path / "whole"), max_steps=40, **common))
    train(TrainConfig(out=str(tmp_path / "half"), max_steps=20, **common))
    train(TrainConfig(resume=str(tmp_path / "half"), max_steps=20, progress=False, tick_kimg=0.1))
    (ca, a), (cb, b) = _final(tmp_path / "whole"), _final(tmp_path / "half")
    assert ca.name == cb.name
    for stem in a:
        for key in a[stem]:
            assert torch.equal(a[stem][key], b[stem][key]), f"{stem}:{key} differs after resume"
    assert a["G"]["b4.block.dense0.weight"].shape[1] == 16 + 10 and a["D"]["b4.block.out.weight"].shape[0] == 11
    log = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert all(k in log[-1] for k in ("D/label_real", "D/label_fake", "G/label_fake"))
    assert (tmp_path / "whole" / "samples" / "latest.png").exists()


def test_conditional_spec_needs_labelled_data(cond_spec, tmp_path):
    with pytest.raises(UsageError, match="has no class labels"):
        train(TrainConfig(spec=str(cond_spec), out=str(tmp_path / "r"), max_steps=1, progress=False, data="lfw-100"))
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(cond_spec.read_text().replace("label_size: 10", "label_size: 3"))
    with pytest.raises(UsageError, match="has 10 classes"):
        train(TrainConfig(spec=str(wrong), out=str(tmp_path / "w"), max_steps=1, progress=False))


@pytest.mark.slow
def test_two_ranks_match_one_process_conditional(cond_spec, tmp_path):
    steps = 30
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "progan_zoo", "train", str(cond_spec), "--out", str(tmp_path / "ddp"), "--steps", str(steps),
           "--device", "cpu", "--no-progress", "--tick-kimg", "0.1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    train(TrainConfig(spec=str(cond_spec), out=str(tmp_path / "one"), max_steps=steps, device="cpu",
                      progress=False, tick_kimg=0.1))
    (ca, a), (cb, b) = _final(tmp_path / "ddp"), _final(tmp_path / "one")
    assert ca.name == cb.name
    for stem in a:
        for key in a[stem]:
            torch.testing.assert_close(a[stem][key], b[stem][key], rtol=1e-4, atol=1e-4)
