"""``evaluate``: run several registered metrics on one generator and format the results (the CLI's
``progan-zoo evaluate`` calls this; it only loads the target and the data)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from progan_zoo.errors import UserError
from progan_zoo.metrics.reals import RealStream, is_indexable
from progan_zoo.metrics.registry import METRICS, OFFICIAL_NUM_IMAGES, MetricContext, calc_metric, report_metric


def metric_counts(metrics: Sequence[str], num: int | Mapping[str, int] | None) -> dict[str, int]:
    """Images per metric: one number for all, or a mapping whose missing metrics take the official count
    (SWD 16384, FID 50000, MS-SSIM 20000 images = 10,000 pairs; ``OFFICIAL_NUM_IMAGES``)."""
    out = {}
    for name in metrics:
        if num is None or isinstance(num, Mapping):
            n = (num or {}).get(name, OFFICIAL_NUM_IMAGES.get(name))
            if n is None:
                raise UserError(f"metric {name!r} has no official image count; give one (num={{{name!r}: N}})")
        else:
            n = num
        if int(n) < 1:
            raise UserError(f"metric {name!r}: {n} images; give at least 1")
        out[name] = int(n)
    return out


def reals_needed(counts: Mapping[str, int]) -> int:
    """Length of the real stream the metrics read: the largest count, twice SWD's for its real-vs-real floor
    (the official second real pass continues the stream)."""
    return max([2 * n if m == "swd_noise_floor" else n for m, n in counts.items()] or [0])


class UpsampledGenerator(torch.nn.Module):
    """G's images nearest-upsampled to ``resolution``: how the official code scores a snapshot taken before
    the last stage (its G always outputs the final size, a lower level of detail upscaled by 2**lod)."""

    def __init__(self, generator: Any, resolution: int) -> None:
        super().__init__()
        own = int(generator.resolution)
        if resolution % own or resolution < own:
            raise UserError(f"cannot upsample {own}x{own} images to {resolution}x{resolution} (not a multiple)")
        self.generator, self.resolution, self.factor = generator, int(resolution), resolution // own
        self.z_dim = generator.z_dim
        self.image_channels = getattr(generator, "image_channels", None)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.generator(z)                                                   # [NCHW] at G's resolution
        if self.factor == 1:
            return x
        return x.repeat_interleave(self.factor, dim=2).repeat_interleave(self.factor, dim=3)  # [NCHW] final


def _as_source(real: Any, limit: int) -> Any:
    """An indexable real source: tensors, arrays and datasets pass through; an iterable of batches is read
    once (up to ``limit`` images) into a tensor so that every metric sees the same images."""
    if real is None or is_indexable(real):
        return real
    from progan_zoo.metrics.batches import iter_batches

    batches = [b.cpu() for b in iter_batches(real, limit=limit)]
    if not batches:
        raise UserError("the real data gave no images")
    return torch.cat(batches)


def evaluate(
    generator: Any,
    metrics: Sequence[str],
    num: int | Mapping[str, int] | None,
    real: Any = None,
    out_json: str | os.PathLike | None = None,
    seed: int = 0,
    *,
    device: torch.device | str | None = None,
    batch_size: int = 64,
    run_dir: str | os.PathLike | None = None,
    msssim_pairs: int | None = None,
    fid_weights: str | os.PathLike | None = None,
    swd_method: str = "auto",
    log_extra: dict[str, Any] | None = None,
    mirror: bool = False,
    resolution: int | None = None,
    real_order: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Evaluate ``generator`` (``G(z) -> [-1, 1]``, ``G.z_dim``, ``G.resolution``) as the official
    ``evaluate_metrics`` does.

    ``num``: images per metric, generated and real: one number for all, or ``{metric: count}`` (missing
    metrics and ``None`` take the official counts); MS-SSIM scores ``count / 2`` pairs unless ``msssim_pairs``
    is given; the real-vs-real floor reads ``2 x count`` reals. ``real``: uint8 images (tensor or array
    [N, C, H, W], map-style dataset or iterable of NCHW batches), read as one stream (``RealStream``): in
    order (or ``real_order``), cycled when a metric asks for more images than there are, each position
    mirrored with probability 1/2 when ``mirror`` (set it when the run trained with mirror augmentation).
    ``resolution``: score G's output nearest-upsampled to this size (a run before its last stage).
    Every result is appended to ``<run_dir>/metrics.jsonl`` when ``run_dir`` is given, and the returned dict
    is written to ``out_json``. Returns ``{metric: {name: value}}`` (or ``{"unavailable": reason}``) plus
    ``settings`` and ``time``.
    """
    names = [m.strip().lower() for m in metrics if m.strip()]
    for name in names:
        METRICS.get(name)  # fail before any work, listing the known names
    counts = metric_counts(names, num)
    need = reals_needed(counts)
    source = _as_source(real, need)
    stream = None if source is None else RealStream(source, max(need, 1), order=real_order, mirror=mirror, seed=seed)
    if resolution is not None and generator is not None and int(resolution) != int(generator.resolution):
        generator = UpsampledGenerator(generator, int(resolution))
    base = MetricContext(
        generator=generator,
        real=stream,
        num=max(counts.values() or [1]),
        seed=int(seed),
        device=device,
        batch_size=int(batch_size),
        options={"msssim_pairs": msssim_pairs, "fid_weights": fid_weights, "swd_method": swd_method,
                 "counts": counts},
        requested=tuple(names),
    )
    from progan_zoo.metrics.fid import MetricUnavailable

    out: dict[str, Any] = {}
    single = len(set(counts.values())) == 1
    settings: dict[str, Any] = {
        "num": next(iter(counts.values())) if single else None, "num_images": counts, "seed": int(seed),
        "device": str(base.torch_device), "mirror": bool(mirror), "per_metric": {},
        "resolution": int(generator.resolution) if generator is not None else None,
    }
    if stream is not None:
        settings["real_images"] = stream.num_source
    times: dict[str, float] = {}
    for name in names:
        ctx = dataclasses.replace(base, num=counts[name])  # `shared` stays one dict: FID and KID share a pass
        try:
            record = calc_metric(name, ctx)
        except MetricUnavailable as e:
            out[name] = {"unavailable": str(e)}
            continue
        out[name] = record["results"]
        settings["per_metric"][name] = record["settings"]
        times[name] = record["total_time"]
        report_metric(record, run_dir, **(log_extra or {}))
    out["settings"] = settings
    out["time"] = times
    if out_json is not None:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return out


def format_table(results: dict[str, Any]) -> str:
    """A two-column text table (metric, value) of ``evaluate``'s result, one row per number."""
    rows: list[tuple[str, str]] = []
    for metric, values in results.items():
        if metric in ("settings", "time") or not isinstance(values, dict):
            continue
        if "unavailable" in values:
            rows.append((metric, f"unavailable: {values['unavailable']}"))
            continue
        for key, value in values.items():
            rows.append((key, f"{value:.4f}" if isinstance(value, float) else str(value)))
    width = max([len("metric")] + [len(k) for k, _ in rows])
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    settings = results.get("settings", {})
    if settings:
        counts = settings.get("num_images") or {}
        per_side = (f"{settings['num']} images" if settings.get("num") is not None
                    else ", ".join(f"{m} {n}" for m, n in counts.items()) + " images")
        lines.append(f"({per_side} per side, seed {settings.get('seed')}, {settings.get('device')})")
    return "\n".join(lines)
