"""``evaluate``: run several registered metrics on one generator and format the results (the CLI's
``progan-zoo evaluate`` calls this; it only loads the target and the data)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch

from progan_zoo.metrics.registry import METRICS, MetricContext, calc_metric, report_metric


def _materialize_once(real: Any, limit: int) -> Any:
    """A one-shot iterator (e.g. a generator of batches) is read once into a tensor so that every metric
    sees the same images; tensors, datasets and re-iterable loaders pass through."""
    if real is None or isinstance(real, (torch.Tensor, torch.utils.data.Dataset)):
        return real
    if iter(real) is not real:
        return real
    from progan_zoo.metrics.swd import iter_batches

    return torch.cat([b.cpu() for b in iter_batches(real, limit=limit)])


def evaluate(
    generator: Any,
    metrics: Sequence[str],
    num: int,
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
) -> dict[str, Any]:
    """Evaluate ``generator`` (``G(z) -> [-1, 1]``, ``G.z_dim``, ``G.resolution``) with the named metrics.

    ``real``: uint8 images (tensor [N, C, H, W], map-style dataset or iterable of NCHW batches); ``num``:
    images per side (SWD, FID, KID; the real-vs-real floor uses 2 x num real images); MS-SSIM uses
    ``msssim_pairs`` pairs (default 10,000, the paper's). Every result is appended to
    ``<run_dir>/metrics.jsonl`` when ``run_dir`` is given, and the returned dict is written to ``out_json``.
    Returns ``{metric: {name: value}}`` (or ``{"unavailable": reason}``) plus ``settings`` and ``time``.
    """
    names = [m.strip().lower() for m in metrics if m.strip()]
    for name in names:
        METRICS.get(name)  # fail before any work, listing the known names
    need = 2 * num if "swd_noise_floor" in names else num
    ctx = MetricContext(
        generator=generator,
        real=_materialize_once(real, need),
        num=int(num),
        seed=int(seed),
        device=device,
        batch_size=int(batch_size),
        options={"msssim_pairs": msssim_pairs, "fid_weights": fid_weights, "swd_method": swd_method},
        requested=tuple(names),
    )
    from progan_zoo.metrics.fid import MetricUnavailable

    out: dict[str, Any] = {}
    settings: dict[str, Any] = {"num": int(num), "seed": int(seed), "device": str(ctx.torch_device), "per_metric": {}}
    times: dict[str, float] = {}
    for name in names:
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
        lines.append(f"({settings.get('num')} images per side, seed {settings.get('seed')}, {settings.get('device')})")
    return "\n".join(lines)
