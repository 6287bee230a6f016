"""The real-feature cache of FID/KID: same numbers as computing them, keyed by the images, safe to lose."""

from __future__ import annotations

from pathlib import Path

import pytest

from progan_zoo.metrics import fid as fidmod
from progan_zoo.metrics import features


def _score(digits, weights, real, **kw):
    return fidmod.fid_kid(digits[:16], real, num=16, metrics=["fid", "kid"], weights_path=weights,
                          kid_subset_size=8, **kw)


def test_cached_reals_give_the_same_numbers(inception_weights, digits, tmp_path) -> None:
    cache = tmp_path / "c"
    off = _score(digits, inception_weights, digits[16:32], real_cache=False)
    first = _score(digits, inception_weights, digits[16:32], real_cache=cache)
    second = _score(digits, inception_weights, digits[16:32], real_cache=cache)
    assert off["settings"]["real_features"] == "computed"
    assert first["settings"]["real_features"] == "computed"
    assert second["settings"]["real_features"] == "cached"
    for k in ("fid", "kid_mean", "kid_std"):
        assert off[k] == first[k] == second[k]  # bitwise: the cache stores the features themselves
    files = list(cache.glob("*.safetensors"))
    assert len(files) == 1 and files[0].read_bytes()[8:9] == b"{"  # a safetensors header, no pickle


def test_other_reals_do_not_hit_the_cache(inception_weights, digits, tmp_path) -> None:
    cache = tmp_path / "c"
    _score(digits, inception_weights, digits[16:32], real_cache=cache)
    other = digits[16:32].clone()
    other[0, 0, 0, 0] ^= 1  # one pixel differs
    res = _score(digits, inception_weights, other, real_cache=cache)
    assert res["settings"]["real_features"] == "computed"
    assert len(list(cache.glob("*.safetensors"))) == 2


def test_damaged_cache_entry_is_recomputed(inception_weights, digits, tmp_path) -> None:
    cache = tmp_path / "c"
    good = _score(digits, inception_weights, digits[16:32], real_cache=cache)
    (entry,) = cache.glob("*.safetensors")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated, as by a full disk
    again = _score(digits, inception_weights, digits[16:32], real_cache=cache)
    assert again["settings"]["real_features"] == "computed" and again["fid"] == good["fid"]
    assert _score(digits, inception_weights, digits[16:32], real_cache=cache)["settings"]["real_features"] == "cached"


def test_env_switches_the_cache_off(inception_weights, digits, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(features.REALS_CACHE_ENV, "off")
    assert features.reals_cache_dir() is None
    _score(digits, inception_weights, digits[16:32])
    assert _score(digits, inception_weights, digits[16:32])["settings"]["real_features"] == "computed"
    monkeypatch.setenv(features.REALS_CACHE_ENV, str(tmp_path / "d"))
    assert features.reals_cache_dir() == Path(tmp_path / "d")


def test_fingerprint_sees_datasets_and_tensors_alike(digits) -> None:
    a = features.images_fingerprint(features.UInt8Images(digits[:4]))
    b = features.images_fingerprint(features._DatasetImages(features.UInt8Images(digits[:4]), range(4)))
    assert a == b
    assert a != features.images_fingerprint(features.UInt8Images(digits[1:5]))


@pytest.mark.parametrize("flag", ["False", "false", "off", "0", "", False])
def test_a_flag_spelled_as_text_is_no_folder(flag, tmp_path, monkeypatch) -> None:
    """A "False" string once became a ``False/`` cache folder (a stray file was committed that way)."""
    monkeypatch.chdir(tmp_path)
    assert features.reals_cache_folder(flag) is None
    monkeypatch.setenv(features.REALS_CACHE_ENV, "False")
    assert features.reals_cache_folder(None) is None and features.reals_cache_folder("true") is None
    assert not (tmp_path / "False").exists()


def test_cache_folder_arguments(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(features.REALS_CACHE_ENV, str(tmp_path / "env"))
    assert features.reals_cache_folder(None) == features.reals_cache_folder(True) == tmp_path / "env"
    assert features.reals_cache_folder("TRUE") == tmp_path / "env"
    assert features.reals_cache_folder(tmp_path / "c") == tmp_path / "c"
    assert features.reals_cache_folder(str(tmp_path / "d")) == tmp_path / "d"
    with pytest.raises(TypeError, match="real_cache"):
        features.reals_cache_folder(0)


def test_no_flag_named_folder_is_committed() -> None:
    """The repository holds no folder named like a Python flag (the trace the bug left)."""
    root = Path(__file__).resolve().parents[2]
    assert not [p for p in ("False", "True", "None") if (root / p).exists()]
