"""The memory preflight: the largest stage's estimate against the device's free memory, before building."""

from __future__ import annotations

from pathlib import Path

import pytest

from progan_zoo.cli import main
from progan_zoo.compiler import load_spec
from progan_zoo.compiler.graph import to_graph
from progan_zoo.errors import UserError
from progan_zoo.train import preflight as pf

REPO = Path(__file__).resolve().parents[2]


def test_available_cpu_bytes_reads_meminfo(tmp_path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n")
    assert pf.available_cpu_bytes(meminfo) == 8_000_000 * 1024
    # Without /proc/meminfo: psutil when installed, otherwise unknown (None), never an exception.
    missing = pf.available_cpu_bytes(tmp_path / "nope")
    assert missing is None or missing > 0
    assert pf.free_memory("cpu")[0] is None or pf.free_memory("cpu")[0] > 0


def test_celebahq_on_a_small_device_suggests_a_minibatch() -> None:
    spec = load_spec(REPO / "specs" / "celebahq_1024.yaml")
    graph = to_graph(spec)
    free = 40 * 2**30  # less than the 1024x1024 fade stage needs for a minibatch of 32 on one device
    result = pf.preflight(graph, spec, free_bytes=free, where="cuda:0 free memory")
    assert result.stage.label == "1024x1024 fade" and result.minibatch == 32
    assert not result.fits and 1 <= result.fits_minibatch < 32
    assert result.stage.memory_bytes(result.fits_minibatch) <= free < result.stage.memory_bytes(result.fits_minibatch + 1)
    # Eight ranks hold 4 images each (the official 8-GPU preset): that fits.
    assert pf.preflight(graph, spec, free_bytes=free, world=8).fits
    # On CUDA the estimate is taken CUDA_MARGIN larger (cuDNN workspaces, measured on an H100).
    need = result.stage.memory_bytes(4)
    assert pf.preflight(graph, spec, free_bytes=int(need * 1.3), world=8).fits
    assert not pf.preflight(graph, spec, free_bytes=int(need * 1.3), world=8, margin=pf.CUDA_MARGIN).fits
    # A run stopped early only needs the stages it reaches.
    early = pf.preflight(graph, spec, free_bytes=free, until_kimg=1000)
    assert early.fits and early.stage.resolution == 8


def test_check_memory_says_plainly_what_would_fit(monkeypatch) -> None:
    spec = load_spec(REPO / "specs" / "celebahq_1024.yaml")
    graph = to_graph(spec)
    monkeypatch.setattr(pf, "free_memory", lambda device: (20 * 2**30, "cuda:0 free memory (torch.cuda.mem_get_info)"))
    with pytest.raises(UserError) as info:
        pf.check_memory(graph, spec, "cpu")
    msg = str(info.value)
    assert msg.startswith("this spec will not fit: the 1024x1024 fade stage needs about 77.1 GiB per device")
    assert "cuda:0 free memory (torch.cuda.mem_get_info): 20 GiB" in msg
    assert "(hint: a global minibatch of 4 at 1024x1024 would fit (4 per device)" in msg and "\n" not in msg
    monkeypatch.setattr(pf, "free_memory", lambda device: (2**20, "RAM"))
    with pytest.raises(UserError, match="not even one image fits"):
        pf.check_memory(graph, spec, "cpu")
    monkeypatch.setattr(pf, "free_memory", lambda device: (None, "unknown"))
    assert pf.check_memory(graph, spec, "cpu").fits


def test_train_refuses_before_building(monkeypatch, tmp_path, capsys) -> None:
    """`progan-zoo train` on a machine too small: one line, nothing built, no run directory."""
    monkeypatch.setattr(pf, "free_memory", lambda device: (3 * 2**20, "available RAM (/proc/meminfo MemAvailable)"))
    out = tmp_path / "run"
    rc = main(["train", str(REPO / "tests" / "fixtures" / "specs" / "tiny_mnist_16.yaml"), "--out", str(out),
               "--steps", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "this spec will not fit: the 16x16 fade stage needs about" in err
    assert "available RAM (/proc/meminfo MemAvailable): 3 MiB" in err and not out.exists()
