"""Registered official networks download themselves: a loopback file server stands in for the locations.

The served files are synthetic files of the official formats (``official_fixtures.official_pickle``
and the pytorch_GAN_zoo fixture), so the download goes through the real safe importers.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import types
from pathlib import Path

import pytest
import torch

from progan_zoo.cli import main
from progan_zoo.errors import RunFailure, UserError
from progan_zoo.zoo import records as F
from progan_zoo.zoo import registry as R
from progan_zoo.zoo.download import Expected, direct_url, expected_hash, looks_like_html
from progan_zoo.zoo.loader import load

from fileserver import FileServer, Served

sys.path.insert(0, str(Path(__file__).parents[1] / "conformance"))
from official_fixtures import fixture_dir, official_pickle  # noqa: E402

TF_FILE = "karras2018iclr-celebahq-1024x1024.pkl"
G_KW = dict(resolution=16, num_channels=3, latent_size=16, fmap_base=64, fmap_max=16, fused_scale=True)
HTML = b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>...</body></html>"


@pytest.fixture
def server(isolated, monkeypatch):
    monkeypatch.delenv("PROGAN_ZOO_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FileServer() as s:
        yield s


def tf_bytes(seed: int = 0) -> bytes:
    return official_pickle(G_KW, {"mbstd_group_size": 4}, seed=seed)


def register(isolated: Path, name: str, url: str, file: str, **extra) -> None:
    R.add_entry(isolated / "registry.json", name, {"official": {"file": file, "url": url, **extra}})


def cache_files(isolated: Path) -> list[str]:
    d = isolated / "cache" / "downloads"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_good_file_downloads_verifies_imports_then_loads_offline(server, isolated, monkeypatch):
    data = tf_bytes()
    sha = hashlib.sha256(data).hexdigest()
    server.files["/" + TF_FILE] = Served(data)
    register(isolated, "celebahq-1024", f"{server.url}/{TF_FILE}", TF_FILE)
    G = load("celebahq-1024")
    assert G.resolution == 16 and G.name == "celebahq-1024"
    meta = F.read_metadata(R.resolve("celebahq-1024").location)
    # Nothing is published for the TF release: the first download's hash is recorded and shown.
    assert meta.extra["download"] == {"url": f"{server.url}/{TF_FILE}", "file": TF_FILE, "sha256": sha,
                                "verified": "first-download", "expected": None}
    assert meta.provenance["sha256"] == sha and meta.provenance["executed_code"] is False
    card = (Path(R.resolve("celebahq-1024").location) / F.CARD).read_text()
    assert sha in card and "first download" in card
    assert json.loads((isolated / "cache" / "pins.json").read_text())["celebahq-1024"]["sha256"] == sha
    assert cache_files(isolated) == [TF_FILE]
    before = G.sample(4, seed=0)

    # Offline, with the server gone: the cached folder loads.
    server.files.clear()
    monkeypatch.setenv("PROGAN_ZOO_OFFLINE", "1")
    assert torch.equal(load("celebahq-1024").sample(4, seed=0), before)
    assert len(server.requests) == 1


def test_offline_message_is_unchanged(server, isolated, monkeypatch):
    register(isolated, "celebahq-1024", f"{server.url}/{TF_FILE}", TF_FILE)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"^celebahq-1024: the official network is not imported yet; download "
                                        rf"{TF_FILE} from .* and run `progan-zoo import {TF_FILE} --name celebahq-1024`"):
        load("celebahq-1024")
    assert server.requests == []


def test_wrong_pinned_hash_is_refused_and_nothing_cached(server, isolated):
    server.files["/" + TF_FILE] = Served(tf_bytes())
    register(isolated, "celebahq-1024", f"{server.url}/{TF_FILE}", TF_FILE,
             sha256=hashlib.sha256(b"another file").hexdigest())
    with pytest.raises(RunFailure, match=r"has sha256 .*not .*the sha256 published for it.*nothing was imported"):
        load("celebahq-1024")
    assert cache_files(isolated) == []
    assert not R.resolve("celebahq-1024").imported
    assert not Path(R.resolve("celebahq-1024").location).parent.exists() or \
        list(Path(R.resolve("celebahq-1024").location).parent.iterdir()) == []


def test_later_download_with_another_hash_is_refused(server, isolated, capsys):
    server.files["/" + TF_FILE] = Served(tf_bytes(seed=0))
    register(isolated, "celebahq-1024", f"{server.url}/{TF_FILE}", TF_FILE)
    assert main(["fetch", "celebahq-1024"]) == 0
    assert "downloaded and imported" in capsys.readouterr().out
    first = F.read_metadata(R.resolve("celebahq-1024").location).extra["download"]["sha256"]
    # The file at the location changes; a re-fetch must not replace the model with it.
    server.files["/" + TF_FILE] = Served(tf_bytes(seed=1))
    assert main(["fetch", "celebahq-1024", "--force"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the sha256 of its first download" in err
    assert F.read_metadata(R.resolve("celebahq-1024").location).extra["download"]["sha256"] == first
    assert cache_files(isolated) == []
    # The same bytes again are accepted and marked as matching the first download.
    server.files["/" + TF_FILE] = Served(tf_bytes(seed=0))
    assert main(["fetch", "celebahq-1024", "--force"]) == 0
    assert "matches the first download's sha256" in capsys.readouterr().out


def test_truncated_transfer_is_resumed(server, isolated):
    data = tf_bytes()
    server.files["/" + TF_FILE] = Served(data, cut_after=[len(data) // 3, len(data) // 3])
    register(isolated, "celebahq-1024", f"{server.url}/{TF_FILE}", TF_FILE)
    G = load("celebahq-1024")
    assert G.resolution == 16
    ranges = [r for _, r in server.requests]
    third = len(data) // 3
    assert ranges == [None, f"bytes={third}-", f"bytes={2 * third}-"]
    assert F.read_metadata(R.resolve("celebahq-1024").location).extra["download"]["sha256"] == \
        hashlib.sha256(data).hexdigest()


def test_part_file_left_by_a_killed_fetch_is_resumed(server, isolated):
    data = tf_bytes()
    server.files["/" + TF_FILE] = Served(data)
    (isolated / "cache" / "downloads").mkdir(parents=True)
    (isolated / "cache" / "downloads" / (TF_FILE + ".part")).write_bytes(data[:1000])
    register(isolated, "celebahq-1024", f"{server.url}/{TF_FILE}", TF_FILE)
    load("celebahq-1024")
    assert [r for _, r in server.requests] == ["bytes=1000-"]


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream"])
def test_html_page_is_refused(server, isolated, capsys, content_type):
    server.files["/uc"] = Served(HTML, content_type=content_type)
    register(isolated, "celebahq-1024", f"{server.url}/uc?export=download&id=abc", TF_FILE)
    assert main(["fetch", "celebahq-1024"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "answered with an HTML page" in err and "not imported" in err
    assert cache_files(isolated) == [] and not R.resolve("celebahq-1024").imported


def test_unreachable_location_is_one_line(server, isolated, capsys):
    register(isolated, "celebahq-1024", "http://127.0.0.1:9/x.pkl", TF_FILE)
    assert main(["fetch", "celebahq-1024"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot connect" in err and "PROGAN_ZOO_OFFLINE" in err


def _legacy_copy(zip_file: Path) -> bytes:
    """The pytorch_GAN_zoo fixture re-saved in torch's pre-1.6 format (the one its hub .pth files use),
    with the config class pickled under its own name, as their ``torch.save`` wrote it."""
    from progan_zoo.zoo.sources.fbz import CONFIG_GLOBAL, BaseConfigData

    with torch.serialization.safe_globals([(BaseConfigData, CONFIG_GLOBAL)]):
        obj = torch.load(zip_file, map_location="cpu", weights_only=True)
    mod_name, cls_name = CONFIG_GLOBAL.rsplit(".", 1)
    mods = {m: types.ModuleType(m) for m in ("models", "models.utils", mod_name)}
    cls = type(cls_name, (), {"__module__": mod_name})
    mods[mod_name].BaseConfig = cls
    cfg = cls()
    cfg.__dict__.update(vars(obj["config"]))
    saved = {m: sys.modules.get(m) for m in mods}
    sys.modules.update(mods)
    try:
        buf = io.BytesIO()
        torch.save(dict(obj, config=cfg), buf, _use_new_zipfile_serialization=False)
    finally:
        for m, old in saved.items():
            if old is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = old
    return buf.getvalue()


@pytest.mark.parametrize("legacy", [False, True])
def test_gan_zoo_hash_prefix_is_checked(server, isolated, legacy):
    src = fixture_dir("fbz_pgan_tiny") / "fbz_pgan_tiny.pt"
    data = _legacy_copy(src) if legacy else src.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    good, bad = f"tiny_s3_i3-{sha[:8]}.pth", f"tiny_s3_i3-{'0' * 8}.pth"
    for f in (good, bad):
        server.files["/" + f] = Served(data)
        register(isolated, f"fbz-{f[-12:-4]}", f"{server.url}/{f}", f)
    G = load(f"fbz-{sha[:8]}")
    assert G.resolution == 32
    dl = F.read_metadata(R.resolve(f"fbz-{sha[:8]}").location).extra["download"]
    assert dl["verified"] == "hash-prefix" and dl["expected"] == sha[:8] and dl["sha256"] == sha
    with pytest.raises(RunFailure, match=r"the sha256 prefix in its file name"):
        load("fbz-00000000")


def test_expected_hash_and_links():
    assert expected_hash({"sha256": "ab" * 32}, "x.pkl").kind == "pinned"
    e = expected_hash({}, "celebaHQ_s6_i80000-6196db68.pth")
    assert (e.kind, e.value) == ("hash-prefix", "6196db68")
    assert expected_hash({}, TF_FILE).kind == "first-download"
    assert direct_url("https://drive.google.com/open?id=188K19") == \
        "https://drive.google.com/uc?export=download&id=188K19"
    assert direct_url("https://drive.google.com/file/d/XYZ/view?usp=sharing").endswith("&id=XYZ")
    assert direct_url("http://127.0.0.1:1/a.pkl") == "http://127.0.0.1:1/a.pkl"
    assert looks_like_html(b"\n  <!doctype HTML><html>") and not looks_like_html(b"\x80\x04\x95")


GAN_ZOO = {  # name -> (torch.hub file, resolution): pytorch_GAN_zoo hubconf.py's PGAN checkpoints
    "gan-zoo-celebahq-256": ("celebaHQ_s6_i80000-6196db68.pth", 256),
    "gan-zoo-celebahq-512": ("celebaHQ16_december_s7_i96000-9c72988c.pth", 512),
    "gan-zoo-dtd-128": ("testDTD_s5_i96000-04efa39f.pth", 128),
    "gan-zoo-celeba-128": ("celebaCropped_s5_i83000-2b0acc76.pth", 128),
}


def test_gan_zoo_hub_models_are_registered():
    shipped = R.read_registry(R.SHIPPED)
    for name, (file, res) in GAN_ZOO.items():
        e = shipped[name]
        assert e.kind == "official" and e.official_file == file and e.resolution == res
        assert e.download == f"https://dl.fbaipublicfiles.com/gan_zoo/PGAN/{file}"
        # "_s<k>_": the scale index of the saved network, 4 * 2**k pixels.
        assert 4 * 2 ** int(file.split("_s")[1].split("_")[0]) == res
        assert expected_hash(e.official, file) == Expected("hash-prefix", file[-12:-4])


def test_gan_zoo_entry_refuses_a_file_not_matching_its_prefix(server, isolated):
    """The shipped celebAHQ-256 entry, pointed at the loopback server: a checkpoint that is not that
    file (the fixture) fails its name's sha256 prefix and is not imported."""
    file, _ = GAN_ZOO["gan-zoo-celebahq-256"]
    server.files["/" + file] = Served((fixture_dir("fbz_pgan_tiny") / "fbz_pgan_tiny.pt").read_bytes())
    register(isolated, "gan-zoo-celebahq-256", f"{server.url}/{file}", file)
    with pytest.raises(RunFailure, match=r"not 6196db68.*sha256 prefix in its file name"):
        load("gan-zoo-celebahq-256")
    assert cache_files(isolated) == [] and not R.resolve("gan-zoo-celebahq-256").imported
