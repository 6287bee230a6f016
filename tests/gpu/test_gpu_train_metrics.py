"""GPU checks of the trainer and the metrics (run with `pytest -m gpu` on a CUDA machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from progan_zoo.cli import main

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "specs" / "tiny_16.yaml"


@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_train_on_gpu_across_a_growth_step(tmp_path: Path, amp: str) -> None:
    out = tmp_path / f"run-{amp}"
    rc = main(["train", str(TINY), "--device", "cuda", "--out", str(out), "--steps", "60", "--amp", amp,
               "--tick-kimg", "0.2", "--no-progress", "--grid", "16"])
    assert rc == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["resolution"] == 8
    assert all(abs(r["D/loss"]) < 1e6 and abs(r["G/loss"]) < 1e6 for r in log)
    assert (out / "samples" / "latest.png").exists()
    # Resume on the GPU continues from the checkpoint.
    rc = main(["train", "--resume", str(out), "--device", "cuda", "--steps", "10", "--no-progress", "--amp", amp])
    assert rc == 0


def test_swd_cuda_matches_cpu() -> None:
    from progan_zoo.metrics.swd import sliced_wasserstein_distance

    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (96, 3, 32, 32), dtype=torch.uint8, generator=g)
    b = (a.float() * 0.8 + 20).clamp(0, 255).to(torch.uint8)
    cpu = sliced_wasserstein_distance(a, b, seed=3, device="cpu", progress=False)
    gpu = sliced_wasserstein_distance(a, b, seed=3, device="cuda", progress=False)
    for key in cpu:
        assert gpu[key] == pytest.approx(cpu[key], rel=1e-3), key
