"""The trainer against direct transcriptions of the official code (issue: train exactly like it).

Each test names the official function it mirrors: tkarras/progressive_growing_of_gans (TF, master)
``train.py`` (``TrainingSchedule``, ``train_progressive_gan``), ``loss.py`` (``D_wgangp_acgan``),
``networks.py`` (``D_paper``), and the paper-era Theano ``train.py`` / ``misc.py`` (``rampup``).
The transcriptions below are written from the official formulas, on small tensors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from progan_zoo.compiler import compile_spec, load_spec
from progan_zoo.train import trainer as trainer_mod
from progan_zoo.train.config import TrainConfig
from progan_zoo.train.dist import DistInfo
from progan_zoo.train.losses import WGANGP, gradient_penalty, make_loss
from progan_zoo.train.schedule import Schedule
from progan_zoo.train.trainer import Run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "specs"
TINY = FIXTURES / "tiny_mnist_16.yaml"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _cpu() -> DistInfo:
    return DistInfo(rank=0, world=1, local_rank=0, device=torch.device("cpu"))


# ------------------------------------------------------------------------------------------------
# 1. The gradient penalty is taken at the final resolution.

def official_penalty(D_stage, reals: torch.Tensor, fakes: torch.Tensor, mix: torch.Tensor, factor: int,
                     target: float) -> torch.Tensor:
    """``D_wgangp_acgan``'s penalty as the official graph computes it: the networks work on
    full-resolution images (reals and G's output nearest-upsampled by 2**floor(lod), as
    ``process_reals`` and ``G_paper`` do), ``D_paper`` average-pools them down to the stage itself
    (``downscale2d(images_in, 2**lod)``), and the gradient is taken w.r.t. the full-resolution mix."""
    up = lambda x: x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)  # noqa: E731  upscale2d
    reals_full, fakes_full = up(reals), up(fakes)
    mixed = (reals_full + (fakes_full - reals_full) * mix).requires_grad_(True)          # tfutil.lerp
    scores = D_stage(F.avg_pool2d(mixed, factor) if factor > 1 else mixed)               # downscale2d
    (grads,) = torch.autograd.grad(scores.sum(), mixed)
    norms = grads.square().sum(dim=(1, 2, 3)).sqrt()
    return (norms - target).square()


@pytest.mark.parametrize("stage, alpha", [(0, 1.0), (1, 0.3), (1, 1.0), (2, 0.6)])
@pytest.mark.parametrize("target", [1.0, 750.0])
def test_penalty_at_final_resolution_equals_the_official_graph(stage: int, alpha: float, target: float) -> None:
    torch.manual_seed(0)
    c = compile_spec(TINY)
    D = c.D
    final = c.spec.architecture.resolution
    res = D.resolutions[stage]
    reals = torch.randn(4, 1, res, res)
    fakes = torch.randn(4, 1, res, res)
    mix = torch.rand(4, 1, 1, 1)
    D_stage = lambda x: D(x, stage, alpha)  # noqa: E731
    want = official_penalty(D_stage, reals, fakes, mix, final // res, target)
    loss = WGANGP(c.spec.training.loss)
    assert loss.gp_at == "final"
    scale = loss.norm_scale(res, final)
    assert scale == res / final
    got = gradient_penalty(D_stage, reals, fakes, mix, target, norm_scale=scale)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    if res < final and target == 1.0:
        # The option that keeps the stage-resolution penalty is a different number below the last stage.
        stage_only = gradient_penalty(D_stage, reals, fakes, mix, target, norm_scale=1.0)
        assert not torch.allclose(stage_only, want, rtol=1e-3)


def test_wgan_gp_d_loss_is_the_official_formula() -> None:
    """``D_wgangp_acgan``: fake - real + lambda / target^2 * (|grad| - target)^2 + epsilon * real^2, averaged."""
    torch.manual_seed(1)
    c = compile_spec(TINY)
    D = c.D
    stage, alpha = 1, 0.5
    reals = torch.randn(8, 1, 8, 8)
    fakes = torch.randn(8, 1, 8, 8)
    mix = torch.rand(8)
    D_stage = lambda x: D(x, stage, alpha)  # noqa: E731
    cfg = c.spec.training.loss
    loss = make_loss(cfg)
    got, stats = loss.d_loss(D_stage, reals, fakes, mix, norm_scale=loss.norm_scale(8, 16))
    real, fake = D_stage(reals).squeeze(1), D_stage(fakes).squeeze(1)
    gp = official_penalty(D_stage, reals, fakes, mix.view(-1, 1, 1, 1), 2, cfg.gp_target)
    want = (fake - real + gp * cfg.gp_lambda / cfg.gp_target ** 2 + cfg.drift * real.square()).mean()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stats["D/gp"], gp.mean(), rtol=1e-5, atol=1e-5)


def test_the_trainer_hands_the_final_resolution_to_the_penalty(tmp_path) -> None:
    run = Run(TrainConfig(spec=str(TINY), data="lfw-100", out=str(tmp_path / "r"), progress=False), _cpu())
    sched = run.sched
    assert run.nets.norm_scale(sched.at(0.0)) == 4 / 16
    assert run.nets.norm_scale(sched.at(100.0)) == 1.0
    stage_spec = tmp_path / "stage.yaml"
    stage_spec.write_text(TINY.read_text().replace("total_kimg: 2", "total_kimg: 2\n  loss: {name: wgan_gp, gp_at: stage}"))
    run2 = Run(TrainConfig(spec=str(stage_spec), data="lfw-100", out=str(tmp_path / "s"), progress=False), _cpu())
    assert run2.nets.norm_scale(sched.at(0.0)) == 1.0


# ------------------------------------------------------------------------------------------------
# 2 and 4. Adam resets and the schedule's cadence over a whole schedule.

def official_lod(kimg: float, resolution_log2: int, train_kimg: float, trans_kimg: float) -> float:
    """``TrainingSchedule``: the level of detail after ``kimg`` thousand images (lod_initial_resolution 4)."""
    phase_dur = train_kimg + trans_kimg
    phase_idx = int(np.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur
    lod = resolution_log2 - np.floor(np.log2(4)) - phase_idx
    if trans_kimg > 0:
        lod -= max(phase_kimg - train_kimg, 0.0) / trans_kimg
    return max(lod, 0.0)


def official_loop(total_kimg: float, minibatch: int, resolution_log2: int, train_kimg: float, trans_kimg: float,
                  minibatch_repeats: int, d_repeats: int = 1) -> tuple[list[int], list[tuple[int, float]]]:
    """``train_progressive_gan``'s loop with ``reset_opt_for_new_lod=True``: the images shown at every
    optimizer reset, and (images shown, lod) for every D step."""
    cur_nimg, prev_lod = 0, -1.0
    resets, d_steps = [], []
    while cur_nimg < total_kimg * 1000:
        lod = official_lod(cur_nimg / 1000.0, resolution_log2, train_kimg, trans_kimg)
        if np.floor(lod) != np.floor(prev_lod) or np.ceil(lod) != np.ceil(prev_lod):
            resets.append(cur_nimg)
        prev_lod = lod
        for _mb_repeat in range(minibatch_repeats):
            for _d_repeat in range(d_repeats):
                d_steps.append((cur_nimg, lod))
                cur_nimg += minibatch
    return resets, d_steps


@pytest.mark.parametrize("repeats", [4, 1, 3])
def test_resets_and_schedule_cadence_follow_the_official_loop(tmp_path, monkeypatch, repeats: int) -> None:
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(TINY.read_text().replace("total_kimg: 2", f"total_kimg: 1.3\n  minibatch_repeats: {repeats}"))
    run = Run(TrainConfig(spec=str(spec_file), data="lfw-100", out=str(tmp_path / "r"), progress=False,
                          tick_kimg=100, snapshot_ticks=1000), _cpu())
    resets, d_steps = [], []
    monkeypatch.setattr(trainer_mod, "reset_optimizers", lambda *opts: resets.append(run.nimg))

    def fake_minibatch(phase):
        # Only the bookkeeping of one minibatch: what phase it ran at, and the images it showed.
        d_steps.append((run.nimg, phase.lod))
        assert run.nets.opt_D.param_groups[0]["lr"] == phase.learning_rate
        run.nimg += phase.minibatch
        run.step += 1
        return {"D/loss": torch.tensor(0.0)}

    monkeypatch.setattr(run, "minibatch", fake_minibatch)
    run.train()
    want_resets, want_steps = official_loop(1.3, 8, 4, 0.2, 0.2, repeats)
    # The official loop also "resets" the empty optimizers before the first step (prev_lod = -1).
    assert [0] + resets == want_resets
    assert [n for n, _ in d_steps] == [n for n, _ in want_steps]
    np.testing.assert_allclose([lod for _, lod in d_steps], [lod for _, lod in want_steps], rtol=0, atol=1e-12)
    assert len(resets) >= 4  # every fade's start and end over 4 -> 16 px


def test_resets_are_on_by_default_and_can_be_switched_off() -> None:
    """On by default from spec_version 2; the demo spec keeps version 1's false (written out), the value the
    shipped mnist-32 was trained with (issue 18)."""
    assert load_spec(TINY).training.optimizer.reset_on_growth is True
    for name in ("celebahq_1024", "lsun_256", "celeba_128", "cifar10_32"):
        spec = load_spec(Path(__file__).resolve().parents[2] / "specs" / f"{name}.yaml")
        assert spec.training.optimizer.reset_on_growth is True, name
    assert load_spec(Path(__file__).resolve().parents[2] / "specs" / "mnist_32.yaml").training.optimizer.reset_on_growth is False


# ------------------------------------------------------------------------------------------------
# 4. G_ema: updated with every D step, from G's weights before that minibatch's G step.

def test_ema_is_updated_with_every_d_step_before_the_g_step(tmp_path) -> None:
    """Official: ``tfutil.run([D_train_op, Gs_update_op])`` for each of D_repeats, then ``G_train_op``."""
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(TINY.read_text().replace("total_kimg: 2", "total_kimg: 2\n  d_repeats: 2"))
    run = Run(TrainConfig(spec=str(spec_file), data="lfw-100", out=str(tmp_path / "r"), progress=False), _cpu())
    G, G_ema = run.nets.G, run.nets.G_ema
    with torch.no_grad():
        for p in G_ema.parameters():
            p.add_(torch.randn_like(p))                      # so that G_ema and G differ
    g0 = [p.detach().clone() for p in G.parameters()]
    e0 = [p.detach().clone() for p in G_ema.parameters()]
    beta = run.spec.training.g_ema_decay
    run.minibatch(run.begin_group())
    for p_g0, p_e0, p_e, p_g in zip(g0, e0, G_ema.parameters(), G.parameters()):
        once = p_g0 + (p_e0 - p_g0) * beta                   # tfutil.lerp(G, Gs, beta)
        twice = p_g0 + (once - p_g0) * beta
        torch.testing.assert_close(p_e, twice, rtol=1e-6, atol=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))  # the G step came after


# ------------------------------------------------------------------------------------------------
# 8. Learning-rate ramp-up.

def theano_rampup(epoch: float, rampup_length: float) -> float:
    """Paper-era Theano ``misc.rampup``."""
    if epoch < rampup_length:
        p = max(0.0, float(epoch)) / float(rampup_length)
        p = 1.0 - p
        return math.exp(-p * p * 5.0)
    return 1.0


def test_lsun_learning_rate_ramp_up_is_theanos(tmp_path) -> None:
    lsun = load_spec(Path(__file__).resolve().parents[2] / "specs" / "lsun_256.yaml")
    sched = Schedule(lsun)
    for kimg in (0.0, 0.5, 5.0, 20.0, 39.9, 40.0, 100.0):
        assert sched.at(kimg).learning_rate == pytest.approx(0.001 * theano_rampup(kimg, 40.0), rel=1e-12)
    linear = tmp_path / "lin.yaml"
    linear.write_text(TINY.read_text().replace("total_kimg: 2", "total_kimg: 2\n  lr_rampup: {kimg: 1, shape: linear}"))
    s = Schedule(load_spec(linear))
    for kimg in (0.0, 0.25, 0.999, 1.0, 1.5):
        assert s.at(kimg).learning_rate == pytest.approx(0.001 * min(kimg / 1.0, 1.0), rel=1e-12)  # TF lrate_rampup_kimg
    assert Schedule(load_spec(TINY)).at(0.0).learning_rate == 0.001
