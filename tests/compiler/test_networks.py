"""G and D: forward and backward at every stage, exact fades, stable state_dict keys, equalized LR,
pixel norm and minibatch stddev against the paper's formulas."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from progan_zoo.compiler import compile_spec
from progan_zoo.nn import EqualizedConv2d, EqualizedLinear, MinibatchStddev, downsample2x, pixel_norm, upsample2x

from .conftest import REPO, TINY

ALPHAS = (0.0, 0.5, 1.0)
FAST_SPECS = [REPO / "specs" / n for n in ("mnist_32.yaml", "cifar10_32.yaml")]
SLOW_SPECS = [REPO / "specs" / n for n in ("celeba_128.yaml", "lsun_256.yaml", "celebahq_1024.yaml")]


def _forward_backward(path: Path, batch: int, seed: int = 0) -> None:
    torch.manual_seed(seed)
    c = compile_spec(path)
    G, D = c.G, c.D
    for stage, res in enumerate(G.resolutions):
        for alpha in ALPHAS:
            G.zero_grad(set_to_none=True)
            D.zero_grad(set_to_none=True)
            z = torch.randn(batch, G.z_dim)
            img = G(z, stage, alpha)                                            # [NCHW]
            assert img.shape == (batch, G.image_channels, res, res)
            real = torch.randn(batch, G.image_channels, res, res)
            scores = D(img, stage, alpha)
            assert scores.shape == (batch, 1)
            loss = scores.mean() - D(real, stage, alpha).mean()
            loss.backward()
            assert torch.isfinite(img).all() and torch.isfinite(scores).all() and torch.isfinite(loss)
            grads = [p.grad for p in list(G.parameters()) + list(D.parameters()) if p.grad is not None]
            assert grads and all(torch.isfinite(g).all() for g in grads)
            # The newest block learns unless alpha = 0 cuts it off; the 4x4 block always does.
            assert G.b4.block.dense0.weight.grad.abs().sum() > 0
            assert D.b4.block.out.weight.grad.abs().sum() > 0
            if alpha > 0:
                assert getattr(G, f"b{res}").torgb.weight.grad.abs().sum() > 0
                assert getattr(D, f"b{res}").fromrgb.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("path", TINY + FAST_SPECS, ids=lambda p: p.name)
def test_forward_backward_every_stage_and_alpha(path: Path) -> None:
    _forward_backward(path, batch=2 if path in FAST_SPECS else 4)


@pytest.mark.slow
@pytest.mark.parametrize("path", SLOW_SPECS, ids=lambda p: p.name)
def test_forward_backward_paper_specs(path: Path) -> None:
    _forward_backward(path, batch=1 if "1024" in path.name else 2)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(1)
    c = compile_spec(TINY[0])
    # Non-zero biases so that a wrong blend cannot hide behind zeros.
    with torch.no_grad():
        for name, p in list(c.G.named_parameters()) + list(c.D.named_parameters()):
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return c


def test_g_fade_is_exact(tiny) -> None:
    G = tiny.G
    z = torch.randn(4, G.z_dim)
    with torch.no_grad():
        for stage in range(1, G.num_stages):
            prev = G(z, stage - 1, 1.0)
            # alpha = 0: the previous stage's image, upsampled; nothing of the new block.
            assert torch.equal(G(z, stage, 0.0), upsample2x(prev))
            # alpha = 1: the new path alone.
            h = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
            for s in G.stages()[: stage + 1]:
                h = s.block(h)
            new = G.stages()[stage].torgb(h)
            assert torch.equal(G(z, stage, 1.0), new)
            # In between, the linear blend of the two.
            torch.testing.assert_close(G(z, stage, 0.25), 0.75 * upsample2x(prev) + 0.25 * new)


def test_d_fade_is_exact(tiny) -> None:
    D = tiny.D
    with torch.no_grad():
        for stage in range(1, D.num_stages):
            res = D.resolutions[stage]
            x = torch.randn(4, D.image_channels, res, res)
            # alpha = 0: D sees only the downsampled image through the previous fromRGB.
            assert torch.equal(D(x, stage, 0.0), D(downsample2x(x), stage - 1, 1.0))
            # alpha = 1: the new fromRGB and block alone, then the lower blocks.
            top = D.stages()[stage]
            h = top.block(top.fromrgb(x))
            for s in reversed(D.stages()[:stage]):
                h = s.block(h)
            assert torch.equal(D(x, stage, 1.0), h)
            # In between: the blend happens at the input of the block below.
            old = D.stages()[stage - 1].fromrgb(downsample2x(x))
            mixed = 0.75 * old + 0.25 * top.block(top.fromrgb(x))
            for s in reversed(D.stages()[:stage]):
                mixed = s.block(mixed)
            torch.testing.assert_close(D(x, stage, 0.25), mixed)


def test_state_dict_keys_are_stage_independent_and_weights_carry_over(tiny) -> None:
    G, D = tiny.G, tiny.D
    g_keys, d_keys = set(G.state_dict()), set(D.state_dict())
    # The naming contract of docs/architecture.md.
    assert {"b8.block.conv0.weight", "b8.torgb.weight", "b4.block.dense0.weight"} <= g_keys
    assert {"b8.fromrgb.weight", "b4.block.out.weight", "b4.block.conv0.weight"} <= d_keys
    # Growing uses the very same tensors: which parameters a stage trains is all that changes.
    for stage in range(G.num_stages):
        for alpha in (0.5, 1.0):
            G.zero_grad(set_to_none=True)
            D.zero_grad(set_to_none=True)
            res = G.resolutions[stage]
            (G(torch.randn(4, G.z_dim), stage, alpha).square().mean()
             + D(torch.randn(4, 3, res, res), stage, alpha).mean()).backward()
            assert set(G.state_dict()) == g_keys and set(D.state_dict()) == d_keys
            for net in (G, D):
                for name, p in net.named_parameters():
                    block_res = int(name.split(".")[0][1:])
                    rgb = ".torgb." in name or ".fromrgb." in name
                    used = (block_res == res or (alpha < 1 and block_res == res // 2)) if rgb else block_res <= res
                    assert (p.grad is not None) == used, (stage, alpha, name)
    # A saved state_dict restores every stage's output exactly.
    fresh = compile_spec(TINY[0])
    fresh.G.load_state_dict(G.state_dict())
    fresh.D.load_state_dict(D.state_dict())
    z = torch.randn(4, G.z_dim)
    with torch.no_grad():
        for stage in range(G.num_stages):
            assert torch.equal(fresh.G(z, stage, 0.5), G(z, stage, 0.5))
            img = G(z, stage, 1.0)
            assert torch.equal(fresh.D(img, stage, 0.5), D(img, stage, 0.5))


def test_equalized_lr_init_and_runtime_scale() -> None:
    torch.manual_seed(0)
    c = compile_spec(REPO / "specs" / "mnist_32.yaml")
    G, D = c.G, c.D
    latent, img_c = G.z_dim, G.image_channels
    sqrt2 = math.sqrt(2)
    layers = {**{f"G.{n}": m for n, m in G.named_modules()}, **{f"D.{n}": m for n, m in D.named_modules()}}
    checked = 0
    for name, m in layers.items():
        if not isinstance(m, (EqualizedConv2d, EqualizedLinear)):
            continue
        fan_in = m.weight[0].numel()
        if name == "G.b4.block.dense0":
            gain = sqrt2 / 4                          # official G: dense to 4x4 with gain sqrt(2)/4
            assert fan_in == latent
        elif name.endswith(".torgb") or name == "D.b4.block.out":
            gain = 1.0                                # linear outputs
        else:
            gain = sqrt2                              # He constant for lrelu layers
        assert m.scale == pytest.approx(gain / math.sqrt(fan_in), rel=1e-12), name
        assert torch.count_nonzero(m.bias) == 0, name
        if m.weight.numel() >= 4096:                  # N(0, 1) weights, stored unscaled
            assert abs(m.weight.mean().item()) < 0.05 and abs(m.weight.std().item() - 1) < 0.05, name
        checked += 1
    assert checked == 3 * len(G.resolutions) + 3 * len(D.resolutions) + 1  # two weighted layers and an RGB per block, D out
    # The scale is applied at run time: the layer equals a plain conv with the scaled weight.
    conv = D.b8.block.conv0
    x = torch.randn(2, conv.in_channels, 8, 8)
    want = F.leaky_relu(F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1), 0.2)
    torch.testing.assert_close(conv(x), want)
    torgb = G.b8.torgb
    h = torch.randn(2, torgb.in_channels, 8, 8)
    torch.testing.assert_close(torgb(h), F.conv2d(h, torgb.weight / math.sqrt(torgb.in_channels), torgb.bias))
    assert img_c == torgb.out_channels


def test_equalized_lr_off_scales_at_init() -> None:
    torch.manual_seed(0)
    m = EqualizedConv2d(64, 64, 3, equalized=False)
    assert m.scale == 1.0
    assert m.weight.std().item() == pytest.approx(math.sqrt(2) / math.sqrt(64 * 9), rel=0.05)


def test_g_dense_and_pixel_norm_match_the_formulas() -> None:
    torch.manual_seed(0)
    c = compile_spec(TINY[0])
    dense = c.G.b4.block.dense0
    z = torch.randn(3, c.G.z_dim)
    zn = z / torch.sqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
    a = F.leaky_relu((zn @ (dense.weight * dense.scale).T).reshape(3, -1, 4, 4) + dense.bias.reshape(1, -1, 1, 1), 0.2)
    want = a / torch.sqrt(a.pow(2).mean(1, keepdim=True) + 1e-8)   # b = a / sqrt(mean_c(a^2) + eps)
    torch.testing.assert_close(dense(zn), want)


def test_pixel_norm_reference() -> None:
    torch.manual_seed(0)
    a = torch.randn(2, 5, 3, 3)
    b = pixel_norm(a, 1e-8)
    for n in range(2):
        for i in range(3):
            for j in range(3):
                v = a[n, :, i, j]
                torch.testing.assert_close(b[n, :, i, j], v / torch.sqrt((v * v).sum() / 5 + 1e-8))
    torch.testing.assert_close(b.pow(2).mean(1), torch.ones(2, 3, 3))


@pytest.mark.parametrize("n, group", [(8, 4), (6, 3), (4, 4), (3, 4), (16, 16)])
def test_minibatch_stddev_reference(n: int, group: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(n, 6, 4, 4)
    out = MinibatchStddev(group, 1)(x)
    assert out.shape == (n, 7, 4, 4) and torch.equal(out[:, :6], x)
    g = min(group, n)
    m = n // g
    for i in range(n):
        members = x[[j for j in range(n) if j % m == i % m]]      # official grouping: sample i in group i % M
        assert len(members) == g
        std = torch.sqrt(members.var(0, unbiased=False) + 1e-8)     # per feature and pixel, over the group
        torch.testing.assert_close(out[i, 6], torch.full((4, 4), std.mean().item()))


def test_minibatch_stddev_refuses_a_ragged_batch() -> None:
    with pytest.raises(ValueError, match="not divisible"):
        MinibatchStddev(4, 1)(torch.randn(6, 2, 4, 4))


def test_custom_layer_lists_compile_and_fade_exactly() -> None:
    text = TINY[0].read_text()
    text = text.replace("latent_size: 16", "latent_size: 16\n  options: {mbstd_group_size: 0, lrelu_slope: 0.1}")
    text = text.replace("{resolution: 8, channels: 16}", "{resolution: 8, channels: 16, layers: [upsample, conv3x3]}")
    text = text.replace("{resolution: 16, channels: [8, 16]}",
                        "{resolution: 16, channels: [8, 16], layers: [conv1x1, downsample, conv3x3]}")
    text = text.replace("{resolution: 4, channels: [16, 16]}", "{resolution: 4, channels: [16, 16], layers: [dense4x4]}")
    torch.manual_seed(0)
    c = compile_spec("custom.yaml", text=text)
    from progan_zoo.compiler import param_count
    assert sum(p.numel() for p in c.G.parameters()) == param_count(c.graph, "G")
    assert sum(p.numel() for p in c.D.parameters()) == param_count(c.graph, "D")
    assert list(dict(c.G.b8.block.named_children())) == ["up", "conv0"]
    assert list(dict(c.D.b4.block.named_children())) == ["dense0", "out"]
    assert c.D.b16.block.conv1.out_channels == 16 and c.D.b16.block.conv0.out_channels == 8
    z = torch.randn(2, 16)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(c.G(z, 2, 0.0), upsample2x(c.G(z, 1, 1.0)))
        assert torch.equal(c.D(x, 2, 0.0), c.D(downsample2x(x), 1, 1.0))
    c.D(c.G(z, 2, 0.5), 2, 0.5).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in c.G.parameters() if p.grad is not None)
