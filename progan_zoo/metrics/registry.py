"""Metric registry: name -> function, and the run's metrics log (the context a metric gets: context.py).

Like stylegan2-ada's metric_main: every metric is a function of one context (generator, real data, counts,
seed, device) returning a dict of numbers and settings; ``calc_metric`` times it and ``report_metric``
appends one JSON line per result to ``<run dir>/metrics.jsonl``, so a training run's log shows quality
over time. Unknown names raise an error that lists the registered ones (mmengine-style).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterable

from progan_zoo.metrics.context import MetricContext, generator_device  # noqa: F401  (their old home; re-exported)
from progan_zoo.registry import Registry, UnknownNameError

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
