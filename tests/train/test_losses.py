"""Losses: the gradient penalty against autograd references, the registry, fp32 under autocast."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from progan_zoo.compiler.schema import Loss
from progan_zoo.errors import UserError
from progan_zoo.train.losses import LOSSES, gradient_penalty, make_loss


def _small_d() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 8 * 8, 1))


def test_penalty_of_a_linear_critic_is_exact():
    # D(x) = <w, x>: the gradient is w everywhere, so the penalty is (||w|| - target)^2 for every sample.
    w = torch.randn(1, 3, 8, 8, dtype=torch.float64).float()
    D = lambda x: (x * w).sum(dim=(1, 2, 3)).unsqueeze(1)
    reals, fakes, mix = torch.randn(5, 3, 8, 8), torch.randn(5, 3, 8, 8), torch.rand(5, 1, 1, 1)
    gp = gradient_penalty(D, reals, fakes, mix, target=2.0)
    want = (w.norm() - 2.0) ** 2
    torch.testing.assert_close(gp, want.expand(5), rtol=1e-5, atol=1e-6)


def test_penalty_matches_per_sample_autograd():
    D = _small_d()
    reals, fakes, mix = torch.randn(6, 3, 8, 8), torch.randn(6, 3, 8, 8), torch.rand(6, 1, 1, 1)
    gp = gradient_penalty(D, reals, fakes, mix)
    for i in range(6):
        x = (reals[i] + (fakes[i] - reals[i]) * mix[i]).unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(D(x).sum(), x)
        torch.testing.assert_close(gp[i], (g.norm() - 1.0) ** 2, rtol=1e-5, atol=1e-6)


def test_penalty_trains_d_through_the_double_backward():
    D = _small_d()
    reals, fakes, mix = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8), torch.rand(4, 1, 1, 1)
    gp = gradient_penalty(D, reals, fakes, mix).mean()
    gp.backward()
    got = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in D.parameters()]  # bias of the last layer: no effect
    # Reference: the same quantity through torch.func (per-sample input gradients, then grad w.r.t. params).
    from torch.func import functional_call, grad, vmap
    params = dict(D.named_parameters())

    def penalty(ps):
        def score(x):
            return functional_call(D, ps, (x.unsqueeze(0),)).sum()
        x_hat = reals + (fakes - reals) * mix
        g = vmap(grad(score))(x_hat)
        return ((g.flatten(1).norm(dim=1) - 1.0) ** 2).mean()

    want = grad(penalty)(params)
    for (name, _), g in zip(D.named_parameters(), got):
        torch.testing.assert_close(g, want[name], rtol=1e-4, atol=1e-6)


def test_penalty_is_fp32_under_autocast():
    D = _small_d()
    reals, fakes, mix = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8), torch.rand(4, 1, 1, 1)
    plain = gradient_penalty(D, reals, fakes, mix)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = gradient_penalty(D, reals, fakes, mix)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, plain)


def test_wgan_gp_d_loss_is_the_official_sum():
    cfg = Loss(name="wgan_gp", gp_lambda=10.0, gp_target=1.0, drift=0.001)
    D = _small_d()
    reals, fakes, mix = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8), torch.rand(4)
    loss, stats = make_loss(cfg).d_loss(D, reals, fakes, mix)
    real, fake = D(reals).squeeze(1), D(fakes).squeeze(1)
    gp = gradient_penalty(D, reals, fakes, mix.view(-1, 1, 1, 1))
    want = (fake - real + 10.0 * gp + 0.001 * real ** 2).mean()
    torch.testing.assert_close(loss, want)
    assert set(stats) == {"D/loss", "D/real", "D/fake", "D/gp"}
    g_loss, _ = make_loss(cfg).g_loss(D, fakes)
    torch.testing.assert_close(g_loss, -fake.mean())


def test_other_losses_and_registry():
    D = _small_d()
    reals, fakes = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    real, fake = D(reals), D(fakes)
    ls, _ = make_loss(Loss(name="lsgan")).d_loss(D, reals, fakes)
    torch.testing.assert_close(ls, 0.5 * ((real - 1) ** 2 + fake ** 2).mean())
    ns, _ = make_loss(Loss(name="logistic_ns")).d_loss(D, reals, fakes)
    torch.testing.assert_close(ns, (nn.functional.softplus(fake) + nn.functional.softplus(-real)).mean())
    g, _ = make_loss(Loss(name="logistic_ns")).g_loss(D, fakes)
    torch.testing.assert_close(g, nn.functional.softplus(-fake).mean())
    assert LOSSES.names() == ["logistic_ns", "lsgan", "wgan_gp"]
    with pytest.raises(UserError, match="unknown loss 'hinge'; known: logistic_ns, lsgan, wgan_gp"):
        LOSSES.get("hinge")
