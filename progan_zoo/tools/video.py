"""Videos of a generator and of a run: the official smoothed latent walk, seed-to-seed slerp, a training time-lapse.

- ``smoothed_walk_latents``: the official ``util_scripts.generate_interpolation_video`` recipe (ProGAN's
  and StyleGAN's release videos): one standard-normal latent per frame and grid cell, a Gaussian filter of
  ``smoothing_sec * fps`` frames along time with wrap-around (the clip loops), then everything divided by
  its RMS so the latents have unit variance again. Official defaults: 60 s, 30 fps, 1 s smoothing, seed 1000.
- ``slerp_walk_latents``: key latents from seeds, visited in order along great circles and back to the first.
- ``timelapse_frames``: a run's ``samples/kimg-*.png`` grids in training order (the trainer draws them from
  fixed latents, so the same cell is the same latent throughout), each shown for ``hold`` frames.

``write_video`` writes MP4 (H.264 through imageio-ffmpeg, whose wheel carries ffmpeg; imageio reads it
back; both are the ``video`` extra) or GIF (Pillow, always available) by the file's suffix.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import numpy as np
import torch

from progan_zoo.data.pixels import tile
from progan_zoo.errors import UsageError, UserError
from progan_zoo.fsutil import no_half_made_dirs, replaced_atomically

from .extras import need

if TYPE_CHECKING:
    from progan_zoo.zoo.model import ZooGenerator

SUFFIXES = (".mp4", ".gif")
MACRO_BLOCK = 16   # H.264 encoders want sides divisible by 16; frames are padded (black) to that


def mp4_available() -> bool:
    """Whether the ``video`` extra (imageio with its ffmpeg) is installed: MP4, else GIF by default."""
    try:
        import imageio  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------------------ latents
def gaussian_filter_wrap(x: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Gaussian filter of [T, ...] along axis 0 with wrap-around (scipy.ndimage's ``mode='wrap'`` and
    its kernel: radius ``int(truncate * sigma + 0.5)``, weights normalized to 1). ``sigma`` 0 is a copy."""
    if sigma <= 0:
        return x.clone()
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (offsets / sigma) ** 2)
    w = w / w.sum()
    t = x.shape[0]
    flat = x.reshape(t, -1).double()
    out = torch.zeros_like(flat)
    for k, wk in zip(offsets.long().tolist(), w.tolist()):
        # roll by -k: row i reads row (i + k) mod T, i.e. periodic extension for any radius vs T
        out += wk * torch.roll(flat, shifts=-k, dims=0)
    return out.reshape(x.shape).to(x.dtype)


def smoothed_walk_latents(num_frames: int, z_dim: int, cells: int = 1, smoothing_frames: float = 30.0,
                          seed: int = 1000) -> torch.Tensor:
    """[num_frames, cells, z_dim]: the official interpolation video's latents (module docstring)."""
    if num_frames < 1:
        raise UsageError(f"a video needs at least one frame, got {num_frames}")
    rng = np.random.RandomState(seed)     # the official code's generator, so a seed gives its latents
    z = torch.from_numpy(rng.randn(num_frames, cells, z_dim).astype(np.float32))
    z = gaussian_filter_wrap(z, smoothing_frames)
    return z / z.pow(2).mean().sqrt()


def slerp_walk_latents(seeds: Sequence[int], z_dim: int, frames_per_key: int,
                       truncation: float | None = None) -> torch.Tensor:
    """[len(seeds) * frames_per_key, z_dim]: a closed slerp loop through one latent per seed."""
    from progan_zoo.zoo.images import latent_walk
    from progan_zoo.data.latents import seed_latents

    if len(seeds) < 2:
        raise UsageError("a seed walk needs at least two seeds, e.g. --seeds 0,1,2")
    return latent_walk(seed_latents(list(seeds), z_dim, truncation), frames_per_key, "slerp")


