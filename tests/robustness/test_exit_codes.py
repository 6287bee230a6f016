"""Every subcommand's bad input: exit status 2, one line on stderr, no traceback (``--debug`` re-raises).

Each case is what a new user plausibly types or hands over: a missing or wrong file, an unknown name,
a bad flag, an invalid spec, a damaged or hostile file. Failures that are not the input (a full disk,
the network) are exit 1 and tested where they happen (tests/robustness/test_faults.py, tests/zoo).
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from progan_zoo.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "specs" / "tiny_mnist_16.yaml"
MODEL = ROOT / "progan_zoo" / "zoo" / "models" / "mnist-32"


class _Trap:
    """Unpickling this creates a file: proof that nothing is unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def w(tmp_path, monkeypatch) -> Path:
    """A workspace of bad inputs; the user's registry and Hub cache are out of reach."""
    monkeypatch.setenv("PROGAN_ZOO_REGISTRY", str(tmp_path / "registry.json"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PROGAN_ZOO_HOME", str(tmp_path / "zoo"))
    monkeypatch.setenv("PROGAN_ZOO_CACHE", str(tmp_path / "cache"))
    (tmp_path / "garbage.yaml").write_bytes(b"\x00\xff\xfe binary \x89PNG not yaml: [\n")
    (tmp_path / "unknown_key.yaml").write_text(TINY.read_text() + "\nbogus_key: 1\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not an image")
    bad = tmp_path / "bad_pngs"
    bad.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(bad / "good.png")
    png = (bad / "good.png").read_bytes()
    (bad / "truncated.png").write_bytes(png[: len(png) // 2])
    hostile = tmp_path / "hostile"
    shutil.copytree(MODEL, hostile)
    (hostile / "model.safetensors").write_bytes(pickle.dumps({"x": _Trap(tmp_path / "unpickled")}))
    broken_meta = tmp_path / "broken_meta"
    shutil.copytree(MODEL, broken_meta)
    (broken_meta / "metadata.json").write_text("{ not json")
    fake_run = tmp_path / "fake_run"
    (fake_run / "checkpoints" / "ckpt-000001000").mkdir(parents=True)
    shutil.copyfile(TINY, fake_run / "spec.yaml")
    (fake_run / "checkpoints" / "ckpt-000001000" / "state.json").write_text("{ not json")
    (tmp_path / "bad_registry.json").write_text("[1, 2")
    (tmp_path / "hostile.pkl").write_bytes(pickle.dumps(_Trap(tmp_path / "unpickled"), protocol=4))
    (tmp_path / "truncated.pkl").write_bytes(pickle.dumps({"version": 2, "variables": [("a", 1.0)]})[:12])
    return tmp_path


# (subcommand, argv with {w} for the workspace, a piece of the message)
CASES = [
    ("compile", ["{w}/missing.yaml"], "missing.yaml"),
    ("compile", ["{w}/garbage.yaml"], "garbage.yaml"),
    ("compile", ["{w}/unknown_key.yaml"], "bogus_key"),
    ("compile", ["{w}/empty"], "empty"),
    ("compile", [str(TINY), "--stop-after", "nope"], "--stop-after"),
    ("train", ["{w}/missing.yaml", "--out", "{w}/r"], "missing.yaml"),
    ("train", ["{w}/unknown_key.yaml", "--out", "{w}/r"], "bogus_key"),
    ("train", [str(TINY), "--data", "{w}/nowhere", "--out", "{w}/r"], "nowhere"),
    ("train", [str(TINY), "--data", "{w}/empty", "--out", "{w}/r"], "empty"),
    ("train", [str(TINY), "--data", "{w}/bad_pngs", "--out", "{w}/r"], "truncated.png"),
    ("train", [str(TINY), "--device", "tpu", "--out", "{w}/r"], "--device"),
    ("train", ["--resume", "{w}/nowhere"], "nowhere"),
    ("train", ["--resume", "{w}/empty"], "empty"),
    ("train", ["--resume", "{w}/fake_run"], "state.json"),
    ("train", [str(TINY), "--kimg", "lots"], "--kimg"),
    # Issue 23: these used to exit 0 leaving a run with no checkpoint, or 1 with a ValueError.
    ("train", [str(TINY), "--kimg", "-1", "--out", "{w}/r"], "--kimg: '-1': expected a finite number > 0"),
    ("train", [str(TINY), "--kimg", "0", "--out", "{w}/r"], "--kimg: '0'"),
    ("train", [str(TINY), "--kimg", "nan", "--out", "{w}/r"], "--kimg: 'nan'"),
    ("train", [str(TINY), "--tick-kimg", "-2", "--out", "{w}/r"], "--tick-kimg: '-2'"),
    ("train", [str(TINY), "--seed", "-1", "--out", "{w}/r"], "--seed: '-1'"),
    ("generate", [str(MODEL), "--n", "inf"], "--n: 'inf'"),
    ("train", [str(TINY), "--amp", "fp8"], "--amp"),
    ("dataset", ["{w}/nowhere", "{w}/c", "--resolution", "16"], "nowhere"),
    ("dataset", ["{w}/notes.txt", "{w}/c", "--resolution", "16"], "notes.txt"),
    ("dataset", ["{w}/empty", "{w}/c", "--resolution", "16"], "no images"),
    ("dataset", ["{w}/bad_pngs", "{w}/c", "--resolution", "24"], "--resolution"),
    ("dataset", ["{w}/bad_pngs", "{w}/c", "--resolution", "16", "--no-progress"], "truncated.png"),
    ("dataset", ["{w}/bad_pngs", "{w}/empty", "--resolution", "16"], "--overwrite"),
    ("dataset", ["{w}/bad_pngs", "{w}/c"], "--resolution"),
    ("evaluate", ["{w}/nowhere", "--metrics", "swd"], "nowhere"),
    ("evaluate", ["no-such-model", "--metrics", "swd"], "no-such-model"),
    ("evaluate", [str(MODEL), "--metrics", "fidd"], "fidd"),
    ("evaluate", ["{w}/hostile", "--metrics", "swd"], "model.safetensors"),
    ("evaluate", ["{w}/fake_run", "--metrics", "swd"], "state.json"),
    ("export", ["{w}/nowhere", "{w}/out"], "nowhere"),
    ("export", ["{w}/empty", "{w}/out"], "empty"),
    ("export", ["{w}/fake_run", "{w}/out"], "state.json"),
    ("generate", ["{w}/nowhere", "--out", "{w}/g.png"], "nowhere"),
    ("generate", ["no-such-model", "--out", "{w}/g.png"], "no-such-model"),
    ("generate", ["{w}/hostile", "--out", "{w}/g.png"], "model.safetensors"),
    ("generate", ["{w}/broken_meta", "--out", "{w}/g.png"], "metadata.json"),
    ("generate", [str(MODEL), "--n", "0", "--out", "{w}/g.png"], "--n"),
    ("generate", [str(MODEL), "--resolution", "12", "--out", "{w}/g.png"], "12"),
    ("interpolate", ["{w}/nowhere", "--out", "{w}/w.gif"], "nowhere"),
    ("interpolate", [str(MODEL), "--seeds", "1", "--out", "{w}/w.gif"], "--seeds"),
    ("interpolate", [str(MODEL), "--method", "cubic"], "--method"),
    ("import", ["{w}/missing.pkl", "--out", "{w}/imp"], "missing.pkl"),
    ("import", ["{w}/notes.txt", "--out", "{w}/imp"], "notes.txt"),
    ("import", ["{w}/hostile/model.safetensors", "--out", "{w}/imp"], "model.safetensors"),
    ("import", ["{w}/garbage.yaml", "--out", "{w}/imp", "--samples", "0"], "--samples"),
    ("publish", [str(MODEL)], "--repo"),
    ("publish", ["{w}/hostile", "--to", "{w}/reg"], "model.safetensors"),
    ("publish", ["{w}/nowhere", "--to", "{w}/reg"], "nowhere"),
    ("models", ["--remove", "never-added"], "never-added"),
    ("models", ["--add", "Bad Name!", str(MODEL)], "Bad Name!"),
    ("leaderboard", ["--metric", "nope", "--no-hub"], "nope"),
    ("leaderboard", ["--bogus-flag"], "--bogus-flag"),
    ("import", ["{w}/nowhere.pkl", "--out", "{w}/imp"], "nowhere.pkl"),
    ("import", ["{w}/hostile.pkl", "--out", "{w}/imp"], "hostile.pkl"),
    ("import", ["{w}/truncated.pkl", "--out", "{w}/imp"], "truncated.pkl"),
    ("compile", ["no-such-spec"], "no-such-spec"),
    ("train", ["no-such-spec", "--out", "{w}/r"], "no-such-spec"),
    ("train", [str(TINY), "--metrics", "nope", "--out", "{w}/r"], "--metrics nope"),
    ("train", [str(TINY), "--metrics-ticks", "0", "--out", "{w}/r"], "--metrics-ticks"),
    ("train", [str(TINY), "--tensorboard", "maybe", "--out", "{w}/r"], "--tensorboard"),
    ("specs", ["--bogus-flag"], "--bogus-flag"),
    ("migrate", ["{w}/missing.yaml"], "missing.yaml"),
    ("migrate", ["{w}/garbage.yaml"], "garbage.yaml"),
    ("migrate", ["{w}/unknown_key.yaml"], "bogus_key"),
    ("plot", ["{w}/nowhere"], "nowhere"),
    ("plot", ["{w}/fake_run"], "log.jsonl"),
    ("plot", [str(TINY)], "not a JSON line"),
    ("fetch", ["no-such-model"], "no-such-model"),
    ("fetch", ["celebahq-1024"], "downloads are off"),
    ("fetch", ["mnist-32"], "not an official network"),
    ("train", [str(TINY), "--init-from", "{w}/nowhere", "--out", "{w}/r"], "nowhere"),
    ("train", [str(TINY), "--init-from", "{w}/hostile", "--out", "{w}/r"], "model.safetensors"),
    ("train", [str(TINY), "--init-from", str(MODEL), "--out", "{w}/r"], "networks differ from the model's"),
    ("train", ["--resume", "{w}/fake_run", "--init-from", str(MODEL)], "--init-from"),
    ("generate", [str(MODEL), "--truncation", "0", "--out", "{w}/g.png"], "--truncation"),
    ("interpolate", [str(MODEL), "--truncation", "-1", "--out", "{w}/w.gif"], "--truncation"),
    ("export-onnx", ["{w}/nowhere", "--out", "{w}/g.onnx"], "nowhere"),
    ("export-onnx", [str(MODEL), "--resolution", "12", "--out", "{w}/g.onnx"], "12"),
    ("export-onnx", [str(MODEL), "--format", "tflite"], "--format"),
    ("video", ["walk", "{w}/nowhere", "--out", "{w}/v.mp4"], "nowhere"),
    ("video", ["walk", str(MODEL), "--grid", "3by2", "--out", "{w}/v.mp4"], "--grid"),
    ("video", ["slerp", str(MODEL), "--out", "{w}/v.avi"], "v.avi"),
    ("video", ["timelapse", "{w}/empty", "--out", "{w}/v.gif"], "samples"),
    ("video", ["spin", str(MODEL)], "spin"),
    ("project", [str(MODEL), "{w}/nowhere.png", "--out", "{w}/p"], "nowhere.png"),
    ("project", [str(MODEL), "{w}/notes.txt", "--out", "{w}/p"], "notes.txt"),
    ("project", [str(MODEL), "{w}/empty", "--out", "{w}/p"], "no images"),
    ("project", [str(MODEL), "{w}/bad_pngs", "--out", "{w}/p", "--video", "v.avi"], "v.avi"),
    ("project", [str(MODEL), "{w}/bad_pngs", "--out", "{w}/p", "--truncation", "0"], "--truncation"),
    ("project", [str(MODEL), "{w}/bad_pngs", "--out", "{w}/p", "--steps", "-3"], "steps"),
]


def test_every_subcommand_is_swept() -> None:
    assert set(COMMANDS) <= {c for c, _, _ in CASES}


@pytest.mark.parametrize("command,argv,needle", CASES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_bad_input_is_exit_2_one_line(w, capsys, command, argv, needle) -> None:
    args = [command] + [a.replace("{w}", str(w)) for a in argv]
    if command in ("train", "dataset") and "--kimg" not in argv and "--amp" not in argv:
        args.append("--no-progress")  # a progress bar is not an error line
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc == 2, f"{args}: exit {rc}\n{err}"
    lines = err.strip("\n").split("\n")
    lines = [ln for ln in lines if ln.strip()]
    assert len(lines) == 1, f"{args}: {len(lines)} lines on stderr:\n{err}"
    assert "Traceback" not in err and err.startswith(f"progan-zoo {command}: error: "), err
    assert needle.replace("{w}", str(w)) in err, err
    assert not (w / "unpickled").exists()


def test_debug_reraises(w) -> None:
    from progan_zoo.errors import UserError

    with pytest.raises(UserError):
        main(["--debug", "generate", "no-such-model"])
    with pytest.raises(UserError):
        main(["generate", "no-such-model", "--debug"])


def test_registry_file_damaged(w, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PROGAN_ZOO_REGISTRY", str(w / "bad_registry.json"))
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad_registry.json" in err and "Traceback" not in err


def test_not_input_is_exit_1(w, monkeypatch, capsys) -> None:
    """A failure that is not the input (here: the disk refuses the write) is exit 1, still one line."""
    import errno

    from PIL import Image as PILImage

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device", str(w / "g.png"))

    monkeypatch.setattr(PILImage.Image, "save", full)
    rc = main(["generate", str(MODEL), "--n", "4", "--out", str(w / "g.png")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "No space left on device" in err and "Traceback" not in err
