"""``progan-zoo train SPEC --init-from MODEL``: start from a saved model's weights at its stage."""

from __future__ import annotations

import json

import pytest
import torch

from progan_zoo.cli import main
from progan_zoo.errors import UsageError, UserError
from progan_zoo.train.config import TrainConfig
from progan_zoo.train.dist import DistInfo
from progan_zoo.train.schedule import Schedule
from progan_zoo.train.trainer import Run
from progan_zoo.zoo import records as F
from progan_zoo.zoo.finetune import open_parent
from progan_zoo.zoo.weights import load_tensors

from conftest import TINY, make_run

CPU = DistInfo(rank=0, world=1, local_rank=0, device=torch.device("cpu"))


def _run(tmp_path, parent, spec=TINY, **kw) -> Run:
    cfg = TrainConfig(spec=str(spec), data="lfw-100", out=str(tmp_path / "ft"), progress=False,
                      init_from=parent.ref, **kw)
    return Run(cfg, CPU, None, parent)


def test_starts_from_the_models_g_d_and_g_ema_at_its_stage(tiny_model, tmp_path):
    parent = open_parent(str(tiny_model))
    assert parent.G is not None and parent.D is not None and parent.notes == []
    run = _run(tmp_path, parent)
    wfile = tiny_model / F.WEIGHTS
    for net, prefix in ((run.nets.G_ema, ""), (run.nets.G, "G."), (run.nets.D, "D.")):
        saved = load_tensors(wfile, prefix)
        saved = {k: v for k, v in saved.items() if not k.startswith(("G.", "D."))}  # G_ema: unprefixed
        state = net.state_dict()
        assert saved and all(torch.equal(state[k], v) for k, v in saved.items())
    # The model is at its last stage, faded in: the schedule starts where that stage is fully in.
    full_in = Schedule(run.spec).stage_starts()[parent.stage][2]
    assert run.kimg_offset == pytest.approx(full_in)
    phase = run.begin_group()
    assert (phase.stage, phase.alpha, phase.fading) == (parent.stage, 1.0, False)


def test_train_records_the_parent_and_export_shows_it(tiny_model, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(TINY), "--init-from", str(tiny_model), "--data", "lfw-100", "--out", str(out),
                 "--steps", "1", "--no-progress", "--grid", "4"]) == 0
    meta = F.read_metadata(tiny_model)
    rec = json.loads((out / "run.json").read_text())["init_from"]
    assert rec["model"] == str(tiny_model) and rec["spec_sha256"] == meta.spec["sha256"]
    assert rec["weights_sha256"] == meta.weights["sha256"] and rec["loaded"] == ["G_ema", "G", "D"]
    state = json.loads(next((out / "checkpoints").glob("ckpt-*/state.json")).read_text())
    assert state["stage"] == meta.stage
    model = tmp_path / "model"
    assert main(["export", str(out), str(model), "--samples", "4"]) == 0
    assert F.read_metadata(model).training["init_from"] == rec
    card = (model / F.CARD).read_text()
    assert f"fine-tuned from `{tiny_model}`" in card and meta.weights["sha256"] in card


def test_a_mismatched_spec_is_one_line_exit_2(tiny_model, tmp_path, capsys):
    wide = tmp_path / "wide.yaml"
    wide.write_text(TINY.read_text().replace("{resolution: 8, channels: 16}", "{resolution: 8, channels: 24}"))
    assert main(["train", str(wide), "--init-from", str(tiny_model), "--out", str(tmp_path / "r"),
                 "--steps", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "G tensor b8.block.conv0.weight is [24, 16, 3, 3] but" in err and "[16, 16, 3, 3]" in err
    assert not (tmp_path / "r" / "checkpoints").exists()
    grey = tmp_path / "opts.yaml"
    grey.write_text(TINY.read_text().replace("architecture:\n", "architecture:\n  options: {pixel_norm: false}\n"))
    with pytest.raises(UserError, match=r"architecture.options.pixel_norm is False but .* was trained with True"):
        _run(tmp_path, open_parent(str(tiny_model)), spec=grey)


def test_a_folder_without_d_says_so(tmp_path):
    run_dir = make_run(tmp_path / "src")
    from progan_zoo.zoo.export import export_model

    bare = export_model(run_dir, tmp_path / "bare", samples=4)   # G_ema only
    parent = open_parent(str(bare))
    assert parent.G is None and parent.D is None
    assert any("has no discriminator" in n and "--with-training" in n for n in parent.notes)
    run = _run(tmp_path, parent)
    assert all(torch.equal(run.nets.G.state_dict()[k], v) for k, v in parent.G_ema.items())
    with pytest.raises(UsageError, match="--init-from starts a new run and --resume continues one"):
        Run(TrainConfig(spec=str(TINY), resume=str(run_dir), init_from=str(bare), progress=False), CPU, None, parent)


def test_mnist_32_fine_tunes(tmp_path, capsys):
    """The shipped model with its own spec: G_ema only in the folder, so D starts fresh (said on stderr)."""
    out = tmp_path / "mnist-ft"
    assert main(["train", "mnist-32", "--init-from", "mnist-32", "--out", str(out), "--steps", "1",
                 "--no-progress", "--grid", "4"]) == 0
    assert "mnist-32 has no discriminator" in capsys.readouterr().err
    rec = json.loads((out / "run.json").read_text())["init_from"]
    assert rec["name"] == "mnist-32" and rec["loaded"] == ["G_ema"] and rec["resolution"] == 32


def test_a_resumed_fine_tuning_run_keeps_its_place_in_the_schedule(tiny_model, tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(TINY), "--init-from", str(tiny_model), "--data", "lfw-100", "--out", str(out),
                 "--steps", "1", "--no-progress", "--grid", "4"]) == 0
    first = json.loads((out / "run.json").read_text())["init_from"]
    resumed = Run(TrainConfig(resume=str(out), progress=False), CPU)
    assert resumed.kimg_offset == first["schedule_kimg_offset"] > 0
    assert resumed.begin_group().stage == first["stage"]
    resumed.write_run_json()
    assert json.loads((out / "run.json").read_text())["init_from"] == first
