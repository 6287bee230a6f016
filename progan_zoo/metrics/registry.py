"""Metric registry: name -> function, plus the context a metric gets and the run's metrics log.

Like stylegan2-ada's metric_main: every metric is a function of one context (generator, real data, counts,
seed, device) returning a dict of numbers and settings; ``calc_metric`` times it and ``report_metric``
appends one JSON line per result to ``<run dir>/metrics.jsonl``, so a training run's log shows quality
over time. Unknown names raise an error that lists the registered ones (mmengine-style).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from progan_zoo.errors import UserError
from progan_zoo.registry import Registry, UnknownNameError

if TYPE_CHECKING:  # torch is imported on use: `import progan_zoo.metrics` stays cheap
    import torch

    from progan_zoo.metrics.reals import RealStream

METRICS_LOG = "metrics.jsonl"

# Images per metric in the official evaluation (config.py's evaluate_metrics lines): SWD-16k (its second
# real pass is the noise floor), FID-50k, IS-50k, MS-SSIM over 20k images = 10,000 pairs (the paper's
# count); KID takes FID's count.
OFFICIAL_NUM_IMAGES = {"swd": 16384, "swd_noise_floor": 16384, "fid": 50000, "kid": 50000, "is": 50000,
                       "msssim": 20000}


class UnknownMetricError(UnknownNameError):
    """A metric name that is not registered."""


METRICS = Registry("metric", error=UnknownMetricError)


# ----------------------------------------------------------------------------------------------------------
# What a metric gets


def generator_device(generator: Any) -> torch.device:
    import torch

    if isinstance(generator, torch.nn.Module):
        for p in generator.parameters():
            return p.device
        for b in generator.buffers():
            return b.device
    return torch.device("cpu")


@dataclass
class MetricContext:
    """Inputs of a metric. ``generator``: ``G(z) -> [-1, 1]`` NCHW images with ``G.z_dim`` and
    ``G.resolution`` (None for data-only metrics); ``real``: uint8 images (tensor [N, C, H, W], map-style
    dataset or iterable of batches); ``num``: images per side; ``seed``: all sampling is seeded."""

    generator: Any = None
    real: Any = None
    num: int = 10000
    seed: int = 0
    device: torch.device | str | None = None
    batch_size: int = 64
    options: dict[str, Any] = field(default_factory=dict)
    requested: tuple[str, ...] = ()
    shared: dict[str, Any] = field(default_factory=dict)  # results one metric computes for another (fid+kid)

    @property
    def torch_device(self) -> torch.device:
        import torch

        if self.device is not None:
            return torch.device(self.device)
        return generator_device(self.generator)

    def need_generator(self, metric: str) -> Any:
        if self.generator is None:
            raise UserError(f"metric {metric!r} evaluates a generator; none was given")
        return self.generator

    def need_real(self, metric: str) -> Any:
        if self.real is None:
            raise UserError(f"metric {metric!r} compares with real data; give the data (--data)")
        return self.real

    def latents(self, num: int, seed: int | None = None) -> torch.Tensor:
        """All latents at once from a CPU generator: the same images whatever the batch size or device."""
        import torch

        g = self.need_generator("sampling")
        z_dim = getattr(g, "z_dim", None)
        if not isinstance(z_dim, int) or z_dim <= 0:
            raise UserError("the generator needs an integer attribute z_dim (latent size)")
        gen = torch.Generator().manual_seed(int(self.seed if seed is None else seed))
        return torch.randn(num, z_dim, generator=gen)

    def fake_batches(self, num: int | None = None, seed: int | None = None) -> Iterator[torch.Tensor]:
        """Generated images as uint8 batches (num images, latents seeded)."""
        import torch

        from progan_zoo.data.pixels import to_uint8

        g = self.need_generator("sampling")
        num = self.num if num is None else num
        dev = self.torch_device
        was_training = getattr(g, "training", False)
        if isinstance(g, torch.nn.Module):
            g.eval()
        try:
            z = self.latents(num, seed)
            for i in range(0, num, self.batch_size):
                with torch.no_grad():
                    images = to_uint8(g(z[i : i + self.batch_size].to(dev)))
                yield images
        finally:
            if isinstance(g, torch.nn.Module) and was_training:
                g.train()

    def real_stream(self, num: int | None = None) -> "RealStream":
        """The first ``num`` real images as the official evaluation reads them: in order, cycled from the
        start when the data has fewer (a stream built by ``evaluate`` also carries its mirror flips)."""
        import torch

        from progan_zoo.metrics.reals import RealStream, is_indexable
        from progan_zoo.metrics.swd import iter_batches

        real = self.need_real("data")
        num = self.num if num is None else int(num)
        if isinstance(real, RealStream) and num <= len(real):
            return real.head(num)
        if is_indexable(real):
            return RealStream(real, num)
        # An iterable of batches: read up to num images once; the stream cycles them.
        batches = [b.cpu() for b in iter_batches(real, self.batch_size, num)]
        if not batches:
            raise UserError("the real data gave no images")
        return RealStream(torch.cat(batches), num)

    def real_batches(self, num: int | None = None) -> Iterator[torch.Tensor]:
        """Real uint8 batches: the first ``num`` images of ``real_stream``."""
        yield from self.real_stream(num).iter_batches(self.batch_size)


# ----------------------------------------------------------------------------------------------------------
# Running and logging


def calc_metric(name: str, ctx: MetricContext | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run one registered metric: ``{"metric", "results", "settings", "total_time", "timestamp"}``."""
    fn = METRICS.get(name)
    ctx = ctx if ctx is not None else MetricContext(**kwargs)
    start = time.time()
    out = dict(fn(ctx))
    settings = out.pop("settings", {})
    return {
        "metric": name,
        "results": out,
        "settings": settings,
        "total_time": round(time.time() - start, 3),
        "timestamp": time.time(),
    }


