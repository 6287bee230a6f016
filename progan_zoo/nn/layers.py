"""Building blocks of the ProGAN networks (paper section 4, official TF code `networks.py`).

Every trainable layer uses the equalized learning rate of section 4.1: weights are stored
N(0, 1) and multiplied at run time by ``gain / sqrt(fan_in)`` (the He constant when
``gain = sqrt(2)``); biases start at 0 and are not scaled.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)


class _EqualizedKernel(nn.Module):
    """What the three convolution layers share (section 4.1): a k x k kernel stored N(0, 1) and scaled
    at run time by ``gain / sqrt(k*k*in)``, and one bias per output map starting at 0.

    Only ``weight`` and ``bias`` are parameters, registered in that order, so state_dict keys and the
    random numbers drawn at init are those of each layer written out in full.
    With ``norm`` ("batch" or "layer") the bias moves into the normalization, which runs between the
    convolution and the activation (the Theano code's lasagne ``batch_norm`` and ``LayerNormLayer``
    both take over the layer's bias and nonlinearity).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float, equalized: bool,
                 transposed: bool = False, norm: str | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        std = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        # A transposed conv stores [in, out, k, k] (the TF variable [k, k, out, in]); a conv [out, in, k, k].
        io = (in_channels, out_channels) if transposed else (out_channels, in_channels)
        self.weight = nn.Parameter(torch.randn(*io, kernel_size, kernel_size))
        _add_bias_and_norm(self, out_channels, norm)
        self.scale = _init_scale(self.weight, std, equalized)

    def scaled_weight(self) -> torch.Tensor:
        """The weight the layer computes with (equalized learning rate)."""
        return _scaled(self.weight, self.scale)


class EqualizedConv2d(_EqualizedKernel):
    """Conv layer with runtime He scaling, 'same' padding, optional lrelu and pixel norm.

    Activation and pixel norm live in the layer so state_dict keys read ``b8.conv0.weight``.
    """

    def __init__(
        self,
        in_channels: int,                      # Input feature maps.
        out_channels: int,                     # Output feature maps.
        kernel_size: int,                      # Square kernel size (1 or 3 in ProGAN).
        gain: float = SQRT2,                   # Official gain: sqrt(2) for lrelu layers, 1 for toRGB.
        equalized: bool = True,                # False: plain He init, no runtime scaling.
        lrelu_slope: float | None = None,      # None: linear output.
        pixel_norm_eps: float | None = None,   # Pixel norm after the activation (G only).
        norm: str | None = None,               # "batch" (G) or "layer" (D) before the activation.
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, gain, equalized, norm=norm)
        self.padding = kernel_size // 2
        self.lrelu_slope, self.pixel_norm_eps = lrelu_slope, pixel_norm_eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.scaled_weight(), self.bias, padding=self.padding)  # [NCHW]
        return _post(_normed(self, x), self.lrelu_slope, self.pixel_norm_eps)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, scale={self.scale:.4g}, "
                f"lrelu={self.lrelu_slope}, pixel_norm={self.pixel_norm_eps is not None}")


class EqualizedUpConv2d(_EqualizedKernel):
    """Fused 2x upsample + conv (official ``upscale2d_conv2d``, G with ``fused_scale=True``).

    The official code pads the k x k kernel by one and adds its four shifted copies into a
    (k+1) x (k+1) kernel, then runs a stride-2 transposed convolution ('SAME'), so the output is
    twice the input size. The stored weight is the k x k kernel in transposed-conv layout
    ``[in, out, k, k]`` (the TF variable ``[k, k, out, in]``), so the parameter count equals an
    upsample + conv3x3 row; fan-in ``k*k*in`` as in the official ``get_weight`` call. Then bias,
    leaky ReLU and pixel norm, as every G conv.
    """

    def __init__(
        self,
        in_channels: int,                      # Input feature maps.
        out_channels: int,                     # Output feature maps.
        kernel_size: int = 3,                  # The kernel before fusing (3 in ProGAN).
        gain: float = SQRT2,
        equalized: bool = True,
        lrelu_slope: float | None = None,
        pixel_norm_eps: float | None = None,
        norm: str | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, gain, equalized, transposed=True, norm=norm)
        self.lrelu_slope, self.pixel_norm_eps = lrelu_slope, pixel_norm_eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = _shifted_sum(self.scaled_weight())                                 # [I, O, k+1, k+1]
        # TF 'SAME' conv2d_transpose with stride 2 and an even kernel crops (k+1)//2 - 1 ... here 1 per side.
        x = F.conv_transpose2d(x, w, self.bias, stride=2, padding=(self.kernel_size - 1) // 2)  # [N, O, 2H, 2W]
        return _post(_normed(self, x), self.lrelu_slope, self.pixel_norm_eps)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size} fused up, scale={self.scale:.4g}, "
                f"lrelu={self.lrelu_slope}, pixel_norm={self.pixel_norm_eps is not None}")


