"""What torch-fidelity reads for FID and KID: images and generators as its inputs, and the cache of the
real images' Inception features (safetensors per data set, so scoring many models against one data set
runs Inception over the reals once)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from progan_zoo.data.pixels import to_uint8
from progan_zoo.fsutil import replaced_atomically

from .inception import FEATURE_LAYER, FIDError, cache_dir, package_version, weights_sha256

# ----------------------------------------------------------------------------------------------------------
# Inputs for torch-fidelity


class UInt8Images(torch.utils.data.Dataset):
    """uint8 [N, C, H, W] images as a torch-fidelity input: one [3, H, W] uint8 tensor per item."""

    def __init__(self, images: torch.Tensor):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise FIDError(f"FID/KID need uint8 images [N, 1 or 3, H, W], got {images.dtype} {tuple(images.shape)}")
        self.images = images.cpu()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[i]
        return x.expand(3, -1, -1).contiguous() if x.shape[0] == 1 else x


class _DatasetImages(torch.utils.data.Dataset):
    """A map-style dataset of uint8 [C, H, W] tensors (or (image, label) pairs), optionally a subset."""

    def __init__(self, dataset: torch.utils.data.Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.dataset[self.indices[i]]
        if isinstance(x, (tuple, list)):
            x = x[0]
        if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.dim() != 3:
            raise FIDError("FID/KID datasets must return uint8 [C, H, W] tensors")
        return x.expand(3, -1, -1).contiguous() if x.shape[0] == 1 else x


def as_fidelity_images(source: Any, num: int | None = None, seed: int = 0) -> torch.utils.data.Dataset:
    """Real images as a torch-fidelity dataset: a uint8 tensor, a map-style dataset, or an iterable of batches.

    Indexable sources with more than ``num`` images give a random subset drawn with ``seed`` (sorted data
    stays representative); iterables are read in order up to ``num`` images and held in memory.
    """
    if isinstance(source, torch.Tensor) or isinstance(source, torch.utils.data.Dataset) and hasattr(source, "__len__"):
        n = source.shape[0] if isinstance(source, torch.Tensor) else len(source)
        if num is not None and num > n:
            raise FIDError(f"asked for {num} real images, the data has {n}")
        if num is None or num == n:
            idx = torch.arange(n)
        else:
            idx = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))[:num].sort().values
        if isinstance(source, torch.Tensor):
            return UInt8Images(source[idx])
        return _DatasetImages(source, idx.tolist())
    from progan_zoo.metrics.batches import iter_batches

    batches = list(iter_batches(source, limit=num))
    if not batches:
        raise FIDError("FID/KID got no real images")
    images = torch.cat([b.cpu() for b in batches])
    if num is not None and images.shape[0] < num:
        raise FIDError(f"asked for {num} real images, the data gave {images.shape[0]}")
    return UInt8Images(images)


class GeneratorUInt8(torch.nn.Module):
    """``G(z) -> [-1, 1]`` float images wrapped to give uint8 RGB, as torch-fidelity wants.

    The conversion is the official one (out_mul = out_add = 127.5, round, saturate); greyscale is repeated.
    """

    def __init__(self, generator: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        if isinstance(generator, torch.nn.Module):
            self.generator = generator
        else:
            self._callable = generator

    def _g(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return self.generator if "generator" in self._modules else self._callable

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        g = self._g()
        dev = _module_device(g, z.device)
        x = to_uint8(g(z.to(dev)))
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return x.to(z.device)


def _module_device(g: Any, default: torch.device) -> torch.device:
    if isinstance(g, torch.nn.Module):
        for p in g.parameters():
            return p.device
        for b in g.buffers():
            return b.device
    return default


# ----------------------------------------------------------------------------------------------------------
# Real-feature cache: the real side of FID/KID is the same for every model scored against a data set, and at
# 299x299 it costs as much Inception time as the generated side. Features are stored as safetensors (never
# torch-fidelity's pickle cache), keyed by what determines them.

REALS_CACHE_ENV = "PROGAN_ZOO_FID_REALS_CACHE"  # a folder, or "off"


def reals_cache_dir() -> Path | None:
    """Where real-image features are cached: ``$PROGAN_ZOO_FID_REALS_CACHE`` ("off": nowhere), else
    ``<cache_dir()>/fid-reals``."""
    env = os.environ.get(REALS_CACHE_ENV)
    if env is not None and env.strip().lower() in _OFF_WORDS:
        return None
    return Path(env) if env else cache_dir() / "fid-reals"


_OFF_WORDS = ("off", "0", "false", "no", "none", "")
_ON_WORDS = ("on", "1", "true", "yes")


def reals_cache_folder(real_cache: bool | str | os.PathLike | None) -> Path | None:
    """The folder a ``real_cache`` argument names (None: no cache). A flag spelled as text ("False", "off",
    "true") is read as the flag, never as a folder: a "False" string once became a ``False/`` folder."""
    if real_cache is None or real_cache is True:
        return reals_cache_dir()
    if real_cache is False:
        return None
    if isinstance(real_cache, str):
        word = real_cache.strip().lower()
        if word in _OFF_WORDS:
            return None
        if word in _ON_WORDS:
            return reals_cache_dir()
    if not isinstance(real_cache, (str, os.PathLike)):
        raise TypeError(f"real_cache must be a bool, a folder or None, not {type(real_cache).__name__}")
    return Path(real_cache)


def images_fingerprint(dataset: torch.utils.data.Dataset) -> str:
    """sha256 over every item's shape and bytes, in order: two data sets share features only if equal."""
    h = hashlib.sha256()
    if isinstance(dataset, UInt8Images):
        imgs = dataset.images.expand(-1, 3, -1, -1) if dataset.images.shape[1] == 1 else dataset.images
        h.update(repr((tuple(imgs.shape), "uint8", "NCHW")).encode())
        h.update(imgs.contiguous().numpy().tobytes())
        return h.hexdigest()
    items = len(dataset)
    shape: tuple[int, ...] | None = None
    for i in range(items):
        x = dataset[i]
        if shape is None:
            shape = tuple(x.shape)
            h.update(repr(((items,) + shape, "uint8", "NCHW")).encode())
        elif tuple(x.shape) != shape:
            h.update(repr(tuple(x.shape)).encode())
        h.update(x.contiguous().numpy().tobytes())
    return h.hexdigest()


