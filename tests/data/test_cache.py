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


def _bad_folder(tmp_path):
    """Three good RGB images of mixed sizes, one truncated PNG, one 16-bit, one with transparent pixels,
    and one fully opaque RGBA (converts)."""
    src = _write_pngs(tmp_path / "mixed", n=2, size=(40, 24))
    Image.fromarray(np.full((12, 20), 200, np.uint8)).save(src / "img02_grey_small.png")
    data = (src / "img00.png").read_bytes()
    (src / "img03_truncated.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(src / "img04_16bit.png")
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(src / "img05_opaque_rgba.png")
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba, "RGBA").save(src / "img06_transparent.png")
    return src


def test_bad_file_stops_the_build_naming_it(tmp_path):
    src = _bad_folder(tmp_path)
    with pytest.raises(UserError) as e:
        create_cache(src, tmp_path / "c", resolution=8, progress=False)
    assert str(src / "img03_truncated.png") in str(e.value) and "--skip-bad" in str(e.value)
    assert not (tmp_path / "c").exists() and not (tmp_path / "c.tmp").exists()


def test_skip_bad_lists_what_it_skipped(tmp_path, capsys):
    src = _bad_folder(tmp_path)
    rc = main(["dataset", str(src), str(tmp_path / "c"), "--resolution", "8", "--skip-bad", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "skipped 3 unreadable or wrong-mode file(s)" in out
    m = read_manifest(tmp_path / "c")
    assert m["count"] == 4
    skipped = {s["file"]: s["reason"] for s in m["skipped"]}
    assert set(skipped) == {"img03_truncated.png", "img04_16bit.png", "img06_transparent.png"}
    assert "cannot read" in skipped["img03_truncated.png"] and "I" in skipped["img04_16bit.png"]
    assert "transparent" in skipped["img06_transparent.png"]
    data = open_dataset(tmp_path / "c", 8, 3)
    assert len(data) == 4 and data.level(4).shape == (4, 3, 4, 4)
    top = data.level(8)
    # Kept in sorted order; grey converts to RGB (equal channels), the opaque RGBA to its RGB (black).
    assert (top[2] == 200).all() and (top[3] == 0).all()
    np.testing.assert_array_equal(top[0], np.load(tmp_path / "c" / "res-0008.npy")[0])


def test_partial_cache_is_refused(tmp_path):
    """A level file shorter than the manifest says (a copy cut short) is refused, not read as zeros."""
    _write_pngs(tmp_path / "imgs", n=3)
    out = create_cache(tmp_path / "imgs", tmp_path / "c", resolution=8, progress=False)
    arr = np.load(out / "res-0004.npy")
    np.save(out / "res-0004.npy", arr[:2])
    with pytest.raises(UserError, match=r"res-0004.npy: holds uint8 \[2, 3, 4, 4\], the manifest says"):
        open_dataset(out, 8, 3)
