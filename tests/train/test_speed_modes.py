"""The opt-in speed modes (issue 11): lazy penalty, shared fakes, bf16 autocast on the CPU, channels-last.

Each keeps the paper's objective; these tests check that the flag does what it says and that, where a
mode is a pure refactoring of the same computation, the result equals the default's.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from progan_zoo.compiler import compile_spec
from progan_zoo.errors import UsageError
from progan_zoo.train import checkpoint as ckpt_io
from progan_zoo.train.config import TrainConfig
from progan_zoo.train.dist import DistInfo
from progan_zoo.train.losses import make_loss
from progan_zoo.train.optim import make_optimizer
from progan_zoo.train.schedule import Phase
from progan_zoo.train.steps import Nets, d_step, g_step
from progan_zoo.train.trainer import train


def _nets(spec_path, **kw) -> Nets:
    torch.manual_seed(0)
    compiled = compile_spec(str(spec_path))
    spec = compiled.spec
    G, D = compiled.G, compiled.D
    dev = torch.device("cpu")
    return Nets(G, D, copy.deepcopy(G).requires_grad_(False), make_optimizer(G, spec, dev), make_optimizer(D, spec, dev),
                make_loss(spec.training.loss), DistInfo(device=dev), final_resolution=spec.architecture.resolution, **kw)


def _phase() -> Phase:
    return Phase(kimg=0.0, lod=0.0, stage=2, alpha=1.0, resolution=16, fading=False, minibatch=8, learning_rate=1e-3)


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(8, 1, 16, 16, generator=g) * 2 - 1, torch.randn(8, 16, generator=g), torch.rand(8, generator=g)


def test_lazy_penalty_weights():
    nets = _nets("tests/fixtures/specs/tiny_mnist_16.yaml", lazy_penalty=4)
    assert [nets.penalty_weight(i) for i in range(9)] == [4.0, 0, 0, 0, 4.0, 0, 0, 0, 4.0]
    nets.lazy_penalty = 1
    assert {nets.penalty_weight(i) for i in range(5)} == {1.0}


def test_penalty_weight_scales_only_the_penalty(tiny_spec):
    nets = _nets(tiny_spec)
    reals, z, mix = _batch()
    D = lambda x: nets.D(x, 2, 1.0)  # noqa: E731
    fakes = nets.G(z, 2, 1.0).detach()
    full, s1 = nets.loss.d_loss(D, reals, fakes, mix)
    none, s0 = nets.loss.d_loss(D, reals, fakes, mix, gp_weight=0.0)
    four, _ = nets.loss.d_loss(D, reals, fakes, mix, gp_weight=4.0)
    assert "D/gp" in s1 and "D/gp" not in s0
    gp_term = full - none  # lambda * mean penalty
    assert float(gp_term.detach()) > 0
    torch.testing.assert_close(four, none + 4 * gp_term)


def test_shared_fakes_step_equals_the_default_step_for_the_same_latents(tiny_spec):
    """--shared-fakes only moves G's forward: given the same latents, D and G end with the same weights."""
    phase = _phase()
    reals, z, mix = _batch(1)
    results = []
    for shared in (False, True):
        nets = _nets(tiny_spec, shared_fakes=shared)
        fakes = nets.fmt(nets.G(z, phase.stage, phase.alpha)) if shared else None
        d_step(nets, reals, z, mix, phase, fakes=fakes)
        g_step(nets, z, phase, fakes=fakes)
        results.append((nets.G.state_dict(), nets.D.state_dict()))
    for a, b in zip(results[0], results[1]):
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)


def test_channels_last_step_matches_nchw(tiny_spec):
    phase = _phase()
    reals, z, mix = _batch(2)
    results = []
    for cl in (False, True):
        nets = _nets(tiny_spec, channels_last=cl)
        if cl:
            nets.G.to(memory_format=torch.channels_last)
            nets.D.to(memory_format=torch.channels_last)
        d_step(nets, nets.fmt(reals), z, mix, phase)
        g_step(nets, z, phase)
        results.append(nets.D.state_dict())
    for k in results[0]:
        torch.testing.assert_close(results[0][k], results[1][k], rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.parametrize("amp_penalty", [False, True])
def test_bf16_autocast_on_cpu(tiny_spec, amp_penalty):
    """bf16 autocast runs on the CPU; the penalty's double backward works in fp32 and, opted in, in bf16."""
    nets = _nets(tiny_spec, amp=True, amp_penalty=amp_penalty)
    phase = _phase()
    reals, z, mix = _batch(3)
    before = {k: v.clone() for k, v in nets.D.state_dict().items()}
    stats = d_step(nets, reals, z, mix, phase)
    stats.update(g_step(nets, z, phase))
    assert all(torch.isfinite(v) for v in stats.values()) and "D/gp" in stats
    assert any(not torch.equal(before[k], v) for k, v in nets.D.state_dict().items())
    assert all(p.dtype == torch.float32 for p in nets.D.parameters())  # autocast: weights stay fp32


def test_cli_options_are_checked(tiny_spec, tmp_path):
    with pytest.raises(UsageError, match="--amp-penalty"):
        train(TrainConfig(spec=str(tiny_spec), out=str(tmp_path / "a"), amp_penalty=True, progress=False))
    with pytest.raises(UsageError, match="--lazy-penalty 0"):
        train(TrainConfig(spec=str(tiny_spec), out=str(tmp_path / "b"), lazy_penalty=0, progress=False))


def test_fast_modes_train_and_resume_exactly(tiny_spec, tmp_path):
    """All CPU opt-ins at once: a run logs the lazily taken penalty, and a resumed run (given the same
    flags) continues exactly: the lazy cadence follows the checkpointed step count."""
    from progan_zoo.cli import main

    flags = ["--lazy-penalty", "3", "--shared-fakes", "--channels-last", "--no-progress", "--tick-kimg", "0.05"]
    assert main(["train", str(tiny_spec), "--out", str(tmp_path / "whole"), "--steps", "16", *flags]) == 0
    assert main(["train", str(tiny_spec), "--out", str(tmp_path / "half"), "--steps", "8", *flags]) == 0
    assert main(["train", "--resume", str(tmp_path / "half"), "--steps", "8", *flags]) == 0  # the flags are the run's choice
    log = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert all("D/gp" in r for r in log)  # every group of 4 minibatches has a penalty step (k = 3)
    run = json.loads((tmp_path / "whole" / "run.json").read_text())
    assert run["config"]["lazy_penalty"] == 3 and run["config"]["shared_fakes"] is True
    a = ckpt_io.latest_checkpoint(tmp_path / "whole")
    b = ckpt_io.latest_checkpoint(tmp_path / "half")
    assert a.name == b.name
    for stem in ckpt_io.WEIGHT_FILES:
        ta, tb = ckpt_io.load_file(str(a / f"{stem}.safetensors")), ckpt_io.load_file(str(b / f"{stem}.safetensors"))
        for key in ta:
            assert torch.equal(ta[key], tb[key]), f"{stem}:{key} differs after resume"
