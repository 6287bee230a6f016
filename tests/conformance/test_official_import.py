"""The official ProGAN release files, imported without TensorFlow, reproduce the official code's outputs.

Fixtures (tests/fixtures/official/tk_pgan_tiny/{fused,unfused}) hold official-format pickles and the outputs
of the official networks.py (G_paper / D_paper run by TensorFlow) for G, Gs and D at several levels
of detail, mid-fade included. Mirrors: ``tfutil.Network.run`` with the network's ``lod`` variable set;
D is fed the full-resolution images and average-pools them itself (``downscale2d(images, 2**lod)``),
and G's output at lod L is nearest-upsampled to full size (``upscale2d(..., 2**floor(L))``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as Fn

sys.path.insert(0, str(Path(__file__).parent))
from official_fixtures import fixture_dir, import_guarded, lod_to_stage  # noqa: E402

from progan_zoo.cli import main  # noqa: E402

TOL = 1e-4
VARIANTS = ("fused", "unfused")


@pytest.fixture(scope="module", params=VARIANTS)
def imported(request, tmp_path_factory):
    """Import the fixture's pickle with the CLI, in a working directory where the pickle's embedded code
    would leave its marker file if anything from it ran."""
    src = fixture_dir("tk_pgan_tiny", request.param)
    out, marker = import_guarded(src, tmp_path_factory.mktemp(f"import-{request.param}"))
    return request.param, src, out, marker


def _networks(out: Path):
    from progan_zoo.zoo import load
    from progan_zoo.zoo.sources.folder import open_saved

    src = open_saved(out, with_training=True)
    return load(out), src.G, src.D


def _lods(ref) -> list[float]:
    return [float(x) for x in ref["lods"]]


def _key(lod: float) -> str:
    return f"{lod:g}"


def test_folder_records_provenance_and_variant(imported):
    variant, src, out, _ = imported
    meta = json.loads((out / "metadata.json").read_text())
    fixture = json.loads((src / "fixture.json").read_text())
    prov = meta["provenance"]
    assert prov["source_file"] == "network-tiny.pkl" and len(prov["sha256"]) == 64
    assert prov["format"] == "official-tf-progan-pickle" and prov["executed_code"] is False
    assert prov["static_kwargs"]["D"] == fixture["static_kwargs"]["D"]
    assert meta["license"] == "cc-by-nc-4.0" and meta["weights"]["contents"] == ["G_ema", "G", "D"]
    spec = (out / "spec.yaml").read_text()
    assert f"fused_scale: {str(variant == 'fused').lower()}" in spec
    assert f"mbstd_group_size: {fixture['static_kwargs']['D']['mbstd_group_size']}" in spec
    card = (out / "README.md").read_text()
    assert "network-tiny.pkl" in card and "cc-by-nc-4.0" in card


def test_parameter_counts_equal_the_official_variables(imported):
    from progan_zoo.compiler import compile_spec
    from progan_zoo.compiler.graph import param_count

    _, src, out, _ = imported
    fixture = json.loads((src / "fixture.json").read_text())
    c = compile_spec(out / "spec.yaml")
    for net, module in (("G", c.G), ("D", c.D)):
        want = sum(int(np.prod(shape)) for name, shape in fixture["variables"][net] if name != "lod")
        assert sum(p.numel() for p in module.parameters()) == want
        assert param_count(c.graph, net) == want  # the compiler's table agrees with the modules


@torch.no_grad()
def test_generators_reproduce_the_official_outputs(imported):
    variant, src, out, _ = imported
    ref = np.load(src / "reference.npz")
    z = torch.from_numpy(ref["latents"])
    G_ema, G, _ = _networks(out)
    errors = {}
    for lod in _lods(ref):
        stage, alpha, up = lod_to_stage(lod, G_ema.num_stages)
        for name, net in (("Gs", G_ema.G), ("G", G)):
            img = net(z, stage=stage, alpha=alpha)
            img = Fn.interpolate(img, scale_factor=up, mode="nearest") if up > 1 else img
            errors[f"{name}_lod{_key(lod)}"] = float((img - torch.from_numpy(ref[f"{name}_lod{_key(lod)}"])).abs().max())
    print(variant, errors)
    assert max(errors.values()) <= TOL, errors


@torch.no_grad()
def test_discriminator_reproduces_the_official_scores(imported):
    variant, src, out, _ = imported
    ref = np.load(src / "reference.npz")
    images = torch.from_numpy(ref["d_images"])
    _, _, D = _networks(out)
    errors = {}
    for lod in _lods(ref):
        stage, alpha, down = lod_to_stage(lod, D.num_stages)
        x = Fn.avg_pool2d(images, down) if down > 1 else images
        errors[f"D_lod{_key(lod)}"] = float((D(x, stage=stage, alpha=alpha) - torch.from_numpy(ref[f"D_lod{_key(lod)}"])).abs().max())
    print(variant, errors)
    assert max(errors.values()) <= TOL, errors


@torch.no_grad()
def test_load_and_at_resolution_equal_official_gs(imported):
    """The issue's acceptance check: load(DIR)(z) is Gs at lod 0, .at_resolution(r) Gs at the integer lod."""
    from progan_zoo.zoo import load

    _, src, out, _ = imported
    ref = np.load(src / "reference.npz")
    z = torch.from_numpy(ref["latents"])
    G = load(out)
    assert float((G(z) - torch.from_numpy(ref["Gs_lod0"])).abs().max()) <= TOL
    for lod in (x for x in _lods(ref) if x == int(x)):
        r = G.resolution // 2 ** int(lod)
        img = G.at_resolution(r)(z)
        assert img.shape[-1] == r
        full = Fn.interpolate(img, scale_factor=2 ** int(lod), mode="nearest") if lod else img
        assert float((full - torch.from_numpy(ref[f"Gs_lod{_key(lod)}"])).abs().max()) <= TOL


def test_compile_shows_the_imported_layer_table(imported, capsys):
    variant, _, out, _ = imported
    assert main(["compile", str(out / "spec.yaml")]) == 0
    text = capsys.readouterr().out
    if variant == "fused":
        assert "Upconv 3x3" in text and "Conv 3x3 + Downsample" in text
    else:
        assert "Upsample" in text and "Downsample" in text and "Upconv" not in text