def _real_features(
    real_ds: torch.utils.data.Dataset,
    module: torch.nn.Module,
    weights: Path,
    batch_size: int,
    cuda: bool,
    verbose: bool,
    real_cache: bool | str | os.PathLike | None,
) -> tuple[dict[str, torch.Tensor], bool]:
    """pool_3 features of the reals, from the cache when present; returns (features dict, cached?)."""
    import torch_fidelity.utils as tfu
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    folder = reals_cache_folder(real_cache)
    path = None
    weights_hash, device = weights_sha256(weights), "cuda" if cuda else "cpu"
    if folder is not None:
        key = hashlib.sha256(f"{images_fingerprint(real_ds)}|{weights_hash}|{FEATURE_LAYER}|{device}".encode()).hexdigest()[:40]
        path = folder / f"{key}.safetensors"
        if path.is_file():
            try:
                feats = load_file(str(path))[FEATURE_LAYER]
                if feats.shape == (len(real_ds), 2048):
                    return {FEATURE_LAYER: feats}, True
            except (SafetensorError, OSError, KeyError, ValueError):
                pass  # unreadable: recompute and replace it
    feats_dict = tfu.get_featuresdict_from_dataset(real_ds, module, batch_size, cuda, True, verbose)
    if path is not None:
        meta = {"images": str(len(real_ds)), "weights_sha256": weights_hash, "layer": FEATURE_LAYER,
                "device": device, "torch_fidelity": str(package_version("torch-fidelity"))}
        try:
            with replaced_atomically(path) as tmp:  # a killed run never leaves a half-written cache entry
                save_file({FEATURE_LAYER: feats_dict[FEATURE_LAYER].contiguous()}, str(tmp), metadata=meta)
        except OSError as e:  # a read-only or full cache only costs time next run
            print(f"progan-zoo: could not cache real FID features in {path.parent} ({e.strerror})", file=sys.stderr)
    return {FEATURE_LAYER: feats_dict[FEATURE_LAYER]}, False
