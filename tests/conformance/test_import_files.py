"""``progan-zoo import`` on official-format files the fixtures do not cover, and on hostile or broken files.

Synthetic pickles are written in the official layout (``tfutil.Network`` state version 2, numpy arrays
as numpy 2.x pickles them) for other resolutions, channel counts, latent sizes and both fused_scale
variants; equality with the official code can only be asserted on the fixtures (no TensorFlow here),
so these check that the import compiles, runs with the right shapes and keeps every parameter.
Bad input must end with exit status 2, one line naming the file and the problem, no output folder
and nothing from the file run.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from official_fixtures import fixture_dir, official_pickle, variable_count  # noqa: E402

from progan_zoo.cli import main  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROGAN_PICKLE_MARKER", str(tmp_path / "MARKER"))
    monkeypatch.setenv("PROGAN_ZOO_HOME", str(tmp_path / "zoo"))
    monkeypatch.setenv("PROGAN_ZOO_REGISTRY", str(tmp_path / "registry.json"))
    monkeypatch.setenv("PROGAN_ZOO_CACHE", str(tmp_path / "cache"))


SYNTHETIC = {
    # resolution, channels, latent size, fmap, fused_scale, minibatch-stddev group, lod of the snapshot
    "16px-grey-fused": (dict(resolution=16, num_channels=1, latent_size=24, fmap_base=128, fmap_max=32,
                             fused_scale=True), dict(mbstd_group_size=4), 0.0),
    "64px-rgb-unfused-mbstd16": (dict(resolution=64, num_channels=3, fmap_base=64, fmap_max=16,
                                      fused_scale=False), dict(mbstd_group_size=16), 0.0),
    "8px-no-mbstd-decay": (dict(resolution=8, num_channels=2, latent_size=7, fmap_base=48, fmap_max=40,
                                fmap_decay=0.5, fused_scale=True), dict(mbstd_group_size=1), 0.0),
    "32px-snapshot-mid-fade": (dict(resolution=32, num_channels=3, latent_size=16, fmap_base=64, fmap_max=32,
                                    fused_scale=True), dict(mbstd_group_size=4), 1.25),
    # Written with pickle protocol 5 (numpy arrays as numpy._core.numeric._frombuffer).
    "16px-protocol5": (dict(resolution=16, num_channels=3, latent_size=12, fmap_base=32, fmap_max=16,
                            fused_scale=False), dict(mbstd_group_size=4), 0.0),
}


@pytest.mark.parametrize("case", sorted(SYNTHETIC))
@torch.no_grad()
def test_synthetic_official_files_import(case, tmp_path):
    from progan_zoo.compiler import compile_spec
    from progan_zoo.zoo import load
    from progan_zoo.zoo.sources.folder import open_saved

    g_kw, d_only, lod = SYNTHETIC[case]
    d_kw = {k: v for k, v in g_kw.items() if k != "latent_size"} | d_only
    f = tmp_path / f"network-snapshot-{case}.pkl"
    f.write_bytes(official_pickle(g_kw, d_kw, seed=1, lod=lod, src="open('MARKER', 'w')\n",
                                  protocol=5 if "protocol5" in case else 4))
    out = tmp_path / "out"
    assert main(["import", str(f), "--out", str(out), "--samples", "2"]) == 0
    assert not (tmp_path / "MARKER").exists()

    c = compile_spec(out / "spec.yaml")
    assert sum(p.numel() for p in c.G.parameters()) == variable_count("G", g_kw)
    assert sum(p.numel() for p in c.D.parameters()) == variable_count("D", d_kw)
    ops = {a["op"] for _, a in c.graph.nodes(data=True) if a["kind"] == "layer"}
    assert ("upconv3x3" in ops and "conv3x3_down" in ops) == g_kw["fused_scale"]
    assert ("upsample" in ops and "downsample" in ops) != g_kw["fused_scale"]

    res, ch = g_kw["resolution"], g_kw["num_channels"]
    latent = g_kw.get("latent_size") or min(g_kw["fmap_base"], g_kw["fmap_max"])
    whole = int(lod)
    G = load(out)
    assert G.z_dim == latent and G.image_channels == ch
    assert G.resolution == res // 2 ** whole and G.alpha == pytest.approx(1 - (lod - whole))
    z = torch.randn(4, latent)
    assert G(z).shape == (4, ch, res // 2 ** whole, res // 2 ** whole)
    assert torch.isfinite(G(z)).all()
    D = open_saved(out, with_training=True).D
    x = torch.randn(16, ch, G.resolution, G.resolution)
    assert D(x, stage=G.stage, alpha=G.alpha).shape == (16, 1)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["provenance"]["lod"]["Gs"] == pytest.approx(lod)


# ---------------------------------------------------------------------------------------- bad input
class _Reduce:
    """An object that pickles as a call of ``func(*args)`` (what a hostile pickle holds)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _hostile(tmp_path: Path) -> dict[str, bytes]:
    marker = str(tmp_path / "MARKER")
    return {
        "os.system": pickle.dumps(_Reduce(os.system, f"touch {marker}"), protocol=4),
        "builtins.eval": pickle.dumps(_Reduce(eval, f"open({marker!r}, 'w')"), protocol=4),
        "builtins.exec": pickle.dumps((1, _Reduce(exec, f"open({marker!r}, 'w')")), protocol=2),
        "torch._utils": pickle.dumps(torch.zeros(2), protocol=4),
        "numpy object array": pickle.dumps(np.array([1, "x"], dtype=object), protocol=4),
        # An official-looking file with a call hidden among G's variables: refused mid-stream.
        "hidden system": official_pickle(dict(resolution=8, num_channels=3, latent_size=8, fmap_base=16, fmap_max=8),
                                         dict(mbstd_group_size=4), extra=_Reduce(os.system, f"touch {marker}")),
    }


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "builtins.exec", "torch._utils", "numpy object array",
                                  "hidden system"])