class EqualizedConvDown2d(_EqualizedKernel):
    """Conv, 2x2 average pool, then bias and activation (official ``conv2d_downscale2d``, D with
    ``fused_scale=True``).

    The official code averages the four shifted copies of the padded k x k kernel and runs a
    stride-2 convolution; that equals the k x k conv followed by 2x2 average pooling, with the bias
    and leaky ReLU applied after the pool (not before it, as a conv3x3 + downsample row does). The
    weight is a plain conv weight ``[out, in, k, k]``, so parameters equal conv3x3's.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        gain: float = SQRT2,
        equalized: bool = True,
        lrelu_slope: float | None = None,
        norm: str | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, gain, equalized, norm=norm)
        self.lrelu_slope = lrelu_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = _shifted_sum(self.scaled_weight()) * 0.25                          # [O, I, k+1, k+1]
        x = F.conv2d(x, w, self.bias, stride=2, padding=(self.kernel_size - 1) // 2 + 0)  # [N, O, H/2, W/2]
        return _post(_normed(self, x), self.lrelu_slope, None)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size} then avgpool, "
                f"scale={self.scale:.4g}, lrelu={self.lrelu_slope}")


class EqualizedLinear(nn.Module):
    """Dense layer with runtime He scaling.

    ``flatten_input`` flattens [NCHW] first (D's 4x4 layer, the paper's "conv 4x4").
    ``reshape_to`` turns the output into [N, C, H, W] with one bias per feature map, as the
    official G's first layer does (dense to nf*16 values, reshape to [nf, 4, 4], bias per map).
    """

    def __init__(
        self,
        in_features: int,                      # Input features (the fan-in).
        out_features: int,                     # Output features.
        gain: float = SQRT2,                   # sqrt(2)/4 for G's first layer, 1 for D's output.
        equalized: bool = True,
        lrelu_slope: float | None = None,
        pixel_norm_eps: float | None = None,
        flatten_input: bool = False,
        reshape_to: tuple[int, int, int] | None = None,
        bias_per_map: bool = True,             # With reshape_to: one bias per map (official) or per value.
        norm: str | None = None,               # "batch" or "layer" before the activation; takes the bias.
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        std = gain / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        per_map = reshape_to is not None and bias_per_map
        _add_bias_and_norm(self, reshape_to[0] if per_map else out_features, norm)
        self.bias_per_map = per_map
        self.scale = _init_scale(self.weight, std, equalized)
        self.lrelu_slope, self.pixel_norm_eps = lrelu_slope, pixel_norm_eps
        self.flatten_input, self.reshape_to = flatten_input, reshape_to

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flatten_input:
            x = x.flatten(1)                                      # [N, C*H*W]
        w = _scaled(self.weight, self.scale)
        if self.reshape_to is None:
            x = F.linear(x, w, self.bias)                         # [NC]
        elif not self.bias_per_map:
            x = F.linear(x, w, self.bias).reshape(-1, *self.reshape_to)  # [NCHW]
        else:
            x = F.linear(x, w).reshape(-1, *self.reshape_to)      # [NCHW]
            if self.bias is not None:
                x = x + self.bias.reshape(1, -1, 1, 1)
        return _post(_normed(self, x), self.lrelu_slope, self.pixel_norm_eps)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, scale={self.scale:.4g}, lrelu={self.lrelu_slope}"


def _add_bias_and_norm(layer: nn.Module, channels: int, norm: str | None) -> None:
    """One bias per output map, or none when a normalization follows and brings its own shift."""
    if norm is None:
        layer.bias = nn.Parameter(torch.zeros(channels))
        layer.norm = None
        return
    layer.register_parameter("bias", None)
    layer.norm = BatchNorm(channels) if norm == "batch" else LayerNorm(channels)


def _normed(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x if layer.norm is None else layer.norm(x)


def _scaled(weight: torch.Tensor, scale: float) -> torch.Tensor:
    """The runtime-scaled weight; skipped when the scale was applied at init (``equalized=False``)."""
    return weight * scale if scale != 1.0 else weight


def _shifted_sum(w: torch.Tensor) -> torch.Tensor:
    """[A, B, k, k] -> [A, B, k+1, k+1]: the kernel padded by one and its four shifted copies added, as
    the official fused ops (``upscale2d_conv2d``, ``conv2d_downscale2d``) build their strided kernel."""
    w = F.pad(w, (1, 1, 1, 1))                                                 # [A, B, k+2, k+2]
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


def _init_scale(weight: torch.Tensor, std: float, equalized: bool) -> float:
    """Equalized LR keeps N(0,1) weights and scales at run time; otherwise scale at init."""
    if equalized:
        return std
    with torch.no_grad():
        weight.mul_(std)
    return 1.0


def _post(x: torch.Tensor, slope: float | None, eps: float | None) -> torch.Tensor:
    if slope is not None:
        x = F.leaky_relu(x, slope)
    if eps is not None:
        x = pixel_norm(x, eps)
    return x


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Section 4.2: b = a / sqrt(mean_c(a^2) + eps), over the channel axis."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class PixelNorm(nn.Module):
    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x, self.eps)


class BatchNorm(nn.BatchNorm2d):
    """Batch normalization as the WGAN-GP baseline's generator used it (Table 1 rows a-c; the Theano
    ``G_paper`` with ``use_batchnorm``: lasagne ``batch_norm``): per feature map, statistics over the
    minibatch and the pixels (biased variance), epsilon 1e-4, a learned scale and shift; running
    averages with lasagne's alpha 0.1 serve eval mode (G_ema's samples). Works on [NC] and [NCHW].
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=1e-4, momentum=0.1)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 4):
            raise ValueError(f"BatchNorm expects [NC] or [NCHW], got {x.dim()} dimensions")


