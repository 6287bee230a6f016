"""Projection: find the latent z whose image reproduces a real image, by optimisation (cf. StyleGAN2-ADA's projector).

What is optimised and why:
- z itself (ProGAN has no w). G pixel-normalizes z (paper section 4.2), so only its direction matters;
  after every step z is put back on the sphere of radius sqrt(z_dim), where Gaussian latents live, which
  keeps the step sizes and the noise meaningful. With ``truncation=psi`` every component is then clipped to
  [-psi, psi], the support of truncated latents (``progan_zoo/data/latents.py``).
- The start is the best of ``starts`` random latents (drawn with the same truncation) under the loss.
- Loss, on images in [-1, 1] at the model's resolution: pixel MSE, plus a multi-scale structure term
  (1 - SSIM averaged over the full, half and quarter resolution; SSIM as ``metrics.msssim.ssim``), plus,
  when a discriminator is given (a folder exported ``--with-training`` holds one), the squared distance
  of D's block activations, each normalized by the target's. No network outside the model is used.
- Schedules as StyleGAN2-ADA's projector: Adam (0.9, 0.999) with learning rate ``lr`` ramped up over the
  first 5% of steps and down with a half cosine over the last 25%; Gaussian noise added to z before each
  forward pass with std ``noise * max(0, 1 - t / 0.75) ** 2`` (t = step / steps; z's components have
  unit std, SG2-ADA's w_std), so it decays to zero by three quarters of the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
import torch.nn.functional as F

from progan_zoo.errors import UserError

from .project_settings import ProjectionSettings, learning_rate, noise_scale

if TYPE_CHECKING:
    from progan_zoo.nn import Discriminator
    from progan_zoo.zoo.model import ZooGenerator

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass
class Projection:
    """What ``project`` returns: the latents, their images and the loss per image along the way."""

    latents: torch.Tensor                 # [N, Z] on the sphere of radius sqrt(Z) (clipped with truncation)
    images: torch.Tensor                  # uint8 [N, C, R, R]: G(latents)
    loss: torch.Tensor                    # [N] final loss
    history: list[float] = field(default_factory=list)   # mean loss per step
    snapshots: list[torch.Tensor] = field(default_factory=list)  # uint8 images every ``snapshot_every`` steps


# ------------------------------------------------------------------------------------------ losses
def structure_loss(x: torch.Tensor, y: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """[N]: 1 - SSIM averaged over ``scales`` resolutions (full, half, ...); x, y in [-1, 1]."""
    from progan_zoo.metrics.msssim import ssim

    total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    a, b = (x + 1) * 127.5, (y + 1) * 127.5          # SSIM's constants are for [0, 255]
    used = 0
    for _ in range(scales):
        total = total + (1 - ssim(a, b, dtype=x.dtype))
        used += 1
        if min(a.shape[-2:]) < 8:
            break
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    return total / used


class DFeatures:
    """Activations of every block of a discriminator (``D.b<res>.block``), read with forward hooks."""

    def __init__(self, D: "Discriminator", resolution: int) -> None:
        self.D = D.eval().requires_grad_(False)
        self.stage = D.stage_of(resolution)
        self._out: list[torch.Tensor] = []
        for r in D.resolutions[: self.stage + 1]:
            getattr(D, f"b{r}").block.register_forward_hook(lambda _m, _i, o: self._out.append(o))

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        self._out = []
        self.D(x, stage=self.stage)
        return list(self._out)


def make_loss(target: torch.Tensor, s: ProjectionSettings,
              D: "Discriminator | None" = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """loss(images [N, C, R, R] in [-1, 1]) -> [N] against ``target`` (same shape, [-1, 1])."""
    feats = DFeatures(D, target.shape[-1]) if D is not None and s.w_feature > 0 else None
    with torch.no_grad():
        want = feats(target) if feats else []
    scale = [w.pow(2).mean(dim=tuple(range(1, w.ndim))).clamp_min(1e-8) for w in want]

    def loss(x: torch.Tensor) -> torch.Tensor:
        out = s.w_pixel * (x - target).pow(2).mean(dim=(1, 2, 3))
        if s.w_structure:
            out = out + s.w_structure * structure_loss(x, target)
        if feats:
            got = feats(x)
            fd = sum((g - w).pow(2).mean(dim=tuple(range(1, w.ndim))) / sc for g, w, sc in zip(got, want, scale))
            out = out + s.w_feature * fd / len(got)
        return out

    return loss


# ------------------------------------------------------------------------------------------ projection
def _on_sphere(z: torch.Tensor, psi: float | None) -> torch.Tensor:
    z = z * (math.sqrt(z.shape[1]) / z.norm(dim=1, keepdim=True).clamp_min(1e-8))
    return z.clamp(-psi, psi) if psi is not None else z


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, R, R] -> float [-1, 1], the inverse of ``to_uint8`` (up to rounding)."""
    return images.float() / 127.5 - 1.0


