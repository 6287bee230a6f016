"""A plug-in op for progan-zoo: ``blur``, a fixed 3x3 binomial low-pass filter ([1, 2, 1] x [1, 2, 1] / 16,
per channel, 'same' size with reflected borders). It has no weights and keeps the channels, so it may sit
anywhere in a G or D row, e.g. ``layers: [upsample, blur, conv3x3, conv3x3]``.

Only the Op record is built when progan-zoo starts (torch is imported by ``make``), so the plug-in costs
nothing until a spec uses it.
"""

from __future__ import annotations

from progan_zoo.compiler.ops import LayerCtx, Op, OpCost


def _make(ctx: LayerCtx):
    import torch
    import torch.nn.functional as F

    class Blur(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            k = torch.tensor([1.0, 2.0, 1.0])
            self.register_buffer("kernel", (k[:, None] * k[None, :] / 16).reshape(1, 1, 3, 3), persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            c = x.shape[1]
            x = F.pad(x, (1, 1, 1, 1), mode="reflect")
            return F.conv2d(x, self.kernel.expand(c, 1, 3, 3), groups=c)

    return Blur()


BLUR = Op(
    name="blur",                                  # what specs write in `layers:`
    label="Blur 3x3",                             # what the compile table shows
    networks=("G", "D"),
    description="Fixed [1, 2, 1] binomial blur per channel (plug-in example, progan-zoo-blur).",
    params=lambda c: 0,                           # no weights
    out_channels=lambda c: c.in_channels,         # keeps the channels ...
    out_size=lambda s: s,                         # ... and the size
    make=_make,
    takes_channels=False,                         # a row's channel count does not apply to it
    # Cost facts per image (compiler/cost.py conventions, from the graph node's attributes): 9 multiply-adds
    # per output value; the next layer keeps the output for its backward.
    cost=OpCost(macs=lambda a: 9 * a["out_shape"][0] * a["out_shape"][1] * a["out_shape"][2],
                saved=lambda a: float(a["out_shape"][0] * a["out_shape"][1] * a["out_shape"][2])),
)
