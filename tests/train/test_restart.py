"""No dead ends after a kill: a run killed before its first checkpoint is started again by ``--resume``
with its recorded settings and ends bitwise equal to an uninterrupted run; a run resumed from a
checkpoint drops what was written after it (rundir.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from progan_zoo.cli import main
from progan_zoo.train import checkpoint as ckpt_io
from progan_zoo.train import rundir
from progan_zoo.train.config import TrainConfig
from progan_zoo.train.trainer import train

# 0.6 kimg, a tick every 0.1 kimg, one checkpoint: at the end (snapshot-ticks beyond the run's ticks).
FLAGS = ["--kimg", "0.6", "--tick-kimg", "0.1", "--snapshot-ticks", "100", "--seed", "3", "--no-progress"]


def _weights(run: Path) -> dict:
    last = ckpt_io.latest_checkpoint(run)
    return {stem: load_file(str(last / f"{stem}.safetensors")) for stem in ("G", "G_ema", "D", "optim")}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[s].keys() == b[s].keys() and all(a[s][k].dtype == b[s][k].dtype and bool((a[s][k] == b[s][k]).all())
                                           for k in a[s]) for s in a)


def kill_when(cmd: list[str], ready, timeout: float = 120.0) -> subprocess.Popen:
    """Start ``cmd`` and SIGKILL it as soon as ``ready()`` holds."""
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    start = time.time()
    while not ready():
        assert proc.poll() is None, f"finished before the kill: {proc.stderr.read()[-2000:]}"
        assert time.time() - start < timeout, "never got ready"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc


def _log_lines(run: Path) -> int:
    try:
        return len((run / "log.jsonl").read_text().splitlines())
    except OSError:
        return 0


def test_killed_before_first_checkpoint_resumes_to_the_same_weights(tiny_spec, tmp_path, capsys):
    ref = tmp_path / "ref"
    assert main(["train", str(tiny_spec), "--out", str(ref), *FLAGS]) == 0
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "progan_zoo", "train", str(tiny_spec), "--out", str(run), *FLAGS]
    kill_when(cmd, lambda: _log_lines(run) >= 1)
    assert ckpt_io.latest_checkpoint(run) is None and (run / rundir.LOCK).exists()
    before = sorted(os.listdir(run))
    capsys.readouterr()

    # A plain `train --out DIR` refuses, writes nothing, and names the way on.
    assert main(["train", str(tiny_spec), "--out", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stopped before its first checkpoint" in err and f"--resume {run}" in err
    assert sorted(os.listdir(run)) == before

    # --resume starts it again with its recorded settings (seed 3, 0.6 kimg: not the defaults), saying so in one line.
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "starting it again from the beginning" in err and "seed 3" in err, err
    assert _same(_weights(run), _weights(ref))
    # Replaced cleanly: one history in the log, the same sample grids, no lock or half-written checkpoint left.
    ticks = [json.loads(line)["tick"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert ticks == [json.loads(line)["tick"] for line in (ref / "log.jsonl").read_text().splitlines()]
    assert ticks == list(range(1, len(ticks) + 1))
    assert sorted(os.listdir(run / "samples")) == sorted(os.listdir(ref / "samples"))
    assert (run / "samples" / "latest.png").read_bytes() == (ref / "samples" / "latest.png").read_bytes()
    assert not (run / rundir.LOCK).exists() and [p.name for p in (run / "checkpoints").iterdir()] == ["ckpt-000000608"]
    assert len(list(run.glob(rundir.TENSORBOARD_GLOB))) <= 1
    assert json.loads((run / "run.json").read_text())["restarted"] is True


def test_killed_during_first_checkpoint_write(tiny_spec, tmp_path, capsys):
    """The first checkpoint's write is cut after its first file: no complete checkpoint, a .tmp folder."""
    run = tmp_path / "run"
    env = {**os.environ, "PROGAN_ZOO_KILL_IN_CHECKPOINT": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "progan_zoo", "train", str(tiny_spec), "--out", str(run), "--kimg", "0.2",
           "--tick-kimg", "0.1", "--seed", "1", "--no-progress"]
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=240).returncode == -signal.SIGKILL
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["ckpt-000000224.tmp"]
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "starting it again" in capsys.readouterr().err
    ref = tmp_path / "ref"
    train(TrainConfig(spec=str(tiny_spec), out=str(ref), kimg=0.2, tick_kimg=0.1, seed=1, progress=False))
    assert _same(_weights(run), _weights(ref))
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["ckpt-000000224"]


def test_restart_into_a_new_directory_leaves_the_old_one(tiny_spec, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "spec.yaml").write_text(tiny_spec.read_text())
    (old / "run.json").write_text(json.dumps({"seed": 5, "total_kimg": 0.1, "tick_kimg": 0.1, "data": "mnist",
                                              "spec_sha256": "recorded"}))
    (old / "log.jsonl").write_text('{"tick": 1}\n')
    new = tmp_path / "new"
    train(TrainConfig(resume=str(old), out=str(new), progress=False))
    assert (old / "log.jsonl").read_text() == '{"tick": 1}\n'
    recorded = json.loads((new / "run.json").read_text())
    assert recorded["seed"] == 5 and recorded["total_kimg"] == 0.1 and ckpt_io.latest_checkpoint(new) is not None