class LayerNorm(nn.Module):
    """Layer normalization as the baseline's discriminator used it (Table 1 rows a-c; the Theano
    ``LayerNormLayer``, Ba et al. 2016): per sample, mean and std over all features and pixels,
    epsilon 1e-4, then one learned scalar gain and one learned bias per feature map. Per-sample, so
    the gradient penalty's per-image gradients stay independent (the reason WGAN-GP drops batch norm in D).
    """

    def __init__(self, channels: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(()))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, x.dim()))
        x = x - x.mean(dim=dims, keepdim=True)                              # [NC...]
        x = x * torch.rsqrt(x.pow(2).mean(dim=dims, keepdim=True) + self.eps)
        return x * self.gain + self.bias.reshape(1, -1, *([1] * (x.dim() - 2)))


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, section 3.2), as Table 1 row (e*) ran it (the
    Theano ``D_paper`` with ``mbdisc_kernels``: the improved-GAN ``MinibatchLayer`` after D's 4x4 dense
    layer).

    The input [N, A] is projected by a weight-normalized tensor T [A, K, B] to M [N, K, B]; for each
    kernel k, c_k(i, j) = exp(-||M_ik - M_jk||_1) (an L1 distance over the B dimensions), and
    o_k(i) = sum over j != i of c_k(i, j) + b_k. The output is [x, o]: A + K features. T is stored as
    ``theta`` N(0, 0.05) with ``log_weight_scale`` 0 (each [A] column of T has norm exp(scale)); b starts at -1.
    """

    def __init__(self, in_features: int, num_kernels: int, kernel_dim: int) -> None:
        super().__init__()
        self.in_features, self.num_kernels, self.kernel_dim = in_features, num_kernels, kernel_dim
        self.theta = nn.Parameter(torch.randn(in_features, num_kernels, kernel_dim) * 0.05)
        self.log_weight_scale = nn.Parameter(torch.zeros(num_kernels, kernel_dim))
        self.bias = nn.Parameter(torch.full((num_kernels,), -1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)                                                         # [NA]
        t = self.theta * (self.log_weight_scale.exp() / self.theta.pow(2).sum(dim=0).sqrt())  # [AKB]
        m = torch.einsum("na,akb->nkb", x, t)                                    # [NKB]
        dist = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(dim=3)                # [NNK]: [j, i, k]
        close = torch.exp(-dist).sum(dim=0) - 1.0                                # [NK]: j == i adds exp(0)
        return torch.cat([x, close + self.bias], dim=1)                          # [N(A+K)]

    def extra_repr(self) -> str:
        return f"{self.in_features}, kernels={self.num_kernels}, dim={self.kernel_dim}"


class MinibatchStddev(nn.Module):
    """Section 3: one extra feature map holding the mean std over a group of samples.

    Matches the official TF layer: groups are formed as ``reshape(G, M, ...)`` so sample ``i``
    belongs to group ``i % M``; the group size is ``min(group_size, N)``.
    """

    def __init__(self, group_size: int = 4, num_features: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_features = group_size, num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g != 0:
            raise ValueError(
                f"minibatch-stddev: batch of {n} is not divisible by group size {g}; "
                "use a minibatch that is a multiple of the group size"
            )
        f = self.num_features
        y = x.reshape(g, -1, f, c // f, h, w).float()           # [GMFcHW]
        y = y - y.mean(dim=0, keepdim=True)                    # [GMFcHW]
        y = (y.pow(2).mean(dim=0) + 1e-8).sqrt()               # [MFcHW]
        y = y.mean(dim=(2, 3, 4))                              # [MF]
        y = y.to(x.dtype).reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [NFHW]
        return torch.cat([x, y], dim=1)                        # [N(C+F)HW]

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_features={self.num_features}"


class MinibatchStddevGanZoo(nn.Module):
    """Minibatch stddev as pytorch_GAN_zoo's PGAN computes it (``miniBatchStdDev``), for its imported networks.

    It differs from the official layer in three ways: the variance is the unbiased one (divided by
    G - 1); a batch the group size does not divide is one group (a group of one gives a zero map);
    and the statistic of group ``m`` (formed, as officially, from samples ``i`` with ``i % M == m``)
    is written to the consecutive samples ``m*G .. m*G+G-1``. The last quirk only shows when a batch
    holds more than one group; it is kept because it is what the imported networks compute.
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(n, self.group_size)
        if n % g:
            g = n
        if g <= 1:
            return torch.cat([x, x.new_zeros(n, 1, h, w)], dim=1)
        y = x.reshape(g, -1, c, h, w)                          # [GMCHW]
        y = (torch.var(y, dim=0) + 1e-8).sqrt()                # [MCHW]
        y = y.reshape(y.shape[0], -1).mean(dim=1)              # [M]
        y = y.repeat_interleave(g).reshape(n, 1, 1, 1).expand(n, 1, h, w)  # [N1HW]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, unbiased variance (pytorch_GAN_zoo)"


class Upsample2x(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample2x(x)


class Downsample2x(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return downsample2x(x)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling (official ``upscale2d``)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling (official ``downscale2d``)."""
    return F.avg_pool2d(x, kernel_size=2)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """a + (b - a) * t, the official ``tflib.lerp``."""
    return a + (b - a) * t
