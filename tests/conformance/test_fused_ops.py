"""The official fused_scale ops, against direct numpy transcriptions of networks.py.

- ``upscale2d_conv2d``: pad the [k, k, out, in] kernel by one, add its four shifted copies, then
  ``conv2d_transpose`` with stride 2 and 'SAME' padding (output 2H; TF pads 1 before, 1 after).
- ``conv2d_downscale2d``: the same padded sum times 1/4, then a stride-2 'SAME' conv; the official
  D then applies bias and leaky ReLU, so the activation comes after the pooling.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as Fn

from progan_zoo.nn import EqualizedConv2d, EqualizedConvDown2d, EqualizedUpConv2d

REPO = Path(__file__).resolve().parents[2]


def _fused_kernel(w: np.ndarray) -> np.ndarray:
    """[k, k, a, b] -> [k+1, k+1, a, b]: the official padded sum of four shifted copies."""
    p = np.pad(w, [[1, 1], [1, 1], [0, 0], [0, 0]])
    return p[1:, 1:] + p[:-1, 1:] + p[1:, :-1] + p[:-1, :-1]


def _lrelu(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, 0.2 * x)


def official_upscale2d_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x [N, I, H, W], w [k, k, O, I] (stored, unscaled), b [O] -> lrelu(bias(conv2d_transpose)) [N, O, 2H, 2W]."""
    n, i, h, wd = x.shape
    k = w.shape[0]
    w = w * (math.sqrt(2) / math.sqrt(k * k * i))                 # get_weight(..., fan_in=k*k*in), use_wscale
    w4 = _fused_kernel(w)                                          # [k+1, k+1, O, I]
    o = w4.shape[2]
    out = np.zeros((n, o, 2 * h + k + 1, 2 * wd + k + 1))
    for u in range(k + 1):
        for v in range(k + 1):
            out[:, :, u:u + 2 * h:2, v:v + 2 * wd:2] += np.einsum("nihw,oi->nohw", x, w4[u, v])
    pad = 1                                                        # 'SAME': (2H-1)*... total 2, before 1
    out = out[:, :, pad:pad + 2 * h, pad:pad + 2 * wd]
    return _lrelu(out + b.reshape(1, -1, 1, 1))


def official_conv2d_downscale2d(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x [N, I, H, W], w [k, k, I, O] -> lrelu(bias(stride-2 conv with the averaged padded kernel)) [N, O, H/2, W/2]."""
    n, i, h, wd = x.shape
    k = w.shape[0]
    w = w * (math.sqrt(2) / math.sqrt(k * k * i))
    w4 = _fused_kernel(w) * 0.25                                   # [k+1, k+1, I, O]
    xp = np.pad(x, [[0, 0], [0, 0], [1, 1], [1, 1]])               # 'SAME' for stride 2, kernel 4: 1 before, 1 after
    out = np.zeros((n, w4.shape[3], h // 2, wd // 2))
    for u in range(k + 1):
        for v in range(k + 1):
            out += np.einsum("nihw,io->nohw", xp[:, :, u:u + h:2, v:v + wd:2], w4[u, v])
    return _lrelu(out + b.reshape(1, -1, 1, 1))


def _tf_case(seed: int, x_shape: tuple, w_shape: tuple, channels: int) -> tuple[np.ndarray, ...]:
    """Seeded float32 input, TF-layout kernel and bias of ``channels`` outputs."""
    rng = np.random.RandomState(seed)
    return tuple(rng.standard_normal(shape).astype(np.float32) for shape in (x_shape, w_shape, channels))


@torch.no_grad()
def _load_tf(module: torch.nn.Module, w: np.ndarray, b: np.ndarray) -> None:
    """Copies a TF-layout kernel [k, k, a, b] as torch's [b, a, k, k] (both fused layouts) and the bias."""
    module.weight.copy_(torch.from_numpy(w.transpose(3, 2, 0, 1)))
    module.bias.copy_(torch.from_numpy(b))


def test_upconv_equals_official_upscale2d_conv2d():
    x, w, b = _tf_case(0, (2, 5, 4, 4), (3, 3, 6, 5), 6)          # TF layout [k, k, out, in]
    layer = EqualizedUpConv2d(5, 6, 3, lrelu_slope=0.2)
    _load_tf(layer, w, b)
    with torch.no_grad():
        ours = layer(torch.from_numpy(x)).numpy()
    assert ours.shape == (2, 6, 8, 8)
    np.testing.assert_allclose(ours, official_upscale2d_conv2d(x, w, b), atol=1e-5)


def test_conv_down_equals_official_conv2d_downscale2d_and_pools_before_the_activation():
    x, w, b = _tf_case(1, (2, 4, 8, 8), (3, 3, 4, 7), 7)          # TF layout [k, k, in, out]
    fused = EqualizedConvDown2d(4, 7, 3, lrelu_slope=0.2)
    conv = EqualizedConv2d(4, 7, 3, lrelu_slope=None)
    for m in (fused, conv):
        _load_tf(m, w, b)
    with torch.no_grad():
        xt = torch.from_numpy(x)
        ours = fused(xt)
        # conv, pool, then bias and activation (bias passes through the pool unchanged).
        pooled = Fn.avg_pool2d(conv(xt) - conv.bias.reshape(1, -1, 1, 1), 2) + conv.bias.reshape(1, -1, 1, 1)
        act_then_pool = Fn.avg_pool2d(Fn.leaky_relu(conv(xt), 0.2), 2)
    np.testing.assert_allclose(ours.numpy(), official_conv2d_downscale2d(x, w, b), atol=1e-5)
    np.testing.assert_allclose(ours.numpy(), Fn.leaky_relu(pooled, 0.2).numpy(), atol=1e-5)
    assert float((ours - act_then_pool).abs().max()) > 1e-3        # the older order is a different network


def test_celebahq_spec_uses_the_official_fused_ops_with_unchanged_counts():
    from progan_zoo.compiler import compile_spec
    from progan_zoo.compiler.graph import param_count

    c = compile_spec(REPO / "specs" / "celebahq_1024.yaml")
    layers = [a for _, a in c.graph.nodes(data=True) if a["kind"] == "layer"]
    assert c.spec.architecture.options.fused_scale
    assert sum(a["op"] == "upconv3x3" for a in layers) == 8 and not any(a["op"] == "upsample" for a in layers)
    assert sum(a["op"] == "conv3x3_down" for a in layers) == 8 and not any(a["op"] == "downsample" for a in layers)
    assert param_count(c.graph, "G") == 23_079_115 == sum(p.numel() for p in c.G.parameters())
    assert param_count(c.graph, "D") == 23_087_249 == sum(p.numel() for p in c.D.parameters())
