"""The real trainer's output: train the tiny spec a few steps, export, load, same images as its G_ema."""

from __future__ import annotations

import json

import pytest
import torch

from progan_zoo import load
from progan_zoo.zoo import records as F
from progan_zoo.zoo.export import export_model

from conftest import TINY_MNIST

train = pytest.importorskip("progan_zoo.train.trainer")


def test_train_export_load(tmp_path):
    from safetensors.torch import load_file

    from progan_zoo.compiler import compile_spec
    from progan_zoo.train.checkpoint import latest_checkpoint
    from progan_zoo.train.config import TrainConfig

    run = train.train(TrainConfig(spec=str(TINY_MNIST), out=str(tmp_path / "run"), kimg=0.1, device="cpu",
                                  tick_kimg=0.1, grid=4, progress=False))
    ck = latest_checkpoint(run)
    out = export_model(run, tmp_path / "model")
    meta = F.read_metadata(out)
    G = load(out)
    assert meta.training["checkpoint"] == ck.name and meta.images_shown == int(ck.name.split("-")[1])
    # The same network straight from the checkpoint, at the stage and fade weight training reached.
    net = compile_spec(TINY_MNIST).G
    net.load_state_dict(load_file(str(ck / "G_ema.safetensors")))
    z = G.latents(6, seed=11)
    want = net(z, stage=meta.stage, alpha=meta.alpha)
    assert torch.allclose(G(z), want, atol=1e-6)
    assert G.sample(6, seed=11).shape == (6, 1, G.resolution, G.resolution)
    # The model's identity, the resolved spec's sha256, travels from the run to the card (issue 18).
    identity = compile_spec(TINY_MNIST).resolved_sha256
    assert json.loads((run / "run.json").read_text())["spec_resolved_sha256"] == identity
    assert json.loads((ck / "state.json").read_text())["spec_resolved_sha256"] == identity
    assert meta.spec["resolved_sha256"] == identity
    assert f"resolved sha256 `{identity}`" in (out / F.CARD).read_text()
