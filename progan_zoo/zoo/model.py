"""What ``load`` returns: a generator at one resolution that samples images ready to save."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from progan_zoo.data.latents import latents
from progan_zoo.data.pixels import to_uint8
from progan_zoo.errors import UserError
from progan_zoo.nn import Generator

from .hubmixin import HubMixin

if TYPE_CHECKING:
    from .records import ModelMetadata


def random_labels(z: torch.Tensor, label_size: int) -> torch.Tensor:
    """Uniform random class indices [N] for a batch of latents ``z``, seeded by the batch's values: the
    same batch gets the same classes on any device."""
    digest = hashlib.sha256(z.detach().float().cpu().numpy().tobytes()).digest()
    gen = torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") & (2 ** 63 - 1))
    return torch.randint(label_size, (len(z),), generator=gen)


class ZooGenerator(HubMixin, nn.Module):
    """A trained generator at one resolution, with its spec and metadata.

    - ``G(z)``: ``z`` is ``[N, z_dim]``; returns float images ``[N, C, R, R]`` in nominal [-1, 1]
      (the network's raw output, not clamped), as the architecture contract defines.
    - ``G.sample(n, seed=0, truncation=None)``: uint8 ``[N, C, R, R]`` in [0, 255], ready for
      ``torchvision.io.write_png(img[i], path)``; ``dtype=torch.float32`` gives [0, 1] floats for
      ``torchvision.utils.save_image``. The same seed gives the same images.
    - ``.resolution``, ``.z_dim``, ``.image_channels``, ``.spec`` (the validated spec),
      ``.spec_text`` (the exact file), ``.metadata`` (its ``ModelMetadata`` record), ``.name``.
    - ``.at_resolution(r)``: the lower-resolution generator inside this one.
    - Conditional models (``.label_size`` > 0, ``.class_names``): ``G(z, labels=...)`` and
      ``G.sample(n, labels=...)`` take class indices, class names or one-hot rows (see ``labels``);
      ``sample`` without labels cycles through the classes (image i is class i mod label_size).
    - ``save_pretrained(dir)``, ``ZooGenerator.from_pretrained(dir_or_repo_id)``, ``push_to_hub(repo_id)``:
      huggingface_hub's ``PyTorchModelHubMixin`` conventions (``hubmixin.py``).
    """

    def __init__(self, G: Generator, spec: Any, spec_text: str, metadata: "ModelMetadata",
                 alpha: float = 1.0, source: str = "") -> None:
        super().__init__()
        self.G = G.eval().requires_grad_(False)
        self.spec = spec
        self.spec_text = spec_text
        self.metadata = metadata
        self.alpha = float(alpha)   # < 1 only for a model exported in the middle of a fade-in
        self.source = source        # where it was loaded from: folder path or hf-hub id

    # -- properties ----------------------------------------------------------------------------
    @property
    def resolution(self) -> int:
        return self.G.resolution

    @property
    def resolutions(self) -> list[int]:
        """Resolutions available through ``at_resolution``."""
        return list(self.G.resolutions)

    @property
    def stage(self) -> int:
        return self.G.num_stages - 1

    @property
    def num_stages(self) -> int:
        return self.G.num_stages

    def stage_of(self, resolution: int) -> int:
        return self.G.stage_of(resolution)

    @property
    def z_dim(self) -> int:
        return self.G.z_dim

    @property
    def image_channels(self) -> int:
        return self.G.image_channels

    @property
    def name(self) -> str:
        return str(self.metadata.name or self.spec.name)

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    def __repr__(self) -> str:
        return (f"ZooGenerator(name={self.name!r}, resolution={self.resolution}, z_dim={self.z_dim}, "
                f"channels={self.image_channels}, source={self.source!r})")

    # -- sampling --------------------------------------------------------------------------------
    @property
    def label_size(self) -> int:
        """Classes of a conditional model; 0 when unconditional."""
        return self.G.label_size

    @property
    def class_names(self) -> list[str]:
        """Class names in label order (the spec's, else the indices as text); [] when unconditional."""
        return self.spec.class_names()

    def labels(self, labels: Any, n: int) -> torch.Tensor | None:
        """Labels for ``n`` images as class indices [n] (or one-hot rows [n, L] passed through).

        ``labels``: None (classes in turn: image i gets class i mod L), one class (index or name)
        for every image, or a list / tensor of n of them. None for an unconditional model, which
        refuses labels.
        """
        if not self.label_size:
            if labels is not None:
                raise UserError(f"{self.name} is unconditional: it takes no labels or classes")
            return None
        if labels is None:
            return torch.arange(n) % self.label_size
        if torch.is_tensor(labels):
            return labels if labels.dim() == 2 else labels.long().expand(n) if labels.dim() == 0 else labels.long()
        items = [labels] * n if isinstance(labels, (int, str)) else list(labels)
        if len(items) != n:
            raise UserError(f"{len(items)} labels for {n} images: give one class, or one per image")
        return torch.tensor([self.class_index(x) for x in items], dtype=torch.long)

    def class_index(self, cls: int | str) -> int:
        """A class given by index (int or digits) or by name -> its index."""
        names = self.class_names
        if isinstance(cls, str) and cls in names:
            return names.index(cls)
        if isinstance(cls, int) or (isinstance(cls, str) and cls.strip().isdigit()):
            i = int(cls)
            if 0 <= i < self.label_size:
                return i
        raise UserError(f"{self.name}: unknown class {cls!r}; give an index 0..{self.label_size - 1} or one of "
                        f"{', '.join(names)}")

    def forward(self, z: torch.Tensor, stage: int | None = None, alpha: float | None = None,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        """[N, z_dim] -> [N, C, R, R] in nominal [-1, 1] (not clamped).

        A conditional model without ``labels`` draws its classes uniformly at random, the same ones for the
        same ``z`` (``random_labels``; the official evaluation feeds random labels too), so metrics that
        call ``G(z)`` batch by batch see every class equally often.
        ``stage``/``alpha`` follow the Generator contract (``G(z, stage, alpha)``) so code written for
        the compiler's networks accepts this object; by default the model's own stage and fade weight.
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}], got {list(z.shape)}")
        if alpha is None:
            alpha = self.alpha if stage is None or stage == self.stage else 1.0
        if self.label_size and labels is None:
            labels = random_labels(z, self.label_size)
        if labels is not None:
            labels = labels.to(self.device)
        return self.G(z.to(self.device), stage=stage, alpha=alpha, labels=labels)

    def latents(self, n: int, seed: int | None = 0, truncation: float | None = None) -> torch.Tensor:
        """The latents ``sample(n, seed, truncation=...)`` uses: [n, z_dim] on the CPU."""
        return latents(n, self.z_dim, seed, truncation)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch_size: int = 64, dtype: torch.dtype = torch.uint8,
                 labels: Any = None) -> torch.Tensor:
        """Images for given latents (and labels, see ``labels``), in batches: uint8 [0, 255] or float
        [0, 1] (``dtype``), on the CPU."""
        out = []
        lab = self.labels(labels, z.shape[0])
        for i in range(0, z.shape[0], batch_size):
            x = self(z[i: i + batch_size], labels=None if lab is None else lab[i: i + batch_size])
            out.append(to_uint8(x).cpu() if dtype == torch.uint8
                       else ((x.float() + 1) / 2).clamp_(0, 1).to(dtype).cpu())
        return torch.cat(out, 0) if out else torch.empty(0, self.image_channels, self.resolution, self.resolution,
                                                         dtype=dtype)

    def sample(self, n: int, seed: int | None = 0, batch_size: int = 64, dtype: torch.dtype = torch.uint8,
               truncation: float | None = None, labels: Any = None) -> torch.Tensor:
        """``n`` images from ``seed``: uint8 [N, C, R, R] in [0, 255] by default, or float [0, 1].

        ``truncation``: psi of the truncation trick (``progan_zoo/data/latents.py``); None (default) samples all of z.
        A conditional model takes ``labels`` (a class index or name, or one per image; see ``labels``).
        """
        return self.generate(self.latents(n, seed, truncation), batch_size=batch_size, dtype=dtype, labels=labels)

    # -- lower stages ------------------------------------------------------------------------------
    def at_resolution(self, resolution: int) -> "ZooGenerator":
        """The generator of a lower resolution inside this one (shares weights; alpha 1)."""
        if resolution == self.resolution:
            return self
        if resolution not in self.G.resolutions:
            raise UserError(f"{self.name}: no {resolution}x{resolution} stage; this model has "
                            f"{', '.join(str(r) for r in self.G.resolutions)}")
        stage = self.G.stage_of(resolution)
        meta = self.metadata.replace(resolution=resolution, stage=stage, alpha=1.0)
        return ZooGenerator(self.G.at_stage(stage), self.spec, self.spec_text, meta, 1.0, self.source)
