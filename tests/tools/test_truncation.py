"""The truncation trick on z: components beyond psi redrawn inside [-psi, psi], the rest kept, off by default."""

from __future__ import annotations

import math

import pytest
import torch

from progan_zoo.errors import UsageError
from progan_zoo.data.latents import check_psi, latents, truncate_latents


def test_inside_components_kept_and_outside_redrawn_within_psi():
    z = latents(2000, 64, seed=3)
    t = truncate_latents(z, 0.7, seed=3)
    inside = z.abs() <= 0.7
    assert torch.equal(t[inside], z[inside])
    assert t.abs().max() <= 0.7
    assert not torch.equal(t[~inside], z[~inside])


def test_redraws_follow_the_truncated_normal():
    psi = 1.0
    t = truncate_latents(torch.full((200_000,), 10.0), psi, seed=0)   # every component redrawn
    # E[z^2 | |z| <= 1] = 1 - 2 phi(1) / (2 Phi(1) - 1)
    phi = math.exp(-0.5) / math.sqrt(2 * math.pi)
    want = 1 - 2 * phi / math.erf(1 / math.sqrt(2))
    assert abs(float((t.double() ** 2).mean()) - want) < 0.005
    assert abs(float(t.mean())) < 0.01


def test_off_by_default_and_seeded():
    z = latents(8, 16, seed=1)
    assert torch.equal(latents(8, 16, seed=1, truncation=None), z)
    assert truncate_latents(z, math.inf) is z
    assert torch.equal(latents(8, 16, seed=1, truncation=0.5), latents(8, 16, seed=1, truncation=0.5))


@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), "x"])
def test_bad_psi_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="psi"):
        check_psi(bad)


def test_generate_cli_truncation(tmp_path, capsys):
    from progan_zoo.cli import main

    assert main(["generate", "mnist-32", "--n", "4", "--truncation", "0.7", "--out", str(tmp_path / "g.png")]) == 0
    assert "truncation 0.7" in capsys.readouterr().out
    assert main(["interpolate", "mnist-32", "--seeds", "0,1", "--steps", "2", "--truncation", "0.5",
                 "--out", str(tmp_path / "w.gif")]) == 0
