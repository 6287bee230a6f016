"""A run that shows itself: metrics during training, TensorBoard event files, and ``progan-zoo plot``."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from progan_zoo.cli import main
from progan_zoo.train.monitor import open_tensorboard, scalar_tag
from progan_zoo.train.plot import read_log, stages_from_log, stages_from_spec

TINY = str(Path(__file__).resolve().parents[1] / "fixtures" / "specs" / "tiny_mnist_16.yaml")

SCALARS = {"D/loss", "G/loss", "D/gp", "progress/images_per_s", "progress/lod", "progress/alpha",
           "progress/learning_rate", "metrics/swd_avg"}


@pytest.fixture(scope="module")
def shown_run(tmp_path_factory):
    """The tiny spec for 60 steps (4x4, the 8x8 fade, 8x8), SWD every 2 ticks, TensorBoard on."""
    pytest.importorskip("tensorboard")
    out = tmp_path_factory.mktemp("shown") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc = main(["train", TINY, "--out", str(out), "--steps", "60",
                   "--tick-kimg", "0.2", "--no-progress", "--grid", "16", "--metrics", "swd", "--metrics-ticks", "2",
                   "--metrics-num", "128", "--tensorboard", "on"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    return out


def test_metrics_are_measured_every_n_ticks_and_at_the_end(shown_run):
    log = read_log(shown_run)
    assert [r["tick"] for r in log] == [1, 2, 3]
    assert [("metrics/swd_avg" in r) for r in log] == [False, True, True]      # tick 2, and the last tick
    results = [json.loads(line) for line in (shown_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["tick"] for r in results] == [2, 3] and all(r["during_training"] for r in results)
    assert results[-1]["settings"]["num_real"] == results[-1]["settings"]["num_fake"] == 128
    assert log[-1]["metrics/swd_avg"] == pytest.approx(results[-1]["results"]["swd_avg"])
    assert 0 < log[-1]["metrics/swd_avg"] < 1000


def test_tensorboard_event_files_hold_the_tick_scalars_and_grids(shown_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert list(shown_run.glob("events.out.tfevents.*"))
    ea = EventAccumulator(str(shown_run), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    tags = ea.Tags()
    assert SCALARS <= set(tags["scalars"]), sorted(tags["scalars"])
    log = read_log(shown_run)
    steps = [int(round(r["kimg"] * 1000)) for r in log]
    for key in ("D/loss", "G/loss", "D/gp", "images_per_s", "lod", "alpha", "learning_rate"):
        events = ea.Scalars(scalar_tag(key))
        assert [e.step for e in events] == steps
        np.testing.assert_allclose([e.value for e in events], [r[key] for r in log], rtol=1e-6)
    swd = ea.Scalars("metrics/swd_avg")
    assert [e.step for e in swd] == steps[1:]
    images = ea.Images("samples")
    assert [im.step for im in images] == steps
    assert (images[-1].width, images[-1].height) == Image.open(shown_run / "samples" / "latest.png").size


def test_plot_writes_a_png_with_the_stages(shown_run, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert main(["plot", str(shown_run), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    img = np.asarray(Image.open(out).convert("L"), dtype=np.float32)
    assert img.shape[0] > 600 and img.shape[1] > 600 and img.std() > 10
    # Six panels (losses, penalty, images/s, lod and alpha, learning rate, metrics) stack vertically.
    assert img.shape[0] > 2.0 * img.shape[1] * 0.6
    # The 8x8 stage fades in over kimg 0.2..0.4 (the spec), and the logged lod agrees.
    stages = stages_from_spec(shown_run / "spec.yaml", 0.48)
    assert [(s.resolution, s.fade_start, s.fade_end) for s in stages] == [(8, 0.2, 0.4)]
    from_log = stages_from_log(read_log(shown_run))
    assert [s.resolution for s in from_log] == [8]
    assert main(["plot", str(shown_run)]) == 0 and (shown_run / "training.png").is_file()


def test_plot_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch):
    assert main(["plot", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nowhere: no such file (hint: give a run directory" in err and "\n" not in err
    (tmp_path / "log.jsonl").write_text('{"kimg": 1.0, "lod": 0}\nnot json\n')
    assert main(["plot", str(tmp_path)]) == 2
    assert "log.jsonl:2: not a JSON line" in capsys.readouterr().err
    (tmp_path / "log.jsonl").write_text('{"kimg": 1.0, "lod": 0, "G/loss": 1.0}\n')
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "progan-zoo plot: error: progan-zoo plot needs matplotlib (hint: pip install 'progan-zoo[plots]')"


def test_tensorboard_modes(tmp_path, monkeypatch):
    assert open_tensorboard(tmp_path, "off") is None
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert open_tensorboard(tmp_path, "auto") is None          # a base install trains without it
    with pytest.raises(Exception, match=r"pip install 'progan-zoo\[tensorboard\]'"):
        open_tensorboard(tmp_path, "on")
    assert not list(tmp_path.iterdir())


def test_unknown_metric_is_a_usage_error(tmp_path, capsys):
    rc = main(["train", TINY, "--out", str(tmp_path / "r"), "--steps", "1",
               "--metrics", "swd,nope", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--metrics nope: unknown metric" in err and "swd" in err
