"""The GPU benchmark scripts' CPU paths: bench_gpu.py --dry-run end to end, and bench_train.py's
--cuda-graphs mode (the static steps, eager on the CPU), so a GPU session finds them working."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_bench_gpu_dry_run(capsys):
    import bench_gpu

    assert bench_gpu.main(["--dry-run", "--modes", "fp32,fp32_graphs", "--project-modes", "fp32_graphs", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    cells = [r for r in rows if "net" in r]
    assert [(r["minibatch"], r["mode"]) for r in cells] == [(4, "fp32"), (4, "fp32_graphs"), (8, "fp32"), (8, "fp32_graphs")]
    assert all(r["status"] == "ok" and r["images_per_s"] > 0 for r in cells)
    stages = [r for r in rows if r.get("projection") == "fp32_graphs" and "resolution" in r]
    assert [r["resolution"] for r in stages] == [4, 8, 16]
    total = [r for r in rows if "seconds" in r]
    assert len(total) == 1 and total[0]["gpus"] == 8
    # The projection is the schedule's images at the measured rates (fades scaled by the FLOP ratio).
    rates = {r["resolution"]: r["images_per_s"] for r in stages}
    secs, phases = bench_gpu.project(bench_gpu._compile(bench_gpu.TINY), rates)
    assert abs(secs - total[0]["seconds"]) < 1e-9 * secs
    assert sum(kimg for _, kimg, _, _ in phases) == 2.0


def test_bench_gpu_time_budget_skips_cells(capsys):
    import bench_gpu

    assert bench_gpu.main(["--dry-run", "--modes", "fp32", "--no-project", "--budget", "0", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["status"] == "ok" and rows[1]["status"].startswith("skipped (time budget")


def test_bench_train_graphs_modes_parse_and_run_on_cpu():
    import bench_train as B
    from progan_zoo.cli import build_parser

    parser = build_parser()
    for m in B.MODES:
        parser.parse_args(["train", "x.yaml", *m.argv()])   # every mode's flags are real train flags
    assert "--cuda-graphs" in B.BY_NAME["cuda_graphs"].argv() and B.BY_NAME["cuda_graphs"].cuda_only

    class Args:
        spec = str(ROOT / "tests" / "fixtures" / "specs" / "tiny_16.yaml")
        data, stage, fading, batch = None, None, True, 8

    bench = B.Bench(Args, B.BY_NAME["cuda_graphs"], torch.device("cpu"))
    assert bench.static is not None and not bench.static.capture
    assert bench.block(2) > 0 and bench.flops(2) > 0
    assert all(torch.isfinite(p).all() for p in bench.nets.G.parameters())