def report_metric(result: dict[str, Any], run_dir: str | os.PathLike | None = None, **extra: Any) -> None:
    """Append the result as one JSON line to ``<run_dir>/metrics.jsonl`` (nothing without a run dir).

    ``extra`` (e.g. ``kimg=1200``, ``snapshot="..."``) is stored with it.
    """
    if run_dir is None:
        return
    path = Path(run_dir) / METRICS_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps({**result, **extra}, sort_keys=True) + "\n")


def read_metrics_log(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """All results logged in a run directory, oldest first."""
    path = Path(run_dir) / METRICS_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def list_metrics() -> list[str]:
    return METRICS.names()


# ----------------------------------------------------------------------------------------------------------
# Built-in metrics (their modules are imported on use: `import progan_zoo.metrics` stays cheap)


@METRICS.register("swd", "multi-scale sliced Wasserstein distance x1e3, per level and average (paper, Sec. 5)")
def _swd(ctx: MetricContext) -> dict[str, Any]:
    from progan_zoo.metrics.swd import SWD

    g = ctx.need_generator("swd")
    swd = SWD(int(g.resolution), device=ctx.torch_device, seed=ctx.seed, method=ctx.options.get("swd_method", "auto"))
    for batch in ctx.real_batches():
        swd.update_real(batch)
    for batch in ctx.fake_batches():
        swd.update_fake(batch)
    out: dict[str, Any] = swd.compute()
    out["settings"] = {"num_real": swd.num_real, "num_fake": swd.num_fake, "seed": ctx.seed, "levels": swd.levels}
    return out


@METRICS.register("swd_noise_floor", "real-vs-real SWD x1e3 (two halves of the data): the estimator's floor")
def _swd_floor(ctx: MetricContext) -> dict[str, Any]:
    from progan_zoo.metrics.swd import SWD

    swd: SWD | None = None
    seen = 0
    for batch in ctx.real_batches(2 * ctx.num):
        if swd is None:
            swd = SWD(batch.shape[-1], device=ctx.torch_device, seed=ctx.seed)
        # first half -> "real", second half -> "fake"
        cut = max(0, min(batch.shape[0], ctx.num - seen))
        if cut:
            swd.update_real(batch[:cut])
        if cut < batch.shape[0]:
            swd.update_fake(batch[cut:])
        seen += batch.shape[0]
    assert swd is not None
    out: dict[str, Any] = swd.compute()
    out["settings"] = {"num_real": swd.num_real, "num_fake": swd.num_fake, "seed": ctx.seed, "levels": swd.levels}
    return out


def _fidelity(ctx: MetricContext, which: str) -> dict[str, Any]:
    # FID and KID come from one torch-fidelity pass when both are requested with the same count.
    key = f"fidelity-{ctx.num}"
    if key not in ctx.shared:
        from progan_zoo.metrics.fid import fid_kid

        counts = ctx.options.get("counts") or {}
        wanted = [m for m in ("fid", "kid") if m in ctx.requested and counts.get(m, ctx.num) == ctx.num] or [which]
        ctx.shared[key] = fid_kid(
            ctx.need_generator(which),
            ctx.real_stream(),  # exactly num images, so they are taken in stream order
            num=ctx.num,
            metrics=wanted,
            seed=ctx.seed,
            device=ctx.torch_device,
            batch_size=ctx.batch_size,
            weights_path=ctx.options.get("fid_weights"),
        )
    res = ctx.shared[key]
    if which == "fid":
        return {"fid": res["fid"], "settings": res["settings"]}
    return {"kid_mean": res["kid_mean"], "kid_std": res["kid_std"], "settings": res["settings"]}


@METRICS.register("fid", "Frechet Inception distance (torch-fidelity, inception-v3-compat, pool_3)")
def _fid(ctx: MetricContext) -> dict[str, Any]:
    return _fidelity(ctx, "fid")


@METRICS.register("kid", "kernel Inception distance (torch-fidelity, inception-v3-compat, pool_3)")
def _kid(ctx: MetricContext) -> dict[str, Any]:
    return _fidelity(ctx, "kid")


@METRICS.register("is", "Inception Score: not available offline (no classifier head in the weights)")
def _is(ctx: MetricContext) -> dict[str, Any]:
    from progan_zoo.metrics.fid import inception_score

    return inception_score(ctx)


@METRICS.register("msssim", "mean MS-SSIM of pairs of generated images (variation; paper, Sec. 5)")
def _msssim(ctx: MetricContext) -> dict[str, Any]:
    import torch

    from progan_zoo.metrics.msssim import ms_ssim_pairs

    # The official API scores num_images / 2 pairs: images (0, 1), (2, 3), ... of distinct latents.
    pairs = int(ctx.options.get("msssim_pairs") or max(1, ctx.num // 2))
    g = ctx.need_generator("msssim")

    def batches() -> Iterable[torch.Tensor]:
        yield from ctx.fake_batches(2 * pairs, seed=ctx.seed + 1)

    value = ms_ssim_pairs(batches(), device=ctx.torch_device)
    return {"msssim": value, "settings": {"pairs": pairs, "seed": ctx.seed + 1, "resolution": getattr(g, "resolution", None)}}