def test_hostile_pickle_refused_and_nothing_runs(kind, tmp_path, capsys):
    f = tmp_path / "karras2018iclr-evil-256x256.pkl"
    f.write_bytes(_hostile(tmp_path)[kind])
    out = tmp_path / "out"
    assert main(["import", str(f), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(f) in err
    assert "unsafe pickle" in err and "nothing in it was run" in err
    if "system" in kind:  # os.system pickles as posix.system (nt.system on Windows)
        assert "refuses global " in err and ".system" in err
    elif kind.startswith(("builtins", "torch")):  # protocol 2 writes builtins as __builtin__
        assert "refuses global " in err and kind.split(".")[-1] in err
    assert not (tmp_path / "MARKER").exists()
    assert not out.exists() and not list(tmp_path.glob("*.import-tmp"))


def _bad_files(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    fixture = fixture_dir("tk_pgan_tiny", "fused") / "network-tiny.pkl"
    whole = fixture.read_bytes()
    g = dict(resolution=16, num_channels=3, latent_size=16, fmap_base=32, fmap_max=16)
    from safetensors.torch import save

    return {
        "truncated": (whole[: len(whole) // 2], "truncated"),
        "empty": (b"", "first bytes"),
        "png": (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not an official ProGAN pickle"),
        "text": (b"spec_version: 1\n", "not an official ProGAN pickle"),
        "safetensors": (save({"w": torch.zeros(2)}), "safetensors"),
        "missing variable": (official_pickle(g, dict(mbstd_group_size=4), drop="8x8/Conv1/weight"), "b8.block.conv1.weight"),
        "wrong shape": (official_pickle(g, dict(mbstd_group_size=4), reshape="4x4/Dense0/weight"), "shape"),
        "not a network tuple": (pickle.dumps({"G": 1}), "(G, D, Gs)"),
        "label sizes differ": (official_pickle(dict(g, label_size=10), dict(mbstd_group_size=4, label_size=5)),
                               "label_size 10 but D 5"),
        "zip without a checkpoint": (_zip({"x/data.pkl": pickle.dumps({"a": 1})}), "pytorch_GAN_zoo"),
    }


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["truncated", "empty", "png", "text", "safetensors", "missing variable", "wrong shape",
                                  "not a network tuple", "label sizes differ", "zip without a checkpoint"])
def test_bad_files_exit_2_with_one_line(kind, tmp_path, capsys):
    data, expect = _bad_files(tmp_path)[kind]
    f = tmp_path / "bad.pkl"
    f.write_bytes(data)
    out = tmp_path / "out"
    assert main(["import", str(f), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(f) in err and expect in err, err
    assert not out.exists() and not list(tmp_path.glob("*.import-tmp"))


def test_missing_file_and_existing_out(tmp_path, capsys):
    assert main(["import", str(tmp_path / "nope.pkl"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("x")
    f = tmp_path / "n.pkl"
    f.write_bytes(official_pickle(dict(resolution=8, num_channels=3, latent_size=8, fmap_base=16, fmap_max=8),
                                  dict(mbstd_group_size=4)))
    assert main(["import", str(f), "--out", str(tmp_path / "o")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "o" / "keep.txt").exists()


def _stand_in(tmp_path: Path) -> Path:
    """A small network under the official file name (the real file is 277 MB and not redistributable)."""
    f = tmp_path / "karras2018iclr-celebahq-1024x1024.pkl"
    f.write_bytes(official_pickle(dict(resolution=16, num_channels=3, latent_size=8, fmap_base=32, fmap_max=16,
                                       fused_scale=False), dict(mbstd_group_size=16)))
    return f


def test_official_name_before_and_after_import(tmp_path, capsys, monkeypatch):
    """load(name) of an official network, downloads off: one line saying what to download and the import command;
    after `progan-zoo import FILE` (default --out: the zoo folder) it loads and `models` says imported. The
    file is not the official network (16x16), so no reported score is attached: the card names the file's
    sha256 and why, the import says so in one line, and the leaderboard has no "(reported)" row (issue 18)."""
    from progan_zoo.errors import UserError
    from progan_zoo.zoo import load
    from progan_zoo.zoo.leaderboard import gather

    monkeypatch.setenv("PROGAN_ZOO_OFFLINE", "1")  # online, load would download it (tests/zoo/test_download.py)
    with pytest.raises(UserError) as info:
        load("celebahq-1024")
    msg = str(info.value)
    assert "\n" not in msg and "karras2018iclr-celebahq-1024x1024.pkl" in msg and "drive.google.com" in msg
    assert "`progan-zoo import karras2018iclr-celebahq-1024x1024.pkl --name celebahq-1024`" in msg

    f = _stand_in(tmp_path)
    assert main(["import", str(f), "--samples", "2"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    why = "not the official celebahq-1024 network: its resolution is 16, the official 1024"
    assert err == [f"progan-zoo import: no reported scores attached: {why}"]
    folder = tmp_path / "zoo" / "models" / "celebahq-1024"
    assert (folder / "metadata.json").is_file()
    G = load("celebahq-1024")
    assert G.resolution == 16 and G.name == "celebahq-1024"
    assert main(["models", "celebahq*", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["kind"] == "official" and entry["imported"] is True and entry["where"] == str(folder)

    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["evaluation"] == [] and meta["license"] == "cc-by-nc-4.0"
    assert meta["reported"] == [] and meta["official"]["matched"] is False and meta["official"]["reason"] == why
    assert meta["official"]["file_sha256"] == meta["provenance"]["sha256"]
    card = (folder / "README.md").read_text()
    assert "Reported in the paper" not in card and "Not evaluated yet" in card
    assert f"file sha256 `{meta['provenance']['sha256']}`, no hash is published for the official file; {why}" in card
    rows, notes = gather(include_hub=False)
    assert not [r for r in rows if r.model.startswith("celebahq-1024")]
    assert f"celebahq-1024: no reported row: {why}" in notes


@pytest.mark.parametrize("published", [None, "same", "other"])
def test_reported_score_only_for_the_official_file(tmp_path, capsys, monkeypatch, published):
    """With the registry stating exactly this file's architecture (as it states the real file's), the paper's
    score is attached, on the card and the leaderboard apart from measured ones; a published sha256 must
    match too, and the card says whether it did."""
    import hashlib

    from progan_zoo.zoo import official
    from progan_zoo.zoo.leaderboard import gather

    f = _stand_in(tmp_path)
    assert main(["import", str(f), "--samples", "2", "--out", str(tmp_path / "probe")]) == 0
    found = json.loads((tmp_path / "probe" / "metadata.json").read_text())["official"]["found"]
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    expected = dict(found, sha256={None: None, "same": sha, "other": "0" * 64}[published])
    monkeypatch.setattr(official, "expected_for", lambda name: expected)
    capsys.readouterr()
    assert main(["import", str(f), "--samples", "2"]) == 0
    err = capsys.readouterr().err
    folder = tmp_path / "zoo" / "models" / "celebahq-1024"
    meta = json.loads((folder / "metadata.json").read_text())
    card = (folder / "README.md").read_text()
    rows, _ = gather(include_hub=False)
    reported = [r for r in rows if r.model == "celebahq-1024 (reported)"]
    if published == "other":
        assert meta["reported"] == [] and meta["official"]["hash_matched"] is False and not reported
        assert "its sha256" in err and f"does not match the published sha256 `{'0' * 64}`" in card
        return
    assert err == "" and meta["official"]["matched"] is True
    assert meta["official"]["hash_matched"] is (True if published == "same" else None)
    assert meta["reported"][0]["metric"] == "fid" and meta["reported"][0]["value"] == pytest.approx(7.30)
    assert meta["reported"][0]["kind"] == "reported"
    assert "Reported in the paper (not measured here)" in card and "so the paper's reported scores are attached" in card
    assert ("matches the published sha256" in card) is (published == "same")
    (row,) = reported
    assert row.values == {"fid": pytest.approx(7.30)} and row.settings["fid"]["kind"] == "reported"
