"""Export a run, load the folder, get the same images for the same seed; lower stages; metadata and card."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from progan_zoo import load
from progan_zoo.errors import UsageError
from progan_zoo.zoo import records as F
from progan_zoo.zoo.card import parse_card
from progan_zoo.zoo.export import export_model
from progan_zoo.data.pixels import to_uint8
from progan_zoo.zoo.weights import read_header, tensor_shapes

from conftest import make_run


def test_same_seed_same_images(tiny_run, tiny_model):
    G = load(tiny_model)
    a, b = G.sample(8, seed=3), load(tiny_model).sample(8, seed=3)
    assert a.dtype == torch.uint8 and a.shape == (8, 3, 16, 16)
    assert torch.equal(a, b)
    assert not torch.equal(a, G.sample(8, seed=4))
    # The folder holds the run's EMA generator: identical to sampling the run directly.
    assert torch.equal(a, load(tiny_run).sample(8, seed=3))
    assert (G.resolution, G.z_dim, G.image_channels) == (16, 16, 3)
    assert G.spec.name == "tiny-16" and G.metadata.images_shown == 2000


def test_call_and_float_samples(tiny_model):
    G = load(tiny_model)
    z = G.latents(4, seed=1)
    x = G(z)
    assert x.dtype == torch.float32 and x.shape == (4, 3, 16, 16)
    assert torch.equal(to_uint8(x), G.sample(4, seed=1))
    f = G.sample(4, seed=1, dtype=torch.float32)
    assert 0.0 <= f.min() and f.max() <= 1.0
    assert torch.allclose(f, ((x + 1) / 2).clamp(0, 1))
    with pytest.raises(ValueError, match=r"z must be \[N, 16\]"):
        G(torch.zeros(2, 7))


def test_lower_stage(tmp_path, tiny_model):
    G = load(tiny_model)
    g8 = G.at_resolution(8)
    assert g8.resolution == 8 and g8.sample(2).shape == (2, 3, 8, 8)
    assert torch.equal(load(tiny_model, resolution=8).sample(5, seed=2), g8.sample(5, seed=2))
    out = export_model(tiny_model, tmp_path / "tiny-8", resolution=8, with_training=True)
    meta = F.read_metadata(out)
    assert (meta.resolution, meta.stage) == (8, 1)
    header = read_header(out / F.WEIGHTS)
    # Only the blocks up to 8x8 are stored, for G_ema, G and D alike.
    assert {k.split(".")[0] for k in tensor_shapes(header)} == {"b4", "b8"}
    assert {k.split(".")[0] for k in tensor_shapes(header, "D.")} == {"b4", "b8"}
    assert torch.equal(load(out).sample(5, seed=2), g8.sample(5, seed=2))
    with pytest.raises(Exception, match="no 32x32 stage"):
        G.at_resolution(32)


def test_training_copies_are_stored_and_ignored(tiny_model):
    header = read_header(tiny_model / F.WEIGHTS)
    ema, raw, d = tensor_shapes(header), tensor_shapes(header, "G."), tensor_shapes(header, "D.")
    assert ema and ema == raw and d
    assert F.read_metadata(tiny_model).weights["contents"] == ["G_ema", "G", "D"]


def test_metadata_and_card(tiny_model):
    meta = json.loads((tiny_model / F.METADATA).read_text())
    for key in ("format_version", "spec", "resolution", "stage", "images_shown", "dataset", "license", "weights",
                "evaluation"):
        assert key in meta
    assert meta["spec"]["sha256"] == hashlib.sha256((tiny_model / F.SPEC).read_bytes()).hexdigest()
    assert meta["weights"]["sha256"] == hashlib.sha256((tiny_model / F.WEIGHTS).read_bytes()).hexdigest()
    front, body = parse_card((tiny_model / F.CARD).read_text())
    assert front["library_name"] == "progan-zoo" and front["license"] == "apache-2.0"
    assert "datasets" in front and "unconditional-image-generation" in front["tags"]
    assert "samples.png" in body and "Citation" in body
    from PIL import Image

    with Image.open(tiny_model / F.SAMPLES) as im:
        assert im.size == (8 * 16, 8 * 16)


def test_exact_spec_is_kept(tiny_run, tiny_model):
    assert (tiny_model / F.SPEC).read_bytes() == (tiny_run / "spec.yaml").read_bytes()


def test_export_is_reproducible(tmp_path, tiny_run, tiny_model):
    again = export_model(tiny_run, tmp_path / "again", with_training=True)
    for name in (F.WEIGHTS, F.SPEC, F.SAMPLES):
        assert (again / name).read_bytes() == (tiny_model / name).read_bytes(), name


def test_mid_fade_checkpoint(tmp_path):
    run = make_run(tmp_path / "run", nimg=1500, stage=2, alpha=0.25)
    G = load(export_model(run, tmp_path / "m"))
    assert G.metadata.alpha == 0.25
    full = load(run)
    z = G.latents(3, seed=0)
    want = full.G(z, alpha=0.25)
    assert torch.allclose(G(z), want)
    assert not torch.allclose(G(z), full.G(z, alpha=1.0))


def test_untrained_stage_is_refused(tmp_path):
    run = make_run(tmp_path / "run", stage=1, alpha=1.0)
    with pytest.raises(UsageError, match="has not been trained yet"):
        export_model(run, tmp_path / "m", resolution=16)
    assert load(export_model(run, tmp_path / "m")).resolution == 8  # default: the stage reached


def test_checkpoint_selection(tmp_path):
    run = make_run(tmp_path / "run", nimg=2000)
    with pytest.raises(UsageError, match="no checkpoint '5'.*ckpt-000002000"):
        export_model(run, tmp_path / "m", checkpoint="5")
    out = export_model(run, tmp_path / "m", checkpoint="2000")
    assert F.read_metadata(out).training["checkpoint"] == "ckpt-000002000"
    with pytest.raises(UsageError, match="already exists"):
        export_model(run, out)
    export_model(run, out, force=True, name="renamed")
    assert F.read_metadata(out).name == "renamed"
