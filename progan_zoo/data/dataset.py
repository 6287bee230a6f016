"""Real images for training: open a built-in name, a cache folder, or a folder/zip of images,
and draw global minibatches at any power-of-two resolution.

Sampling is a pure function of (seed, epoch, position): each epoch is a fresh permutation from
``np.random.default_rng([seed, epoch])``, and the mirror flips of that epoch come from
``default_rng([seed, epoch, 1])``. The sampler's whole state is two integers, so a resumed run
draws the same images, and every rank of a distributed run draws the same *global* minibatch and
keeps the samples ``rank, rank + W, rank + 2W, ...`` (so minibatch-stddev groups, which take
sample ``i`` into group ``i % M``, hold the same images as in a single process).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from progan_zoo.errors import UserError

from .builtin import BUILTINS, load_builtin
from .cache import level_file, list_images, load_images, read_manifest
from .labels import Labels, builtin_labels, folder_labels, read_cache_labels
from .images import is_power_of_two, iter_levels, match_channels


class ImageSet:
    """uint8 images [N, C, r, r] at every power-of-two resolution from 4 up to ``resolution``."""

    def __init__(self, levels: dict[int, np.ndarray], name: str, labels: Labels | None = None) -> None:
        self._levels = levels
        self.name = name
        self.labels = labels          # class labels, for conditional training (labels.py)
        self.resolution = max(levels)
        self.channels = levels[self.resolution].shape[1]

    def __len__(self) -> int:
        return len(self._levels[self.resolution])

    def level(self, resolution: int) -> np.ndarray:
        if resolution not in self._levels:
            raise ValueError(f"{self.name}: no {resolution}x{resolution} level; have {sorted(self._levels)}")
        return self._levels[resolution]

    @property
    def resolutions(self) -> list[int]:
        return sorted(self._levels)


def open_dataset(source: str | Path, resolution: int, channels: int, progress: bool = True,
                 crop: str | None = None, labels: bool = False) -> ImageSet:
    """Open a built-in name (``mnist``, ``lfw-100``), a cache folder (has manifest.json), or a folder/zip
    of images, served at ``resolution`` and every power of two below it down to 4.

    ``crop`` (a spec's ``data.crop``): how a folder or zip is cropped (default ``center``); a cache made
    with another ``--crop`` is an error. ``None`` accepts any cache.

    Labels come with a built-in that has them and a cache made with ``--labels``; ``labels=True``
    (a conditional spec) also reads a folder's or zip's class folders."""
    if not is_power_of_two(resolution) or resolution < 4:
        raise UserError(f"data resolution {resolution}: must be a power of two >= 4")
    text = str(source)
    path = Path(text)
    if text in BUILTINS and not path.exists():
        images = match_channels(load_builtin(text), channels, text)
        return ImageSet(_levels_from(images, resolution, text), text, builtin_labels(text))
    if path.is_dir() and (path / "manifest.json").exists():
        return _open_cache(path, resolution, channels, crop)
    if path.is_dir() or path.suffix.lower() == ".zip":
        images = load_images(path, resolution, channels, crop=crop or "center", progress=progress)
        classes = folder_labels(path, list_images(path).names) if labels else None
        return ImageSet(_levels_from(images, resolution, text), text, classes)
    raise UserError(f"{text}: not a built-in dataset, a dataset cache, an image folder or a zip "
                    f"(hint: use one of {', '.join(BUILTINS)}, or make a cache with progan-zoo dataset)")


def _levels_from(images: np.ndarray, resolution: int, name: str) -> dict[int, np.ndarray]:
    native = images.shape[-1]
    if native < resolution:
        raise UserError(f"{name}: images are {native}x{native}, smaller than the {resolution}x{resolution} asked for "
                        "(hint: train a spec whose data.resolution is at most the data's size)")
    levels = {}
    for res, level in iter_levels(images, lowest=4):
        if res <= resolution:
            level.setflags(write=False)
            levels[res] = level
    return levels


def _open_cache(path: Path, resolution: int, channels: int, crop: str | None = None) -> ImageSet:
    manifest = read_manifest(path)
    if crop is not None and manifest.get("crop", "center") != crop:
        raise UserError(f"{path}: the cache was made with --crop {manifest.get('crop', 'center')}, the spec's "
                        f"data.crop is {crop} (hint: re-create it with progan-zoo dataset --crop {crop})")
    if manifest["channels"] != channels:
        raise UserError(f"{path}: the cache has {manifest['channels']} channel(s), the spec wants {channels} "
                        f"(hint: re-create it with --channels {channels})")
    if manifest["resolution"] < resolution:
        raise UserError(f"{path}: the cache goes up to {manifest['resolution']}px, the spec needs {resolution}px "
                        f"(hint: re-create it with --resolution {resolution})")
    levels = {}
    res = resolution
    while res >= 4:
        file = path / manifest["levels"].get(str(res), level_file(res))
        try:
            levels[res] = np.load(file, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise UserError(f"{file}: cannot open the {res}px level ({exc.__class__.__name__}) "
                            "(hint: re-create the cache with progan-zoo dataset)") from None
        want = (manifest.get("count"), channels, res, res)
        if levels[res].shape != want or levels[res].dtype != np.uint8:
            # A level that does not match the manifest (a copy cut short, a file from another cache).
            raise UserError(f"{file}: holds {levels[res].dtype} {list(levels[res].shape)}, the manifest says uint8 "
                            f"{list(want)} (hint: re-create the cache with progan-zoo dataset)")
        res //= 2
    return ImageSet(levels, str(path), read_cache_labels(path, manifest, int(manifest["count"])))


class RealLoader:
    """Draws real minibatches, epoch by epoch, with optional mirror augmentation."""

    def __init__(self, images: ImageSet, seed: int, mirror: bool = False) -> None:
        self.images, self.seed, self.mirror = images, int(seed), bool(mirror)
        self.epoch, self.position = 0, 0
        self._cache: tuple[int, np.ndarray, np.ndarray] | None = None

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is None or self._cache[0] != epoch:
            n = len(self.images)
            order = np.random.default_rng([self.seed, epoch]).permutation(n)
            flips = np.random.default_rng([self.seed, epoch, 1]).random(n) < 0.5
            self._cache = (epoch, order, flips)
        return self._cache[1], self._cache[2]

    def next_indices(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """The next global minibatch: image indices and mirror flags, advancing the state."""
        idx, flip = [], []
        while batch > 0:
            order, flips = self._epoch(self.epoch)
            take = min(batch, len(order) - self.position)
            idx.append(order[self.position:self.position + take])
            flip.append(flips[self.position:self.position + take])
            self.position += take
            batch -= take
            if self.position == len(order):
                self.epoch, self.position = self.epoch + 1, 0
        return np.concatenate(idx), np.concatenate(flip)

    def next(self, resolution: int, batch: int, rank: int = 0, world: int = 1) -> np.ndarray:
        """uint8 [batch // world, C, r, r]: this rank's share (samples rank, rank+W, ...) of the next global minibatch."""
        return self.next_labeled(resolution, batch, rank, world)[0]

    def next_labeled(self, resolution: int, batch: int, rank: int = 0,
                     world: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
        """``next`` and the class indices int64 [batch // world] of those images (None without labels)."""
        idx, flip = self.next_indices(batch)
        idx, flip = idx[rank::world], flip[rank::world]
        x = self.images.level(resolution)[idx]                  # [NCHW]
        if self.mirror:
            x = np.where(flip[:, None, None, None], x[..., ::-1], x)
        labels = self.images.labels
        return np.ascontiguousarray(x), (labels.indices[idx] if labels is not None else None)

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position, "mirror": self.mirror}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.epoch, self.position = int(state["seed"]), int(state["epoch"]), int(state["position"])


def real_images(data: str, resolution: int, channels: int, seed: int = 0, crop: str | None = None
                ) -> tuple[Any, np.ndarray]:
    """(uint8 [N, C, R, R] real images at ``resolution``, a seeded order of them).

    A cache level stays memory-mapped: only the images a metric reads are loaded. The order stands in for
    the official datasets' stored order (``dataset_tool.py`` writes them shuffled; our caches keep file
    order), so the first images of the stream are a random sample even of sorted data.
    """
    level = open_dataset(data, resolution, channels, progress=True, crop=crop).level(resolution)
    return level, np.random.default_rng(seed).permutation(len(level))