def project(G: "ZooGenerator", images: torch.Tensor, settings: ProjectionSettings | None = None,
            D: "Discriminator | None" = None, progress: bool | None = None,
            snapshot_every: int = 0) -> Projection:
    """Latents for uint8 ``images`` [N, C, R, R] (R = the model's resolution, C its channels).

    Each image has its own latent; they are optimised together (Adam is per element, so the images do not
    interact). ``progress``: a tqdm bar (None: only on a terminal). ``snapshot_every`` > 0 keeps the images
    every that many steps (for a video of the optimisation). See the module docstring for the method.
    """
    from tqdm.auto import tqdm

    from progan_zoo.data.pixels import to_uint8
    from progan_zoo.data.latents import truncate_latents

    s = (settings or ProjectionSettings()).check()
    if images.ndim != 4 or tuple(images.shape[1:]) != (G.image_channels, G.resolution, G.resolution):
        raise UserError(f"projection needs uint8 images [N, {G.image_channels}, {G.resolution}, {G.resolution}] "
                        f"for {G.name}, got {list(images.shape)}")
    device = G.device
    target = to_model_range(images).to(device)                                  # [NCHW]
    loss_fn = make_loss(target, s, D.to(device) if D is not None else None)
    n = images.shape[0]
    gen = torch.Generator().manual_seed(int(s.seed))

    # Start: the best of `starts` random latents per image.
    with torch.no_grad():
        best = torch.full((n,), float("inf"), device=device)
        z0 = torch.zeros(n, G.z_dim, device=device)
        for k in range(s.starts):
            cand = torch.randn(n, G.z_dim, generator=gen)
            cand = _on_sphere(truncate_latents(cand, s.truncation, s.seed * 7919 + k), s.truncation).to(device)
            lk = loss_fn(G(cand))
            better = lk < best
            best = torch.where(better, lk, best)
            z0[better] = cand[better]

    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=s.lr, betas=(0.9, 0.999))
    result = Projection(latents=z0, images=to_uint8(G(z0)).cpu(), loss=best.cpu())
    bar = tqdm(range(s.steps), desc=f"project {n} image(s)", unit="step", disable=(not progress) if progress is not None else None,
               leave=False)
    for step in bar:
        t = step / max(1, s.steps)
        for group in opt.param_groups:
            group["lr"] = learning_rate(t, s)
        noisy = z + torch.randn(z.shape, generator=gen).to(device) * noise_scale(t, s)
        per_image = loss_fn(G(noisy))
        opt.zero_grad(set_to_none=True)
        per_image.sum().backward()
        opt.step()
        with torch.no_grad():
            z.copy_(_on_sphere(z, s.truncation))
        result.history.append(float(per_image.detach().mean()))
        if snapshot_every and step % snapshot_every == 0:
            with torch.no_grad():
                result.snapshots.append(to_uint8(G(z)).cpu())
        bar.set_postfix(loss=f"{result.history[-1]:.4f}")
    with torch.no_grad():
        final = z.detach()
        x = G(final)
        result.latents, result.images, result.loss = final.cpu(), to_uint8(x).cpu(), loss_fn(x).cpu()
    return result


# ------------------------------------------------------------------------------------------ scores
def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N] PSNR in dB between uint8 image batches (peak 255); identical images give inf."""
    mse = (a.double() - b.double()).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(255.0 ** 2 / mse)


def ssim_u8(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N] SSIM between uint8 image batches (``metrics.msssim.ssim``: Gaussian 11x11 window, sigma 1.5)."""
    from progan_zoo.metrics.msssim import ssim

    return ssim(a, b)


def best_random_baseline(G: "ZooGenerator", images: torch.Tensor, n: int = 1000, seed: int = 0,
                         truncation: float | None = None, batch_size: int = 250) -> torch.Tensor:
    """uint8 [N, C, R, R]: for each image, the one of ``n`` seeded random samples with the lowest pixel MSE."""
    target = images.double()
    best = torch.full((images.shape[0],), float("inf"), dtype=torch.float64)
    out = torch.zeros_like(images)
    for i in range(0, n, batch_size):
        z = G.latents(min(batch_size, n - i), seed=seed * 100_003 + i, truncation=truncation)
        cand = G.generate(z)                                                    # [B C R R] uint8
        d = (target[:, None] - cand[None].double()).pow(2).mean(dim=(2, 3, 4))  # [N, B]
        m, j = d.min(dim=1)
        better = m < best
        best = torch.where(better, m, best)
        out[better] = cand[j[better]]
    return out


