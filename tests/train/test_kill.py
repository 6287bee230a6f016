"""kill -9 in the middle of writing a checkpoint leaves the last complete one, and the run resumes from it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from safetensors.torch import load_file

from progan_zoo.train import checkpoint as ckpt_io
from progan_zoo.train.config import TrainConfig
from progan_zoo.train.trainer import train


def test_kill_during_checkpoint_write_then_resume(tiny_spec, tmp_path):
    out = tmp_path / "run"
    # Checkpoints every 0.1 kimg, checked after each group of 4 minibatches (32 images): at 128, 256, 384, ...; the 3rd checkpoint write is killed after its first file.
    env = {**os.environ, "PROGAN_ZOO_KILL_IN_CHECKPOINT": "3", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "progan_zoo", "train", str(tiny_spec), "--out", str(out), "--tick-kimg", "0.1",
           "--snapshot-ticks", "1", "--keep", "5", "--no-progress", "--data", "lfw-100"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    folder = out / "checkpoints"
    tmp = sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))
    assert tmp == ["ckpt-000000384.tmp"]                      # the half-written one
    assert sorted(os.listdir(folder / tmp[0])) == ["G.safetensors"]
    last = ckpt_io.latest_checkpoint(out)
    assert last.name == "ckpt-000000256"
    ckpt = ckpt_io.load_checkpoint(out)
    assert ckpt.state.nimg == 256 and set(ckpt.tensors("G_ema")) == set(load_file(str(last / "G.safetensors")))
    train(TrainConfig(resume=str(out), max_steps=30, progress=False, tick_kimg=0.1, snapshot_ticks=1))
    names = [p.name for p in ckpt_io.list_checkpoints(out)]
    # 30 steps round up to the end of their group: 32 minibatches of 8 images.
    assert names[-1] == "ckpt-000000512" and "ckpt-000000384" in names
    assert not any(p.name.endswith(".tmp") for p in folder.iterdir())   # stale .tmp cleaned up
