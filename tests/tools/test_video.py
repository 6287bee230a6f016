"""Videos: the official smoothed walk's latents, slerp walks and time-lapses written as decodable MP4 and GIF."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from progan_zoo.cli import main
from progan_zoo.tools import video as V

iio = pytest.importorskip("imageio.v3")
pytest.importorskip("imageio_ffmpeg")


def _decode(path):
    frames = iio.imread(path)                 # [T, H, W, 3] for MP4; decoding is the check that it is whole
    return frames


def test_gaussian_filter_wrap_is_scipys():
    nd = pytest.importorskip("scipy.ndimage")
    x = torch.randn(40, 3, 4)
    for sigma in (0.8, 5.0, 50.0):   # 50: a kernel wider than the clip wraps several times
        want = nd.gaussian_filter(x.numpy(), [sigma, 0, 0], mode="wrap")
        assert np.allclose(V.gaussian_filter_wrap(x, sigma).numpy(), want, atol=1e-6)


def test_smoothed_walk_is_unit_variance_and_smooth():
    z = V.smoothed_walk_latents(120, 16, cells=2, smoothing_frames=10, seed=1000)
    assert z.shape == (120, 2, 16)
    assert abs(float(z.pow(2).mean()) - 1) < 1e-5
    step = (z[1:] - z[:-1]).norm(dim=-1).mean()
    assert step < 0.3 * z.norm(dim=-1).mean()          # neighbouring frames are close
    assert (z[0] - z[-1]).norm(dim=-1).mean() < 2 * step  # and it loops


def test_walk_mp4_frames_size_and_decodes(tmp_path, capsys):
    out = tmp_path / "walk.mp4"
    assert main(["video", "walk", "mnist-32", "--duration", "0.5", "--fps", "12", "--grid", "2x1",
                 "--out", str(out)]) == 0
    frames = _decode(out)
    assert frames.shape == (6, 128, 256, 3)           # 0.5 s * 12 fps; 2x1 cells of 32 px, x4
    assert frames.std() > 5                           # digits, not a black clip
    assert "6 frames, 256x128" in capsys.readouterr().out


def test_slerp_gif(tmp_path):
    out = tmp_path / "slerp.gif"
    assert main(["video", "slerp", "mnist-32", "--seeds", "3,4", "--steps", "3", "--scale", "2",
                 "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 6 and im.size == (64, 64)


def _fake_run(run, sizes):
    (run / "samples").mkdir(parents=True)
    for i, s in enumerate(sizes):
        Image.fromarray(np.full((s, s, 3), 40 * (i + 1), np.uint8)).save(run / "samples" / f"kimg-{i * 30:06d}.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(run / "samples" / "latest.png")   # not a snapshot
    return run


def test_timelapse_mp4(tmp_path):
    run = _fake_run(tmp_path / "run", [20, 36, 36])
    out = tmp_path / "lapse.mp4"
    assert main(["video", "timelapse", str(run), "--hold", "2", "--out", str(out)]) == 0
    frames = _decode(out)
    # 3 grids x 2; 36 px wide and 36 + 14 (label strip) high, padded to multiples of 16 for H.264
    assert frames.shape == (6, 64, 48, 3)
    assert frames[0, 30, 10].mean() < frames[-1, 30, 10].mean()   # later grids are brighter in this fake run


def test_missing_video_extra_names_the_install_command(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    assert main(["video", "slerp", "mnist-32", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "pip install 'progan-zoo[video]'" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()


def test_cli_help_imports_no_torch():
    import subprocess
    import sys

    code = "import sys; from progan_zoo.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"        # the tools' subcommands keep `progan-zoo --help` light
