"""Table 1's new layers against independent transcriptions of their definitions.

Each reference below is written from the definition (the Theano release's lasagne layers and the
improved-GAN MinibatchLayer), with loops or plain tensor arithmetic, not by calling the module's code.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from progan_zoo.compiler import compile_spec
from progan_zoo.nn import BatchNorm, EqualizedConv2d, EqualizedLinear, LayerNorm, MinibatchDiscrimination

REPO = Path(__file__).resolve().parents[2]
CPU = REPO / "specs" / "table1" / "cpu"


def _bn_reference(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
    """lasagne BatchNormLayer, training pass: per map c, mean and biased variance over batch and pixels."""
    out = torch.empty_like(x)
    for c in range(x.shape[1]):
        v = x[:, c].detach().double()
        mean = v.sum() / v.numel()
        var = ((v - mean) ** 2).sum() / v.numel()
        out[:, c] = ((v - mean) / math.sqrt(var + eps) * gamma[c] + beta[c]).float()
    return out


def _ln_reference(x: torch.Tensor, gain: float, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """Theano LayerNormLayer: per sample, mean and mean square over every feature and pixel."""
    out = torch.empty_like(x)
    for n in range(x.shape[0]):
        v = x[n].detach().double()
        v = v - v.mean()
        v = v / math.sqrt(float((v ** 2).mean()) + eps)
        shape = (-1,) + (1,) * (v.dim() - 1)
        out[n] = (v * gain + bias.double().reshape(shape)).float()
    return out


def _mbdisc_reference(x: torch.Tensor, layer: MinibatchDiscrimination) -> torch.Tensor:
    """Salimans et al. 2016 eq. in section 3.2 with the MinibatchLayer's weight normalization:
    T = theta * exp(g) / ||theta||_col; M_i = x_i T; o_k(x_i) = sum_{j != i} exp(-||M_ik - M_jk||_1) + b_k."""
    theta, g, b = (t.detach().double() for t in (layer.theta, layer.log_weight_scale, layer.bias))
    n, a = x.shape
    _, K, B = theta.shape
    T = torch.empty_like(theta)
    for k in range(K):
        for d in range(B):
            col = theta[:, k, d]
            T[:, k, d] = col * math.exp(g[k, d]) / math.sqrt(float((col ** 2).sum()))
    M = (x.double() @ T.reshape(a, K * B)).reshape(n, K, B)
    o = torch.zeros(n, K, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            if i != j:
                o[i] += torch.exp(-(M[i] - M[j]).abs().sum(dim=1))
    return torch.cat([x.double(), o + b], dim=1).float()


def test_batch_norm_matches_its_definition_and_keeps_running_averages() -> None:
    torch.manual_seed(0)
    bn = BatchNorm(5)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(5) + 0.5)
        bn.bias.copy_(torch.randn(5))
    x = torch.randn(6, 5, 4, 4) * 3 + 1
    ref = _bn_reference(x, bn.weight.detach(), bn.bias.detach(), 1e-4)
    assert torch.allclose(bn(x), ref, atol=1e-5)
    # lasagne's alpha 0.1: running mean moves a tenth of the way to the batch mean (eval mode uses it).
    assert torch.allclose(bn.running_mean, 0.1 * x.mean(dim=(0, 2, 3)), atol=1e-5)


def test_layer_norm_matches_its_definition_on_maps_and_vectors() -> None:
    torch.manual_seed(1)
    ln = LayerNorm(7)
    with torch.no_grad():
        ln.gain.fill_(1.7)
        ln.bias.copy_(torch.randn(7))
    for shape in ((3, 7, 4, 4), (3, 7)):
        x = torch.randn(*shape) * 2 - 0.5
        assert torch.allclose(ln(x), _ln_reference(x, 1.7, ln.bias.detach(), 1e-4), atol=1e-5)


def test_minibatch_discrimination_matches_l1_kernel_distances() -> None:
    torch.manual_seed(2)
    layer = MinibatchDiscrimination(in_features=6, num_kernels=4, kernel_dim=3)
    with torch.no_grad():
        layer.log_weight_scale.copy_(torch.randn(4, 3) * 0.3)
    x = torch.randn(5, 6)
    out = layer(x)
    assert out.shape == (5, 10)
    assert torch.allclose(out, _mbdisc_reference(x, layer), atol=1e-5)
    # Identical samples are at distance 0: each sees exp(0) = 1 from every other one.
    same = layer(torch.ones(3, 6))[:, 6:]
    assert torch.allclose(same, torch.full((3, 4), 2.0) + layer.bias.detach(), atol=1e-6)


def test_norm_takes_over_the_bias_and_runs_before_the_activation() -> None:
    torch.manual_seed(3)
    conv = EqualizedConv2d(3, 4, 3, lrelu_slope=0.2, norm="layer", equalized=False)
    assert conv.bias is None and isinstance(conv.norm, LayerNorm)
    x = torch.randn(2, 3, 5, 5)
    pre = torch.nn.functional.conv2d(x, conv.weight, None, padding=1)
    ref = torch.nn.functional.leaky_relu(_ln_reference(pre, 1.0, conv.norm.bias.detach(), 1e-4), 0.2)
    assert torch.allclose(conv(x), ref, atol=1e-5)
    dense = EqualizedLinear(8, 4 * 16, reshape_to=(4, 4, 4), lrelu_slope=0.0, norm="batch")
    assert dense.bias is None and isinstance(dense.norm, BatchNorm)
    z = torch.randn(6, 8)
    pre = torch.nn.functional.linear(z, dense.weight * dense.scale).reshape(6, 4, 4, 4)
    ref = torch.relu(_bn_reference(pre, torch.ones(4), torch.zeros(4), 1e-4))
    assert torch.allclose(dense(z), ref, atol=1e-5)


def _fade_reference_G(G, z: torch.Tensor, alpha: float) -> torch.Tensor:
    """G's fade by the paper's formula from the blocks themselves: (1-a) up(toRGB_prev(h_prev)) + a toRGB(h)."""
    h_prev = G.b4.block(z)  # the twins do not normalize z ((a)-(c)): the blocks see it as it is
    h = G.b8.block(h_prev)
    old = torch.nn.functional.interpolate(G.b4.torgb(h_prev), scale_factor=2, mode="nearest")
    return torch.tanh((1 - alpha) * old + alpha * G.b8.torgb(h))


def test_batch_norm_and_layer_norm_nets_under_the_fade() -> None:
    """Row (b)'s twin mid-fade (stage 1, alpha 0.3): G's tanh blend and D's faded input, against the
    paper's fade written out, with the norms' batch and per-sample statistics inside the blocks."""
    torch.manual_seed(4)
    c = compile_spec(CPU / "b_progressive.yaml")
    G, D = c.G, c.D
    assert not G.normalize_latent and G.tanh_output
    z = torch.randn(8, G.z_dim)
    assert torch.allclose(G(z, stage=1, alpha=0.3), _fade_reference_G(G, z, 0.3), atol=1e-5)
    x = torch.randn(8, 1, 8, 8)
    new = D.b8.block(D.b8.fromrgb(x))
    old = D.b4.fromrgb(torch.nn.functional.avg_pool2d(x, 2))
    assert torch.allclose(D(x, stage=1, alpha=0.3), D.b4.block(0.7 * old + 0.3 * new), atol=1e-5)
    # D's layer norm is per sample: one image's score does not depend on the others in its batch.
    assert torch.allclose(D(x[:1], stage=1, alpha=0.3), D(x, stage=1, alpha=0.3)[:1], atol=1e-5)
    # G's batch norm is over the batch: in train mode one latent's image depends on its batch-mates.
    assert not torch.allclose(G(z[:2], stage=1, alpha=0.3)[:1], G(z, stage=1, alpha=0.3)[:1], atol=1e-3)


def test_minibatch_discrimination_in_D_under_the_fade() -> None:
    torch.manual_seed(5)
    c = compile_spec(CPU / "e_star_minibatch_discrimination.yaml")
    D = c.D
    mbdisc = D.b4.block.mbdisc
    x = torch.randn(6, 1, 8, 8)
    new = D.b8.block(D.b8.fromrgb(x))
    old = D.b4.fromrgb(torch.nn.functional.avg_pool2d(x, 2))
    h = 0.6 * old + 0.4 * new
    h = D.b4.block.dense0(D.b4.block.conv0(h))
    ref = D.b4.block.out(_mbdisc_reference(h, mbdisc))
    assert torch.allclose(D(x, stage=1, alpha=0.4), ref, atol=1e-4)


@pytest.mark.parametrize("name", ["a_baseline", "e_star_minibatch_discrimination", "g_pixelwise_norm"])
def test_graph_parameter_counts_match_the_modules(name: str) -> None:
    from progan_zoo.compiler import param_count

    c = compile_spec(CPU / f"{name}.yaml")
    assert param_count(c.graph, "G") == sum(p.numel() for p in c.G.parameters())
    assert param_count(c.graph, "D") == sum(p.numel() for p in c.D.parameters())


def test_a_lower_stage_keeps_the_tanh_output() -> None:
    """``G.at_stage`` (export and load of a lower resolution) keeps every option of G, tanh included: the
    cut network gives what the full one gives at that stage."""
    torch.manual_seed(6)
    G = compile_spec(CPU / "b_progressive.yaml").G.eval()
    low = G.at_stage(1)
    assert low.tanh_output and low.resolution == 8
    z = torch.randn(4, G.z_dim)
    assert torch.equal(low(z), G(z, stage=1, alpha=1.0))
