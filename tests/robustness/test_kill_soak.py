"""Kill soak (slow): a run SIGKILLed at random moments, including before its first checkpoint and
during the first checkpoint's write, and resumed with ``progan-zoo train --resume DIR`` each time,
ends bitwise equal to an uninterrupted run, with one history in its log.

``PROGAN_ZOO_SOAK_SEED`` picks the kill moments (default 23); ``PROGAN_ZOO_SOAK_KILLS`` how many
random ones follow the three fixed ones (default 8).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from progan_zoo.train import checkpoint as ckpt_io
from progan_zoo.train import rundir

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "specs" / "tiny_mnist_16.yaml"
# 1.6 kimg in ticks of 0.1, a checkpoint every 2 ticks: 8 checkpoints, the first at tick 2.
FLAGS = ["--kimg", "1.6", "--tick-kimg", "0.1", "--snapshot-ticks", "2", "--keep", "2", "--no-progress"]
RESUME_FLAGS = ["--snapshot-ticks", "2", "--keep", "2", "--no-progress"]


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "progan_zoo", "train", *args]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


def _run_killed(cmd: list[str], when, env: dict[str, str] | None = None, timeout: float = 300) -> int:
    """Run ``cmd``; SIGKILL it once ``when()`` holds. Returns its exit status (-9 when killed)."""
    proc = subprocess.Popen(cmd, env=env or _env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    start = time.time()
    while proc.poll() is None:
        if when():
            proc.send_signal(signal.SIGKILL)
            break
        assert time.time() - start < timeout, "the run hangs"
        time.sleep(0.02)
    _, err = proc.communicate()
    assert proc.returncode in (0, -signal.SIGKILL), err[-3000:]
    return proc.returncode


def _checkpoint_tick(run: Path) -> int:
    last = ckpt_io.latest_checkpoint(run)
    return json.loads((last / "state.json").read_text())["tick"] if last else 0


def _last_tick(run: Path) -> int:
    try:
        lines = (run / "log.jsonl").read_text().splitlines()
        return json.loads(lines[-1])["tick"] if lines else 0
    except (OSError, ValueError, KeyError):  # being written or trimmed this moment
        return 0


def _ticks(run: Path) -> list[int]:
    return [json.loads(line)["tick"] for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_kill_soak_ends_bitwise_equal(tmp_path):
    rng = random.Random(int(os.environ.get("PROGAN_ZOO_SOAK_SEED", "23")))
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert subprocess.run(_cmd(str(TINY), "--out", str(ref), *FLAGS), env=_env(), capture_output=True).returncode == 0

    kills = []
    # 1. Before the first checkpoint: as soon as the first tick is logged.
    log = run / "log.jsonl"
    rc = _run_killed(_cmd(str(TINY), "--out", str(run), *FLAGS), lambda: log.exists() and log.stat().st_size > 0)
    assert rc == -signal.SIGKILL and ckpt_io.latest_checkpoint(run) is None
    kills.append("after the first tick, before any checkpoint")
    # 2. During the first checkpoint's write (the trainer's test hook kills it after the first file).
    rc = _run_killed(_cmd("--resume", str(run), *RESUME_FLAGS), lambda: False,
                     env=_env(PROGAN_ZOO_KILL_IN_CHECKPOINT="1"))
    assert rc == -signal.SIGKILL and ckpt_io.latest_checkpoint(run) is None
    assert any(p.name.endswith(".tmp") for p in (run / "checkpoints").iterdir())
    kills.append("during the first checkpoint's write")
    # 3. During a later checkpoint's write: this process completes its first checkpoint and dies in its second.
    rc = _run_killed(_cmd("--resume", str(run), *RESUME_FLAGS), lambda: False,
                     env=_env(PROGAN_ZOO_KILL_IN_CHECKPOINT="2"))
    assert rc == -signal.SIGKILL and ckpt_io.latest_checkpoint(run) is not None
    kills.append(f"during a later checkpoint's write (after {ckpt_io.latest_checkpoint(run).name})")
    # 4. At random moments, each time resumed: in the start-up (before any new tick), or a random time
    #    after the k-th new tick (a busy machine can take longer to start than any fixed delay).
    for _ in range(int(os.environ.get("PROGAN_ZOO_SOAK_KILLS", "8"))):
        start, since = time.time(), max(_checkpoint_tick(run), _last_tick(run))  # lines past the checkpoint are re-logged first
        if rng.random() < 0.3:
            delay = rng.uniform(0.2, 2.0)
            when, what = (lambda: time.time() - start > delay), f"{delay:.2f} s after the start"
        else:
            k, extra = rng.randint(1, 2), rng.uniform(0.0, 0.3)
            seen: list[float] = []

            def when() -> bool:
                if not seen and _last_tick(run) >= since + k:
                    seen.append(time.time())
                return bool(seen) and time.time() - seen[0] > extra
            what = f"{extra:.2f} s after tick {since} + {k}"
        rc = _run_killed(_cmd("--resume", str(run), *RESUME_FLAGS), when)
        last = ckpt_io.latest_checkpoint(run)
        kills.append(f"{what} -> {'finished' if rc == 0 else last.name if last else 'no checkpoint'}")
        if rc == 0:
            break
    else:
        assert _run_killed(_cmd("--resume", str(run), *RESUME_FLAGS), lambda: False) == 0
    print("kills:", *kills, sep="\n  ")

    a, b = ckpt_io.latest_checkpoint(ref), ckpt_io.latest_checkpoint(run)
    assert a.name == b.name
    for stem in ("G", "G_ema", "D", "optim"):
        x, y = load_file(str(a / f"{stem}.safetensors")), load_file(str(b / f"{stem}.safetensors"))
        assert x.keys() == y.keys() and all(bool((x[k] == y[k]).all()) for k in x), f"{stem} differs"
    # The generators training draws from (the global numpy and python ones are not drawn from, and a
    # fresh process seeds them from the OS, so they differ between any two runs).
    rng_a, rng_b = (json.loads((c / "state.json").read_text())["rng"] for c in (a, b))
    for key in ("step_generator", "torch_cpu", "data_sampler"):
        assert rng_a[key] == rng_b[key], key
    assert _ticks(run) == _ticks(ref)                        # one history: no tick twice, none missing
    assert sorted(os.listdir(run / "samples")) == sorted(os.listdir(ref / "samples"))
    assert (run / "samples" / "latest.png").read_bytes() == (ref / "samples" / "latest.png").read_bytes()
    assert not (run / rundir.LOCK).exists() and not list((run / "checkpoints").glob("*.tmp"))
