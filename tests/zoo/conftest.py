"""Fixtures of the zoo tests: a tiny run (4 -> 16 px) laid out as the trainer writes it, its export,
and an isolated environment (registry, Hugging Face cache) per test."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent
SPECS = HERE.parent / "fixtures" / "specs"
TINY = SPECS / "tiny_16.yaml"
TINY_MNIST = SPECS / "tiny_mnist_16.yaml"

sys.path.insert(0, str(HERE))  # zoocli, hubserver


def make_run(run: Path, spec: Path = TINY, nimg: int = 2000, stage: int | None = None, alpha: float = 1.0,
             seed: int = 0) -> Path:
    """A run directory as docs/architecture.md lays it out, with seeded random weights in place of
    training (every weight and bias is random, so a loader that skips any tensor changes the images)."""
    from progan_zoo.compiler import compile_spec
    from safetensors.torch import save_file

    c = compile_spec(spec)
    torch.manual_seed(seed)
    with torch.no_grad():
        for net in (c.G, c.D):
            for p in net.parameters():
                p.copy_(torch.randn_like(p) * (0.1 if p.ndim == 1 else 1.0))
    G_ema = c.G  # the raw G of a real run differs from its EMA: store a shifted copy as G
    ck = run / "checkpoints" / f"ckpt-{nimg:09d}"
    ck.mkdir(parents=True)
    shutil.copyfile(spec, run / "spec.yaml")
    save_file({k: v.contiguous() for k, v in G_ema.state_dict().items()}, str(ck / "G_ema.safetensors"))
    save_file({k: (v + 0.01).contiguous() for k, v in G_ema.state_dict().items()}, str(ck / "G.safetensors"))
    save_file({k: v.contiguous() for k, v in c.D.state_dict().items()}, str(ck / "D.safetensors"))
    last = len(c.G.resolutions) - 1
    (ck / "state.json").write_text(json.dumps({
        "nimg": nimg, "kimg": nimg / 1000, "stage": last if stage is None else stage, "alpha": alpha,
        "spec_sha256": c.raw.sha256, "spec_name": c.spec.name, "seed": seed}))
    (run / "run.json").write_text(json.dumps({"spec": c.spec.name, "spec_sha256": c.raw.sha256, "seed": seed,
                                              "world_size": 1}))
    # An incomplete checkpoint the exporter must skip.
    (run / "checkpoints" / f"ckpt-{nimg + 1000:09d}.tmp").mkdir()
    return run


def with_results(src: Path, dest: Path, swd: float, fid: float, num: int = 1000) -> Path:
    """A copy of a model whose metadata and card carry results (for the leaderboard's table logic and
    sort only, not real scores); ``num`` is the FID's image count."""
    from progan_zoo.zoo import records as F
    from progan_zoo.zoo.folder import write_record

    shutil.copytree(src, dest)
    meta = F.read_metadata(dest)
    evaluation = [
        {"metric": "swd", "values": {"swd_avg": swd, "swd_16": swd}, "settings": {"num_images": 1000, "seed": 0,
                                                                                 "real": "lfw-100"}},
        {"metric": "fid", "values": {"fid": fid}, "settings": {"num_images": num, "seed": 0, "real": "lfw-100"}},
    ]
    write_record(dest, meta.replace(name=dest.name, evaluation=evaluation))
    return dest


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch):
    """No test sees the user's registry or Hugging Face cache, or reaches the network through them."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PROGAN_ZOO_REGISTRY", str(home / "registry.json"))
    monkeypatch.setenv("PROGAN_ZOO_HOME", str(home / "zoo"))
    monkeypatch.setenv("PROGAN_ZOO_CACHE", str(home / "cache"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    return home


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "tiny-run")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_run) -> Path:
    """A saved model exported from ``tiny_run`` (with raw G and D). Treat it as read-only."""
    from progan_zoo.zoo.export import export_model

    return export_model(tiny_run, tmp_path_factory.mktemp("models") / "tiny-16", with_training=True)


@pytest.fixture
def model_copy(tmp_path, tiny_model) -> Path:
    """A private copy of the tiny model that a test may damage."""
    dest = tmp_path / "copy"
    shutil.copytree(tiny_model, dest)
    return dest
