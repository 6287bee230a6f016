"""Datasets: built-in digits and faces, multi-resolution caches, and the real-image loader."""

from .builtin import BUILTINS, load_builtin
from .cache import create_cache, list_images, load_images, read_manifest
from .dataset import ImageSet, RealLoader, open_dataset
from .images import box_downsample, downsample_to, iter_levels

__all__ = [
    "BUILTINS", "ImageSet", "RealLoader", "box_downsample", "create_cache", "downsample_to", "iter_levels",
    "list_images", "load_builtin", "load_images", "open_dataset", "read_manifest",
]