# ------------------------------------------------------------------------------------------ files
def read_images(paths: list[str | Path], resolution: int, channels: int) -> tuple[torch.Tensor, list[str]]:
    """uint8 [N, channels, R, R] from image files or folders of them (centre-cropped square, Lanczos-resized)."""
    from PIL import Image

    from progan_zoo.data.images import match_channels

    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UserError(f"{p}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"{p}: no such file or folder")
    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                im = im.convert("L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB")
        except OSError as err:
            raise UserError(f"{f}: not a readable image ({err})") from None
        side = min(im.size)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        im = im.crop((left, top, left + side, top + side))
        if side != resolution:
            im = im.resize((resolution, resolution), Image.LANCZOS)
        a = np.asarray(im)
        # Each image to the model's channels before they are stacked: a folder may mix grey and colour.
        out.append(match_channels((a[None] if a.ndim == 2 else a.transpose(2, 0, 1))[None], channels, str(f))[0])
    return torch.from_numpy(np.ascontiguousarray(np.stack(out))), [f.stem for f in files]


def load_discriminator(folder: str | Path, G: "ZooGenerator") -> "Discriminator | None":
    """The D stored in a saved model folder (``D.*`` tensors, from ``export --with-training``), or None."""
    from progan_zoo.zoo.records import is_model_folder, read_metadata
    from progan_zoo.zoo.sources.folder import open_saved

    folder = Path(folder)
    if not is_model_folder(folder) or "D" not in read_metadata(folder).weights_contents:
        return None
    # The folder's raw D, read and verified as export reads it (the spec compiled once, by compile_spec).
    return open_saved(folder, with_training=True).D.to(G.device)


def write_outputs(out: str | Path, G: "ZooGenerator", targets: torch.Tensor, names: list[str], result: Projection,
                  settings: ProjectionSettings, video: str | None = None, fps: float = 12.0) -> dict:
    """DIR/latents.safetensors (``z`` [N, Z], names and settings in its metadata), DIR/reconstructions/NAME.png,
    DIR/grid.png (target | reconstruction per row), DIR/scores.json (PSNR, SSIM, loss per image) and, with
    ``video``, DIR/<video> (targets above the reconstruction at every snapshot). Returns the scores."""
    import json
    from dataclasses import asdict

    from progan_zoo.data.pixels import tile
    from progan_zoo.fsutil import replaced_atomically
    from progan_zoo.zoo.images import to_pil
    from progan_zoo.zoo.weights import save_tensors

    out = Path(out)
    (out / "reconstructions").mkdir(parents=True, exist_ok=True)
    meta = {"model": G.name, "source": str(G.source), "resolution": str(G.resolution),
            "names": json.dumps(names), "settings": json.dumps(asdict(settings))}
    save_tensors({"z": result.latents}, out / "latents.safetensors", metadata=meta)
    for name, img in zip(names, result.images):
        with replaced_atomically(out / "reconstructions" / f"{name}.png") as tmp:
            to_pil(tile(img[None], 1)).save(tmp, format="PNG")
    pairs = torch.stack([targets, result.images], 1).reshape(-1, *targets.shape[1:])   # t0 r0 t1 r1 ...
    with replaced_atomically(out / "grid.png") as tmp:
        to_pil(tile(pairs, cols=2, pad=1, border=True)).save(tmp, format="PNG")
    p, s = psnr(result.images, targets), ssim_u8(result.images, targets)
    scores = {"model": G.name, "images": [
        {"name": n, "psnr": float(a), "ssim": float(b), "loss": float(c)}
        for n, a, b, c in zip(names, p, s, result.loss)],
        "mean_psnr": float(p[torch.isfinite(p)].mean()) if torch.isfinite(p).any() else float("inf"),
        "mean_ssim": float(s.mean()), "settings": asdict(settings)}
    with replaced_atomically(out / "scores.json") as tmp:
        tmp.write_text(json.dumps(scores, indent=2) + "\n")
    if video:
        from .video import write_video

        cols = min(8, targets.shape[0])
        frames = (tile(torch.cat([targets, snap]), cols=cols, pad=1) for snap in result.snapshots + [result.images])
        write_video(frames, out / video, fps=fps, scale=max(1, 256 // (cols * G.resolution)))
    return scores
