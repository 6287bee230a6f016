"""The metric registry, the metrics log and evaluate() on a tiny generator."""

from __future__ import annotations

import json

import pytest
import torch

from progan_zoo.metrics import registry as R
from progan_zoo.metrics.evaluate import evaluate, format_table


class TinyG(torch.nn.Module):
    """G(z) -> [-1, 1] images of 32x32 (the interface the compiler's generator offers)."""

    z_dim, resolution = 16, 32

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(16, 3 * 8 * 8)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.fc(z)).view(-1, 3, 8, 8)
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


def test_unknown_metric_lists_known_names() -> None:
    with pytest.raises(R.UnknownMetricError) as err:
        R.METRICS.get("fidd")
    msg = str(err.value)
    assert "fidd" in msg and "swd" in msg and "fid" in msg and "msssim" in msg


def test_register_twice_is_an_error() -> None:
    reg = R.Registry("thing")
    reg.register("a")(lambda ctx: {})
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(lambda ctx: {})


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, progan_zoo.metrics; print('torch_fidelity' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_evaluate_writes_json_log_and_table(tmp_path, digits: torch.Tensor) -> None:
    real = digits[:64].expand(-1, 3, -1, -1)
    out_json = tmp_path / "eval.json"
    res = evaluate(TinyG(), ["swd", "msssim", "is"], num=64, real=real, out_json=out_json, seed=1,
                   run_dir=tmp_path, msssim_pairs=8, log_extra={"kimg": 12})
    assert set(res["swd"]) == {"swd_32", "swd_16", "swd_avg"}
    assert 0.0 <= res["msssim"]["msssim"] <= 1.0
    assert "classifier head" in res["is"]["unavailable"]
    assert json.loads(out_json.read_text())["swd"] == res["swd"]
    log = R.read_metrics_log(tmp_path)
    assert [r["metric"] for r in log] == ["swd", "msssim"] and log[0]["kimg"] == 12
    table = format_table(res)
    assert "swd_avg" in table and "unavailable" in table
    print(table)
    # Same seed, same numbers; a second run appends to the log.
    again = evaluate(TinyG(), ["swd"], num=64, real=iter([real[:40], real[40:]]), seed=1, run_dir=tmp_path)
    assert again["swd"] == res["swd"]
    assert len(R.read_metrics_log(tmp_path)) == 3


def test_calc_metric_noise_floor(digits: torch.Tensor) -> None:
    rec = R.calc_metric("swd_noise_floor", real=digits[:128], num=64)
    assert rec["metric"] == "swd_noise_floor" and rec["settings"]["num_real"] == 64 and rec["results"]["swd_avg"] > 0
