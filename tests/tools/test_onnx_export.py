"""ONNX and torch.export of the shipped mnist-32: the files match PyTorch to 1e-4 at every batch size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import progan_zoo
from progan_zoo.tools.onnx_export import TOLERANCE, export_onnx, export_program

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def mnist32():
    return progan_zoo.load("mnist-32", device="cpu")


@pytest.mark.parametrize("resolution", [16, 32])
def test_onnx_matches_pytorch(mnist32, tmp_path, resolution):
    path, diff = export_onnx(mnist32, tmp_path / "g.onnx", resolution=resolution)
    assert diff is not None and diff <= TOLERANCE
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    G = mnist32.at_resolution(resolution)
    for n in (1, 5):   # the batch axis is dynamic: sizes other than the example's
        z = G.latents(n, seed=100 + n)
        got = session.run(["images"], {"z": z.numpy()})[0]
        want = G(z).numpy()
        assert got.shape == (n, 1, resolution, resolution)
        assert np.abs(got - want).max() <= TOLERANCE
    assert session.get_modelmeta().custom_metadata_map["progan_zoo.resolution"] == str(resolution)


def test_torch_export_program_round_trips(mnist32, tmp_path):
    path, diff = export_program(mnist32, tmp_path / "g.pt2", resolution=16)
    assert diff <= TOLERANCE
    program = torch.export.load(str(path)).module()
    z = mnist32.latents(3, seed=7)
    assert torch.allclose(program(z), mnist32.at_resolution(16)(z), atol=TOLERANCE)


def test_cli_export_onnx(tmp_path, capsys):
    from progan_zoo.cli import main

    out = tmp_path / "g16.onnx"
    assert main(["export-onnx", "mnist-32", "--resolution", "16", "--out", str(out)]) == 0
    assert out.is_file() and "max |onnx - PyTorch|" in capsys.readouterr().out
    assert main(["export-onnx", "mnist-32", "--resolution", "64", "--out", str(out)]) == 2
    assert "no 64x64 stage" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # not a power of two: refused where it is parsed
        main(["export-onnx", "mnist-32", "--resolution", "12", "--out", str(out)])
    assert exc.value.code == 2 and "--resolution: '12': expected a power of two" in capsys.readouterr().err


def test_missing_extra_names_the_install_command(monkeypatch):
    import sys

    from progan_zoo.errors import UserError
    from progan_zoo.tools.extras import need

    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # what an uninstalled package looks like to import
    with pytest.raises(UserError, match=r"pip install 'progan-zoo\[onnx\]'"):
        need("onnxruntime", "onnx", "export-onnx")


def test_mid_fade_model_exports_with_its_alpha(tmp_path, make_run):
    """A model saved while its newest block fades in (alpha 0.4) keeps that blend in the exported graph."""
    from progan_zoo.zoo.export import export_model

    run = make_run(tmp_path / "run", alpha=0.4)
    G = progan_zoo.load(str(export_model(run, tmp_path / "m")), device="cpu")
    assert G.alpha == pytest.approx(0.4)
    path, diff = export_onnx(G, tmp_path / "g.onnx")
    z = G.latents(3, seed=1)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["images"], {"z": z.numpy()})[0]
    assert np.abs(got - G(z).numpy()).max() <= TOLERANCE
    assert np.abs(got - G(z, alpha=1.0).numpy()).max() > 1e-3     # the fade is really in the graph