# ------------------------------------------------------------------------------------------ frames
def render_frames(G: "ZooGenerator", z: torch.Tensor, grid_cols: int | None = None, batch_size: int = 64,
                  truncation: float | None = None, seed: int = 0) -> Iterator[np.ndarray]:
    """uint8 [H, W, C] frames for latents [T, Z] or [T, cells, Z] (one grid per frame), generated in batches."""
    from progan_zoo.data.latents import truncate_latents

    if z.ndim == 2:
        z = z[:, None]
    t, cells, zd = z.shape
    flat = truncate_latents(z.reshape(t * cells, zd), truncation, seed)
    per = max(1, batch_size // cells)
    for i in range(0, t, per):
        images = G.generate(flat[i * cells: (i + per) * cells], batch_size=batch_size)   # uint8 [NCHW]
        for j in range(images.shape[0] // cells):
            yield tile(images[j * cells: (j + 1) * cells], cols=grid_cols or math.ceil(math.sqrt(cells)))


_KIMG = re.compile(r"^kimg-(\d+)\.png$")


def timelapse_sources(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(kimg, file) of a run's ``samples/kimg-*.png``, in training order; a UserError when there are none."""
    samples = Path(run_dir) / "samples"
    if not samples.is_dir():
        raise UserError(f"{run_dir}: no samples/ folder; give a run directory written by `progan-zoo train`")
    found = sorted((int(m.group(1)), p) for p in samples.iterdir() if (m := _KIMG.match(p.name)))
    if not found:
        raise UserError(f"{samples}: no kimg-*.png sample grids (the trainer writes one per snapshot)")
    return found


def timelapse_frames(run_dir: str | Path, hold: int = 1, label: bool = True) -> Iterator[np.ndarray]:
    """uint8 [H, W, 3] frames of a run's sample grids, each ``hold`` times, scaled (nearest) to the largest
    grid and, with ``label``, a strip on top saying the kimg."""
    from PIL import Image, ImageDraw

    sources = timelapse_sources(run_dir)
    sizes = []
    for _, p in sources:
        with Image.open(p) as im:
            sizes.append(im.size)
    width, height = max(s[0] for s in sizes), max(s[1] for s in sizes)
    strip = 14 if label else 0
    for kimg, p in sources:
        try:
            with Image.open(p) as im:
                im = im.convert("RGB").resize((width, height), Image.NEAREST)
        except OSError as err:
            raise UserError(f"{p}: not a readable PNG ({err}); delete it or re-run the snapshot") from None
        canvas = Image.new("RGB", (width, height + strip))
        canvas.paste(im, (0, strip))
        if label:
            ImageDraw.Draw(canvas).text((2, 1), f"{kimg} kimg", fill=(255, 255, 255))
        frame = np.asarray(canvas)
        for _ in range(hold):
            yield frame


# ------------------------------------------------------------------------------------------ files
def upscale(frame: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of a uint8 [H, W, C] frame (tiny models are unreadable at 1:1)."""
    if factor <= 1:
        return frame
    return frame.repeat(factor, axis=0).repeat(factor, axis=1)


def _rgb_padded(frame: np.ndarray) -> np.ndarray:
    if frame.shape[-1] == 1:
        frame = frame.repeat(3, axis=-1)           # grey -> RGB, as the official video code does
    h, w = frame.shape[:2]
    ph, pw = -h % MACRO_BLOCK, -w % MACRO_BLOCK
    if ph or pw:
        frame = np.pad(frame, ((0, ph), (0, pw), (0, 0)))
    return np.ascontiguousarray(frame[..., :3])


def check_suffix(path: str | Path) -> str:
    """The lower-case suffix of an output video, or a UsageError naming the choices."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"{path}: write .mp4 (needs the video extra) or .gif")
    return suffix


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float = 30.0, scale: int = 1,
                quality: int = 8) -> tuple[Path, int, tuple[int, int]]:
    """Write uint8 [H, W, C] frames as MP4 (H.264, sides padded to multiples of 16) or GIF, atomically.

    Returns the path, the frame count and the (height, width) written. ``quality`` is imageio's 0-10 scale.
    """
    path = Path(path)
    suffix = check_suffix(path)
    if not fps > 0:
        raise UsageError(f"fps must be > 0, got {fps}")
    count, size = 0, (0, 0)
    # Frames may come from a generator that refuses its input only now: no empty output folder is left.
    with no_half_made_dirs(path.parent), replaced_atomically(path) as tmp:
        if suffix == ".mp4":
            need("imageio", "video", f"writing {path.name}")
            ffmpeg = need("imageio_ffmpeg", "video", f"writing {path.name}")
            writer = None
            try:
                for f in frames:
                    f = _rgb_padded(upscale(f, scale))
                    if writer is None:
                        size = f.shape[:2]
                        # The temporary name ends in .tmp: name the container. Sides are already padded.
                        writer = ffmpeg.write_frames(str(tmp), (size[1], size[0]), fps=fps, codec="libx264",
                                                     quality=quality, pix_fmt_out="yuv420p", macro_block_size=1,
                                                     output_params=["-f", "mp4"], ffmpeg_log_level="error")
                        writer.send(None)
                    if f.shape[:2] != size:
                        raise UsageError(f"{path}: frame {count} is {f.shape[1]}x{f.shape[0]}, the first "
                                         f"{size[1]}x{size[0]}; every frame must have one size")
                    writer.send(f)
                    count += 1
            finally:
                if writer is not None:
                    writer.close()
        else:
            from PIL import Image

            pics = [Image.fromarray(np.ascontiguousarray(upscale(f, scale)[..., 0] if f.shape[-1] == 1
                                                         else upscale(f, scale)[..., :3])) for f in frames]
            if pics:
                pics[0].save(tmp, format="GIF", save_all=True, append_images=pics[1:],
                             duration=max(1, round(1000 / fps)), loop=0, optimize=False)
            count, size = len(pics), (pics[0].height, pics[0].width) if pics else (0, 0)
        if count == 0:
            raise UsageError(f"{path}: no frames to write")
    return path, count, size
