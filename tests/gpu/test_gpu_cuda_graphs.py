"""--cuda-graphs on a CUDA machine (run with `pytest -m gpu`): capture, replay, re-capture on every phase
change and Adam reset, and results that agree with the eager static steps and the default loop.

On the CPU the static steps are bitwise the default loop (tests/train/test_cuda_graphs.py). On CUDA the
captured kernels are the eager static step's, but cuDNN may pick other algorithms per process and the
default Adam's foreach kernels take the per-step factors as host scalars rather than device tensors, so
these tests compare within float32 tolerances over a few steps rather than bitwise.
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from progan_zoo.train import checkpoint as ckpt_io
from progan_zoo.train.config import TrainConfig
from progan_zoo.train.dist import init_distributed, shutdown
from progan_zoo.train.optim import reset_optimizers
from progan_zoo.train.trainer import Run

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "specs" / "tiny_16.yaml"


def _run(out: Path, steps: int, resume: str | None = None, **kw) -> Run:
    cfg = TrainConfig(spec=None if resume else str(TINY), out=str(out), resume=resume, device="cuda", max_steps=steps,
                      tick_kimg=0.1, progress=False, grid=4, tensorboard="off", **kw)
    info = init_distributed("cuda")
    try:
        with ExitStack() as held:
            run = Run(cfg, info, held)
            run.train()
            return run
    finally:
        shutdown(info)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    ckpt = ckpt_io.list_checkpoints(out)[-1]
    return {f"{n}.{k}": v for n in ("G", "G_ema", "D") for k, v in load_file(str(ckpt / f"{n}.safetensors")).items()}


def _close(a: dict, b: dict, rtol: float, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=rtol, atol=atol, msg=k)


def test_captured_steps_agree_with_eager_static_and_default(tmp_path: Path) -> None:
    """12 minibatches at 4x4: 3 eager warm-up steps per kind, then 9 replays."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    graphs = _run(tmp_path / "graphs", 12, cuda_graphs=True)
    assert graphs.static is not None and graphs.static.captures == 2    # the D step (with EMA) and the G step
    _run(tmp_path / "eager", 12, static_steps=True)
    _run(tmp_path / "default", 12)
    g, e, d = _weights(tmp_path / "graphs"), _weights(tmp_path / "eager"), _weights(tmp_path / "default")
    _close(g, e, rtol=1e-4, atol=1e-5)
    _close(g, d, rtol=1e-3, atol=1e-4)


def test_recaptures_across_fade_and_growth(tmp_path: Path) -> None:
    """60 minibatches of 8 with --lazy-penalty 2: 28 at 4x4, 24 fading in 8x8, 8 at 8x8 stable (groups of 4).
    Each phase captures three kinds (D with the penalty, D without, G): 9 graphs."""
    run = _run(tmp_path / "run", 60, cuda_graphs=True, lazy_penalty=2)
    assert run.static.captures == 9
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["resolution"] == 8 and any(0 < r["alpha"] < 1 for r in log)
    assert all(abs(r["D/loss"]) < 1e6 and abs(r["G/loss"]) < 1e6 for r in log)
    for v in _weights(tmp_path / "run").values():
        assert torch.isfinite(v).all()


def test_resume_with_cuda_graphs(tmp_path: Path) -> None:
    """Cut mid-fade and resumed: new buffers, Adam state read back, fresh captures; close to one run."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    _run(tmp_path / "whole", 40, cuda_graphs=True)
    _run(tmp_path / "cut", 32, cuda_graphs=True)
    resumed = _run(tmp_path / "cut", 8, resume=str(tmp_path / "cut"), cuda_graphs=True)
    assert resumed.static.captures >= 1 and resumed.nimg == 320
    _close(_weights(tmp_path / "whole"), _weights(tmp_path / "cut"), rtol=1e-2, atol=1e-3)


def test_adam_reset_recaptures(tmp_path: Path) -> None:
    run = _run(tmp_path / "run", 4, cuda_graphs=True)
    static, n = run.static, run.nets
    phase = run.sched.at(run.nimg / 1000.0)
    before = static.captures
    g = torch.Generator().manual_seed(1)
    batch = lambda: (torch.rand(8, 3, phase.resolution, phase.resolution, generator=g).cuda() * 2 - 1,  # noqa: E731
                     torch.randn(8, n.G.z_dim, generator=g).cuda(), torch.rand(8, generator=g).cuda())
    for _ in range(2):
        static.d_step(*batch(), phase)
    reset_optimizers(n.opt_D)          # the official reset: new Adam state, so the D graph is stale
    for _ in range(4):
        static.d_step(*batch(), phase)
    assert static.captures == before + 1
    assert all(torch.isfinite(p).all() for p in n.D.parameters())


@pytest.mark.parametrize("flags", [{"amp": "bf16"}, {"tf32": True, "channels_last": True}, {"lazy_penalty": 4}])
def test_modes_capture_and_train(tmp_path: Path, flags: dict) -> None:
    run = _run(tmp_path / "run", 16, cuda_graphs=True, **flags)
    assert run.static.captures >= 2
    for v in _weights(tmp_path / "run").values():
        assert torch.isfinite(v).all()


def test_bench_gpu_quick(capsys) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_gpu

    assert bench_gpu.main(["--nets", "bench-32", "--batches", "32", "--modes", "fp32,fp32_graphs", "--no-project",
                           "--seconds", "0.2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["mode"] for r in rows] == ["fp32", "fp32_graphs"]
    assert all(r["status"] == "ok" and r["peak_gib"] > 0 for r in rows) and rows[1]["captures"] == 2
