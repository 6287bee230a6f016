"""Metrics of Karras et al. 2018: multi-scale SWD (as the official code computes it), MS-SSIM, and FID/KID
through torch-fidelity with offline Inception weights. Importing this package is cheap: torch-fidelity
and the metric modules load on first use."""

from __future__ import annotations

from typing import Any

from progan_zoo.metrics.registry import (
    METRICS,
    MetricContext,
    Registry,
    UnknownMetricError,
    calc_metric,
    list_metrics,
    read_metrics_log,
    report_metric,
)

__all__ = [
    "METRICS",
    "MetricContext",
    "Registry",
    "SWD",
    "UnknownMetricError",
    "calc_metric",
    "convert_fid_helper_weights",
    "evaluate",
    "fid_kid",
    "format_table",
    "list_metrics",
    "ms_ssim",
    "read_metrics_log",
    "report_metric",
    "sliced_wasserstein_distance",
    "swd_noise_floor",
]

_LAZY = {
    "SWD": "progan_zoo.metrics.swd",
    "sliced_wasserstein_distance": "progan_zoo.metrics.swd",
    "swd_noise_floor": "progan_zoo.metrics.swd",
    "fid_kid": "progan_zoo.metrics.fid",
    "convert_fid_helper_weights": "progan_zoo.metrics.inception",
    "ms_ssim": "progan_zoo.metrics.msssim",
    "evaluate": "progan_zoo.metrics.evaluate",
    "format_table": "progan_zoo.metrics.evaluate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'progan_zoo.metrics' has no attribute {name!r}")