def test_nothing_recorded_is_refused_with_the_way_on(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / rundir.LOCK).write_text(json.dumps({"pid": 2**22 + 7, "host": "elsewhere"}))
    with pytest.raises(Exception, match="before it recorded its spec.*progan-zoo train SPEC --out"):
        rundir.never_checkpointed(run)
    with pytest.raises(Exception, match="nothing was started there.*progan-zoo train SPEC --out"):
        rundir.never_checkpointed(tmp_path / "nowhere")


def test_trim_to_checkpoint_drops_later_ticks(tmp_path):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "checkpoints" / "ckpt-000002000.tmp").mkdir(parents=True)
    (run / "log.jsonl").write_text("".join(json.dumps({"tick": t, "kimg": t}) + "\n" for t in range(1, 5)))
    (run / "metrics.jsonl").write_text(json.dumps({"tick": 3, "during_training": True}) + "\n"
                                       + json.dumps({"tick": 9, "snapshot": "evaluate"}) + "\n")
    for k in (0, 1, 2, 3):
        (run / "samples" / f"kimg-{k:06d}.png").write_bytes(bytes([k]))
    (run / "samples" / "latest.png").write_bytes(bytes([3]))
    rundir.trim_to_checkpoint(run, tick=2, nimg=1500)
    assert [json.loads(x)["tick"] for x in (run / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert [json.loads(x)["tick"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [9]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["kimg-000000.png", "kimg-000001.png", "latest.png"]
    assert (run / "samples" / "latest.png").read_bytes() == bytes([1])
    assert not (run / "checkpoints" / "ckpt-000002000.tmp").exists()


def test_restart_refuses_another_spec(tiny_spec, tmp_path):
    from progan_zoo.errors import UserError

    old = tmp_path / "old"
    old.mkdir()
    (old / "spec.yaml").write_text(tiny_spec.read_text())
    other = tmp_path / "other.yaml"
    other.write_text(tiny_spec.read_text().replace("total_kimg: 2", "total_kimg: 3"))
    (old / rundir.LOCK).write_text(json.dumps({"pid": 2**22 + 7, "host": "elsewhere"}))
    with pytest.raises(UserError, match="differs from the spec"):
        train(TrainConfig(spec=str(other), resume=str(old), progress=False))
    assert sorted(os.listdir(old)) == ["spec.yaml", rundir.LOCK]


def test_a_saved_model_folder_is_not_a_run_to_start_again(tmp_path):
    """It holds a spec.yaml too, but no run.json or lock: --resume refuses it as before, writing nothing."""
    from progan_zoo.errors import UserError

    model = tmp_path / "model"
    model.mkdir()
    (model / "spec.yaml").write_text("name: x\n")
    (model / "metadata.json").write_text("{}")
    assert rundir.never_checkpointed(model) is None
    with pytest.raises(UserError, match="no complete checkpoint"):
        train(TrainConfig(resume=str(model), progress=False))
    assert sorted(os.listdir(model)) == ["metadata.json", "spec.yaml"]


def test_killed_before_spec_and_run_json_are_written(tiny_spec, tmp_path, capsys):
    """Killed right after taking the lock: the lock's record is enough to start it again."""
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    run.mkdir()
    record = {"spec": str(tiny_spec), "seed": 2, "data": None, "mirror": None, "total_kimg": 0.1, "tick_kimg": 0.05}
    (run / rundir.LOCK).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "x",
                                               "run": record}))
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "starting it again from the beginning" in capsys.readouterr().err
    ref = tmp_path / "ref"
    train(TrainConfig(spec=str(tiny_spec), out=str(ref), kimg=0.1, tick_kimg=0.05, seed=2, progress=False))
    assert _same(_weights(run), _weights(ref))
    assert (run / "spec.yaml").read_text() == tiny_spec.read_text() and not (run / rundir.LOCK).exists()


def test_the_lock_records_a_new_runs_settings(tiny_spec, tmp_path):
    from progan_zoo.train.dist import DistInfo
    from progan_zoo.train.trainer import Run
    from contextlib import ExitStack

    with ExitStack() as held:
        Run(TrainConfig(spec=str(tiny_spec), out=str(tmp_path / "r"), seed=9, kimg=0.3, progress=False), DistInfo(), held)
        record = json.loads((tmp_path / "r" / rundir.LOCK).read_text())["run"]
    assert record == {"spec": str(tiny_spec.resolve()), "seed": 9, "data": None, "mirror": None, "total_kimg": 0.3,
                      "tick_kimg": None}
