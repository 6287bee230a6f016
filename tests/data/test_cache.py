"""Dataset caches from a folder of PNGs and from a zip, via the library and the CLI."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from progan_zoo.cli import main
from progan_zoo.data import create_cache, open_dataset, read_manifest
from progan_zoo.data.images import iter_levels
from progan_zoo.errors import UserError


def _write_pngs(folder, n=6, size=(40, 24), mode="RGB"):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).convert(mode).save(folder / f"img{i:02d}.png")
    return folder


def test_cache_from_folder(tmp_path):
    src = _write_pngs(tmp_path / "imgs" / "sub")  # searched recursively
    out = create_cache(tmp_path / "imgs", tmp_path / "cache", resolution=16, channels=3, progress=False)
    m = read_manifest(out)
    assert m["count"] == 6 and m["channels"] == 3 and sorted(map(int, m["levels"])) == [4, 8, 16]
    top = np.load(out / "res-0016.npy", mmap_mode="r")
    assert isinstance(top, np.memmap) and top.shape == (6, 3, 16, 16) and top.dtype == np.uint8
    # Centre crop of a 40x24 image is its middle 24x24 square, resized to 16x16.
    img = Image.open(src / "img00.png").crop((8, 0, 32, 24)).resize((16, 16), Image.LANCZOS)
    np.testing.assert_array_equal(top[0], np.asarray(img).transpose(2, 0, 1))
    # Lower levels: float box averages of the top level's decoded images, rounded once.
    levels = dict(iter_levels(np.asarray(top)))
    np.testing.assert_array_equal(np.load(out / "res-0004.npy"), levels[4])
    data = open_dataset(out, 8, 3)
    assert data.resolutions == [4, 8] and len(data) == 6
    assert not (tmp_path / "cache.tmp").exists()


def test_cache_from_zip_via_cli(tmp_path, capsys):
    src = _write_pngs(tmp_path / "imgs", n=5, size=(32, 32), mode="L")
    archive = tmp_path / "imgs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(src.iterdir()):
            zf.write(p, f"faces/{p.name}")
        zf.writestr("notes.txt", "not an image")
    rc = main(["dataset", str(archive), str(tmp_path / "c"), "--resolution", "32", "--channels", "1", "--no-progress"])
    assert rc == 0
    assert "5 images" in capsys.readouterr().out
    m = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert m["count"] == 5 and m["channels"] == 1
    top = np.load(tmp_path / "c" / "res-0032.npy")
    np.testing.assert_array_equal(top[0, 0], np.asarray(Image.open(src / "img00.png")))
    # Exists already: refused without --overwrite.
    assert main(["dataset", str(archive), str(tmp_path / "c"), "--resolution", "32", "--no-progress"]) == 2


def test_cache_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images found"):
        create_cache(tmp_path / "empty", tmp_path / "o", resolution=16, progress=False)
    with pytest.raises(UserError, match="power of two"):
        create_cache(tmp_path / "empty", tmp_path / "o", resolution=24, progress=False)
    _write_pngs(tmp_path / "imgs", n=2)
    out = create_cache(tmp_path / "imgs", tmp_path / "rgb", resolution=8, progress=False)
    with pytest.raises(UserError, match="re-create it with --channels 1"):
        open_dataset(out, 8, 1)
    with pytest.raises(UserError, match="re-create it with --resolution 16"):
        open_dataset(out, 16, 3)
