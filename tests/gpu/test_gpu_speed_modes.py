"""The opt-in speed modes on CUDA (run with `pytest -m gpu` on a CUDA machine): every mode trains a
few minibatches with finite losses, and --shared-fakes and --lazy-penalty 1 give the default's weights."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))


class _Args:
    spec = str(ROOT / "tests" / "fixtures" / "specs" / "tiny_16.yaml")
    data = None
    stage = None
    fading = True
    batch = 8


@pytest.mark.parametrize("mode", ["fp32", "channels_last", "fast", "bf16", "bf16_all", "tf32", "tf32_fast"])
def test_mode_trains_on_cuda(mode: str) -> None:
    import bench_train as B

    bench = B.Bench(_Args, B.BY_NAME[mode], torch.device("cuda"))
    bench.block(8)
    for p in list(bench.nets.G.parameters()) + list(bench.nets.D.parameters()):
        assert torch.isfinite(p).all()


def test_shared_fakes_equal_default_for_same_latents_on_cuda() -> None:
    from progan_zoo.train.steps import d_step, g_step
    import bench_train as B

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    out = []
    for mode in ("fp32", "shared"):
        bench = B.Bench(_Args, B.BY_NAME[mode], torch.device("cuda"))
        n, phase = bench.nets, bench.phase
        g = torch.Generator(device="cuda").manual_seed(0)
        z = torch.randn(8, n.G.z_dim, device="cuda", generator=g)
        mix = torch.rand(8, device="cuda", generator=g)
        reals = torch.rand(8, n.G.image_channels, phase.resolution, phase.resolution, device="cuda", generator=g) * 2 - 1
        fakes = n.fmt(n.G(z, phase.stage, phase.alpha)) if mode == "shared" else None
        d_step(n, reals, z, mix, phase, fakes=fakes)
        g_step(n, z, phase, fakes=fakes)
        out.append(n.G.state_dict())
    for k in out[0]:
        torch.testing.assert_close(out[0][k], out[1][k], rtol=1e-4, atol=1e-5, msg=k)
