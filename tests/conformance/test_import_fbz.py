"""pytorch_GAN_zoo PGAN checkpoints: the import reproduces that project's own outputs.

Fixture tests/fixtures/official/fbz_pgan_tiny: a checkpoint written by its ``ProgressiveGAN.save`` and the
outputs of its ``GNet`` / ``DNet`` for fixed latents: ``netG(z)``, ``avgG(z)``, ``avgG`` at its alpha
0.5 and ``netD(netG(z))``. Its alpha counts the other way (0 = newest scale fully in): ours is 1 - alpha.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from official_fixtures import fixture_dir  # noqa: E402

from progan_zoo.cli import main  # noqa: E402

TOL = 1e-4


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    src = fixture_dir("fbz_pgan_tiny")
    work = tmp_path_factory.mktemp("fbz")
    mp = pytest.MonkeyPatch()
    mp.chdir(work)
    mp.setenv("PROGAN_ZOO_HOME", str(work / "zoo"))
    try:
        out = work / "model"
        assert main(["import", str(src / "fbz_pgan_tiny.pt"), "--out", str(out), "--name", "fbz-tiny",
                     "--samples", "4"]) == 0
    finally:
        mp.undo()
    return src, out


@torch.no_grad()
def test_fbz_outputs_reproduced(imported):
    from safetensors.torch import load_file

    from progan_zoo.zoo import load
    from progan_zoo.zoo.sources.folder import open_saved

    src, out = imported
    ref = load_file(str(src / "reference_outputs.safetensors"))
    z = ref["z"]
    G_ema = load(out)
    nets = open_saved(out, with_training=True)
    errors = {
        "avgG": float((G_ema(z) - ref["avgG"]).abs().max()),
        "avgG_alpha_fbz_0.5": float((G_ema(z, stage=G_ema.stage, alpha=1 - 0.5) - ref["avgG_alpha_fbz_0.5"]).abs().max()),
        "netG": float((nets.G(z) - ref["netG"]).abs().max()),
        "netD_on_netG": float((nets.D(ref["netG"]) - ref["netD_on_netG"]).abs().max()),
    }
    print(errors)
    assert max(errors.values()) <= TOL, errors


def test_fbz_folder_records_provenance_and_parameter_counts(imported):
    from progan_zoo.compiler import compile_spec

    src, out = imported
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["provenance"]["format"] == "pytorch-gan-zoo-pgan"
    assert meta["provenance"]["static_kwargs"]["config"]["depthOtherScales"] == [32, 16, 16]
    assert meta["weights"]["contents"] == ["G_ema", "G", "D"] and meta["alpha"] == 1.0
    from progan_zoo.zoo.sources.fbz import _load

    c = compile_spec(out / "spec.yaml")
    ckpt = _load(src / "fbz_pgan_tiny.pt")
    # Same tensors, same sizes (their G's first layer has 16 biases per map, as dense4x4_fullbias).
    assert sum(p.numel() for p in c.G.parameters()) == sum(t.numel() for t in ckpt["avgG"].values())
    assert sum(p.numel() for p in c.D.parameters()) == sum(t.numel() for t in ckpt["netD"].values())
    fixture = json.loads((src / "fixture.json").read_text())
    assert c.G.resolution == fixture["resolution"] and c.G.z_dim == fixture["constructor"]["dimLatentVector"]


def test_fbz_hostile_checkpoint_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "MARKER"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    f = tmp_path / "evil.pt"
    torch.save({"config": Evil(), "netG": {}, "netD": {}, "avgG": {}}, str(f))
    out = tmp_path / "out"
    assert main(["import", str(f), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(f) in err and "refuses global" in err and "system" in err
    assert not marker.exists() and not out.exists()


def test_fbz_truncated_checkpoint_refused(imported, tmp_path, capsys):
    src, _ = imported
    whole = (src / "fbz_pgan_tiny.pt").read_bytes()
    f = tmp_path / "cut.pt"
    f.write_bytes(whole[: len(whole) // 2])
    assert main(["import", str(f), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(f) in err and not (tmp_path / "out").exists()
