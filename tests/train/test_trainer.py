"""The training loop: faded reals, a small run's directory, exact resume, non-finite losses."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from progan_zoo.cli import main
from progan_zoo.errors import RunFailure, UserError
from progan_zoo.nn import downsample2x, upsample2x
from progan_zoo.train import checkpoint as ckpt_io
from progan_zoo.train import runstate
from progan_zoo.train.config import TrainConfig
from progan_zoo.train.optim import lod_crossed
from progan_zoo.train.schedule import Phase
from progan_zoo.train.steps import fade_reals
from progan_zoo.train.trainer import train


def _phase(alpha: float, fading: bool) -> Phase:
    return Phase(kimg=0.0, lod=1 - alpha, stage=1, alpha=alpha, resolution=8, fading=fading, minibatch=4, learning_rate=1e-3)


def test_reals_fade_like_the_generator_output():
    x = torch.randn(4, 3, 8, 8)
    assert fade_reals(x, _phase(1.0, False)) is x
    got = fade_reals(x, _phase(0.25, True))
    torch.testing.assert_close(got, 0.25 * x + 0.75 * upsample2x(downsample2x(x)))
    # At alpha 0 the reals are exactly the previous resolution's images shown at this size.
    torch.testing.assert_close(fade_reals(x, _phase(0.0, True)), upsample2x(downsample2x(x)))


def test_optimizer_reset_trigger_is_the_official_one():
    assert not lod_crossed(None, 2.0)
    assert not lod_crossed(2.0, 2.0)
    assert lod_crossed(2.0, 1.96)       # a fade starts
    assert not lod_crossed(1.96, 1.5)
    assert lod_crossed(1.04, 1.0)       # a fade ends


def test_tiny_run_writes_the_run_directory(tiny_spec, tmp_path):
    out = tmp_path / "run"
    # 60 steps of 8 images: 4x4, the 8x8 fade-in, and into the 8x8 stabilize phase.
    rc = main(["train", str(tiny_spec), "--out", str(out), "--steps", "60", "--tick-kimg", "0.2",
               "--snapshot-ticks", "2", "--keep", "2", "--no-progress", "--grid", "16"])
    assert rc == 0
    assert (out / "spec.yaml").read_text() == tiny_spec.read_text()
    run = json.loads((out / "run.json").read_text())
    assert run["spec_name"] == "tiny-mnist-16" and run["world_size"] == 1 and run["data"] == "mnist"
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["resolution"] for r in log] == [4, 8, 8]
    assert log[-1]["kimg"] == 0.48 and all(r["images_per_s"] > 0 for r in log)
    assert {"D/loss", "G/loss", "D/gp", "alpha", "lod"} <= set(log[0])
    grid = Image.open(out / "samples" / "latest.png")
    assert grid.size == (4 * 17 + 1, 4 * 17 + 1)
    ckpts = ckpt_io.list_checkpoints(out)
    assert [c.name for c in ckpts] == ["ckpt-000000448", "ckpt-000000480"]  # ticks after groups of 4 minibatches
    state = json.loads((ckpts[-1] / "state.json").read_text())
    assert state["nimg"] == 480 and state["stage"] == 1 and state["resolution"] == 8
    assert set(state["rng"]) >= {"step_generator", "torch_cpu", "numpy", "python", "data_sampler"}
    G = load_file(str(ckpts[-1] / "G.safetensors"))
    assert "b8.block.conv0.weight" in G and "b16.torgb.weight" in G
    optim = load_file(str(ckpts[-1] / "optim.safetensors"))
    assert "G.b8.block.conv0.weight.exp_avg" in optim and "D.b8.fromrgb.weight.exp_avg_sq" in optim


def _final_tensors(run_dir):
    ckpt = ckpt_io.latest_checkpoint(run_dir)
    return ckpt, {stem: load_file(str(ckpt / f"{stem}.safetensors")) for stem in ckpt_io.WEIGHT_FILES}


def test_resume_mid_fade_is_bitwise_exact(tiny_spec, tmp_path):
    common = dict(spec=str(tiny_spec), progress=False, tick_kimg=0.1, mirror=True)
    train(TrainConfig(out=str(tmp_path / "whole"), max_steps=70, **common))
    train(TrainConfig(out=str(tmp_path / "half"), max_steps=35, **common))
    state = json.loads((ckpt_io.latest_checkpoint(tmp_path / "half") / "state.json").read_text())
    assert state["nimg"] == 288 and 0 < state["alpha"] < 1  # 35 steps end with their group of 4: mid 8x8 fade-in
    train(TrainConfig(resume=str(tmp_path / "half"), max_steps=35, progress=False, tick_kimg=0.1))
    ckpt_a, a = _final_tensors(tmp_path / "whole")
    ckpt_b, b = _final_tensors(tmp_path / "half")
    assert ckpt_a.name == ckpt_b.name == "ckpt-000000576"
    for stem in a:
        assert a[stem].keys() == b[stem].keys()
        for key in a[stem]:
            assert torch.equal(a[stem][key], b[stem][key]), f"{stem}:{key} differs after resume"
    sa = json.loads((ckpt_a / "state.json").read_text())
    sb = json.loads((ckpt_b / "state.json").read_text())
    assert sa["rng"] == sb["rng"] and sa["step"] == sb["step"] == 72


def test_resume_refuses_another_spec(tiny_spec, tmp_path):
    train(TrainConfig(spec=str(tiny_spec), out=str(tmp_path / "r"), max_steps=2, progress=False))
    other = tmp_path / "other.yaml"
    other.write_text(tiny_spec.read_text().replace("total_kimg: 2", "total_kimg: 3"))
    with pytest.raises(UserError, match="differs from the spec"):
        train(TrainConfig(spec=str(other), resume=str(tmp_path / "r"), max_steps=2, progress=False))
    with pytest.raises(UserError, match="no complete checkpoint"):
        train(TrainConfig(resume=str(tmp_path), progress=False))


class _NaNAfter:
    """Wraps the real loss and returns NaN from the ``after``-th D step on."""

    def __init__(self, inner, after: int) -> None:
        self.inner, self.after, self.calls, self.needs_mix = inner, after, 0, inner.needs_mix

    def d_loss(self, D, reals, fakes, mix, **kw):
        self.calls += 1
        loss, stats = self.inner.d_loss(D, reals, fakes, mix, **kw)
        if self.calls >= self.after:
            loss = loss * float("nan")
            stats["D/loss"] = loss.detach()
        return loss, stats

    def g_loss(self, D, fakes, **kw):
        return self.inner.g_loss(D, fakes, **kw)

    def norm_scale(self, stage_resolution, final_resolution):
        return self.inner.norm_scale(stage_resolution, final_resolution)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_spec, tmp_path, monkeypatch):
    real_make = runstate.make_loss
    monkeypatch.setattr(runstate, "make_loss", lambda cfg: _NaNAfter(real_make(cfg), after=30))
    out = tmp_path / "run"
    # The 30th D step is in the 8th group of 4; losses are checked after each group, before its tick.
    with pytest.raises(RunFailure, match=r"non-finite loss at kimg 0\.256 .*ckpt-000000128") as err:
        train(TrainConfig(spec=str(tiny_spec), out=str(out), tick_kimg=0.1, snapshot_ticks=1, progress=False))
    assert "\n" not in str(err.value)
    last = ckpt_io.latest_checkpoint(out)
    assert last.name == "ckpt-000000128"
    G = load_file(str(last / "G.safetensors"))
    assert all(torch.isfinite(t).all() for t in G.values())
    monkeypatch.setattr(runstate, "make_loss", real_make)
    train(TrainConfig(resume=str(out), max_steps=5, progress=False))
    assert ckpt_io.latest_checkpoint(out).name == "ckpt-000000192"  # 5 steps end with their group: 8 x 8 images
