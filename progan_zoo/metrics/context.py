"""What a metric gets: the generator, the real data, counts, seed and device, in one ``MetricContext``.

Its own module so that metric implementations (msssim.py) can sample through it without importing the
registry that imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from progan_zoo.errors import UserError

if TYPE_CHECKING:  # torch is imported on use: `import progan_zoo.metrics` stays cheap
    import torch

    from progan_zoo.metrics.reals import RealStream


def generator_device(generator: Any) -> torch.device:
    import torch

    if isinstance(generator, torch.nn.Module):
        for p in generator.parameters():
            return p.device
        for b in generator.buffers():
            return b.device
    return torch.device("cpu")


@dataclass
class MetricContext:
    """Inputs of a metric. ``generator``: ``G(z) -> [-1, 1]`` NCHW images with ``G.z_dim`` and
    ``G.resolution`` (None for data-only metrics); ``real``: uint8 images (tensor [N, C, H, W], map-style
    dataset or iterable of batches); ``num``: images per side; ``seed``: all sampling is seeded."""

    generator: Any = None
    real: Any = None
    num: int = 10000
    seed: int = 0
    device: torch.device | str | None = None
    batch_size: int = 64
    options: dict[str, Any] = field(default_factory=dict)
    requested: tuple[str, ...] = ()
    shared: dict[str, Any] = field(default_factory=dict)  # results one metric computes for another (fid+kid)

    @property
    def torch_device(self) -> torch.device:
        import torch

        if self.device is not None:
            return torch.device(self.device)
        return generator_device(self.generator)

    def need_generator(self, metric: str) -> Any:
        if self.generator is None:
            raise UserError(f"metric {metric!r} evaluates a generator; none was given")
        return self.generator

    def need_real(self, metric: str) -> Any:
        if self.real is None:
            raise UserError(f"metric {metric!r} compares with real data; give the data (--data)")
        return self.real

    def latents(self, num: int, seed: int | None = None) -> torch.Tensor:
        """All latents at once from a CPU generator: the same images whatever the batch size or device."""
        import torch

        g = self.need_generator("sampling")
        z_dim = getattr(g, "z_dim", None)
        if not isinstance(z_dim, int) or z_dim <= 0:
            raise UserError("the generator needs an integer attribute z_dim (latent size)")
        gen = torch.Generator().manual_seed(int(self.seed if seed is None else seed))
        return torch.randn(num, z_dim, generator=gen)

    def fake_batches(self, num: int | None = None, seed: int | None = None) -> Iterator[torch.Tensor]:
        """Generated images as uint8 batches (num images, latents seeded)."""
        import torch

        from progan_zoo.data.pixels import to_uint8

        g = self.need_generator("sampling")
        num = self.num if num is None else num
        dev = self.torch_device
        was_training = getattr(g, "training", False)
        if isinstance(g, torch.nn.Module):
            g.eval()
        try:
            z = self.latents(num, seed)
            for i in range(0, num, self.batch_size):
                with torch.no_grad():
                    images = to_uint8(g(z[i : i + self.batch_size].to(dev)))
                yield images
        finally:
            if isinstance(g, torch.nn.Module) and was_training:
                g.train()

    def real_stream(self, num: int | None = None) -> "RealStream":
        """The first ``num`` real images as the official evaluation reads them: in order, cycled from the
        start when the data has fewer (a stream built by ``evaluate`` also carries its mirror flips)."""
        import torch

        from progan_zoo.metrics.reals import RealStream, is_indexable
        from progan_zoo.metrics.batches import iter_batches

        real = self.need_real("data")
        num = self.num if num is None else int(num)
        if isinstance(real, RealStream) and num <= len(real):
            return real.head(num)
        if is_indexable(real):
            return RealStream(real, num)
        # An iterable of batches: read up to num images once; the stream cycles them.
        batches = [b.cpu() for b in iter_batches(real, self.batch_size, num)]
        if not batches:
            raise UserError("the real data gave no images")
        return RealStream(torch.cat(batches), num)

    def real_batches(self, num: int | None = None) -> Iterator[torch.Tensor]:
        """Real uint8 batches: the first ``num`` images of ``real_stream``."""
        yield from self.real_stream(num).iter_batches(self.batch_size)
