"""Data preparation against the official ``dataset_tool.py`` (tkarras/progressive_growing_of_gans).

- ``create_celeba(cx=89, cy=121)``: each aligned CelebA image (asserted 218x178x3) becomes
  ``img[cy - 64 : cy + 64, cx - 64 : cx + 64]``, no resize;
- ``create_lsun``: ``crop = min(h, w)``, ``img[(h - crop) // 2 : (h + crop) // 2, (w - crop) // 2 :
  (w + crop) // 2]``, then ``PIL resize((r, r), ANTIALIAS)`` (Lanczos), smaller images included (upsampled);
- ``TFRecordExporter.add_image``: each lower level is the 2x2 average of the level above in float32,
  stored with ``np.rint(img).clip(0, 255)``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from progan_zoo.data.cache import create_cache, decode, read_manifest
from progan_zoo.data.dataset import open_dataset
from progan_zoo.errors import UserError

ROOT = Path(__file__).parents[2]


def official_celeba(img_hwc: np.ndarray, cx: int = 89, cy: int = 121) -> np.ndarray:
    assert img_hwc.shape == (218, 178, 3)
    return img_hwc[cy - 64: cy + 64, cx - 64: cx + 64].transpose(2, 0, 1)


def official_lsun(img_hwc: np.ndarray, resolution: int) -> np.ndarray:
    crop = np.min(img_hwc.shape[:2])
    img = img_hwc[(img_hwc.shape[0] - crop) // 2: (img_hwc.shape[0] + crop) // 2,
                  (img_hwc.shape[1] - crop) // 2: (img_hwc.shape[1] + crop) // 2]
    img = Image.fromarray(img, "RGB").resize((resolution, resolution), Image.LANCZOS)  # ANTIALIAS
    return np.asarray(img).transpose(2, 0, 1)


def official_lower_levels(img_chw: np.ndarray) -> list[np.ndarray]:
    out, img = [], img_chw
    for lod in range(int(np.log2(img_chw.shape[1])) - 1):
        if lod:
            img = img.astype(np.float32)
            img = (img[:, 0::2, 0::2] + img[:, 0::2, 1::2] + img[:, 1::2, 0::2] + img[:, 1::2, 1::2]) * 0.25
        out.append(np.rint(img).clip(0, 255).astype(np.uint8))
    return out


def png(arr_hwc: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr_hwc).save(buf, format="PNG")
    return buf.getvalue()


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_celeba_crop_is_the_official_box() -> None:
    img = random_image(218, 178)
    ours = decode(png(img), "000001.png", 128, 3, "celeba")
    np.testing.assert_array_equal(ours, official_celeba(img))


def test_celeba_crop_below_128_is_the_official_lower_level() -> None:
    img = random_image(218, 178, seed=1)
    levels = official_lower_levels(official_celeba(img))           # 128, 64, 32, ...
    for k, res in enumerate((128, 64, 32)):
        np.testing.assert_array_equal(decode(png(img), "x.png", res, 3, "celeba"), levels[k])


def test_celeba_crop_refuses_other_sizes_and_upsampling() -> None:
    with pytest.raises(UserError, match=r"x\.png: 200x218 pixels; --crop celeba"):
        decode(png(random_image(218, 200)), "x.png", 128, 3, "celeba")
    with pytest.raises(UserError, match="--crop celeba with --resolution 256"):
        create_cache("nowhere", "nowhere-out", 256, crop="celeba")


@pytest.mark.parametrize("h,w,res", [(256, 341, 64), (301, 256, 64), (255, 200, 32), (40, 50, 64)])
def test_center_crop_is_the_official_lsun_path(h: int, w: int, res: int) -> None:
    # (40, 50) -> 64: the official tool does not skip small images, it upsamples them.
    img = random_image(h, w, seed=h + w)
    np.testing.assert_array_equal(decode(png(img), "x.png", res, 3, "center"), official_lsun(img, res))


def test_cache_levels_are_the_official_lower_levels(tmp_path: Path) -> None:
    src = tmp_path / "img_align_celeba"
    src.mkdir()
    imgs = [random_image(218, 178, seed=s) for s in range(3)]
    for i, img in enumerate(imgs):
        Image.fromarray(img).save(src / f"{i:06d}.png")
    out = create_cache(src, tmp_path / "celeba-128", 128, crop="celeba", progress=False)
    assert read_manifest(out)["crop"] == "celeba"
    ds = open_dataset(out, 128, 3, crop="celeba")
    for i, img in enumerate(imgs):
        for k, level in enumerate(official_lower_levels(official_celeba(img))):
            np.testing.assert_array_equal(ds.level(128 >> k)[i], level)
    with pytest.raises(UserError, match="made with --crop celeba, the spec's data.crop is center"):
        open_dataset(out, 128, 3, crop="center")
    # A folder of raw images is cropped as the spec says.
    raw = open_dataset(src, 128, 3, crop="celeba", progress=False)
    np.testing.assert_array_equal(raw.level(128)[0], official_celeba(imgs[0]))


def test_cli_dataset_crop_celeba(tmp_path: Path) -> None:
    from progan_zoo.cli import main

    src = tmp_path / "faces"
    src.mkdir()
    Image.fromarray(random_image(218, 178)).save(src / "a.png")
    assert main(["dataset", str(src), str(tmp_path / "out"), "--resolution", "128", "--crop", "celeba",
                 "--no-progress"]) == 0
    assert read_manifest(tmp_path / "out")["crop"] == "celeba"


def test_celeba_spec_states_the_official_crop() -> None:
    from progan_zoo.compiler import compile_spec

    spec = compile_spec(ROOT / "specs" / "celeba_128.yaml").spec
    assert spec.data.crop == "celeba" and spec.data.resolution == 128
