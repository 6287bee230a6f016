"""GPU checks of the compiled networks (run with `pytest -m gpu` on a CUDA machine)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from progan_zoo.compiler import compile_spec

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

SPECS = Path(__file__).resolve().parents[2] / "specs"


@pytest.mark.parametrize("stage", [0, 4, 8])
def test_celebahq_forward_backward_on_gpu(stage: int) -> None:
    c = compile_spec(SPECS / "celebahq_1024.yaml")
    G, D = c.G.cuda(), c.D.cuda()
    z = torch.randn(2, G.z_dim, device="cuda")
    for alpha in (0.0, 0.5, 1.0):
        x = G(z, stage, alpha)
        assert x.shape == (2, 3, 4 * 2 ** stage, 4 * 2 ** stage)
        score = D(x, stage, alpha)
        score.sum().backward()
        assert torch.isfinite(score).all()
        assert all(torch.isfinite(p.grad).all() for p in G.parameters() if p.grad is not None)
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)


def test_gpu_matches_cpu_in_fp32() -> None:
    # cuDNN convolutions default to TF32 on Ampere and later; the paper-faithful setting is fp32.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    c = compile_spec(SPECS / "mnist_32.yaml")
    G = c.G.eval()
    z = torch.randn(8, G.z_dim)
    ref = G(z, 3, 0.5)
    out = G.cuda()(z.cuda(), 3, 0.5).cpu()
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_bf16_autocast_forward() -> None:
    c = compile_spec(SPECS / "mnist_32.yaml")
    G, D = c.G.cuda(), c.D.cuda()
    z = torch.randn(8, G.z_dim, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        s = D(G(z, 3, 0.5), 3, 0.5)
    assert torch.isfinite(s.float()).all()
