"""A conditional official ProGAN pickle (label_size > 0) imports safely and reproduces the official outputs.

Fixture: tests/fixtures/official/tk_pgan_tiny/cond (written by the official code): the official
code's G, Gs and D outputs for one-hot labels, D's label logits included, at every lod it lists.
G reads ``concat([latents, labels])``; D's output is the score followed by the label logits.
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


def cond_fixture() -> Path:
    return fixture_dir("tk_pgan_tiny", "cond")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Import with the CLI where the pickle's embedded code would leave its marker if it ran."""
    src = cond_fixture()
    out, _ = import_guarded(src, tmp_path_factory.mktemp("import-cond"), samples=10)
    return src, out, np.load(src / "reference.npz")


def _lods(ref) -> list[float]:
    return [float(x) for x in ref["lods"]]


def test_spec_records_the_conditioning(imported):
    from progan_zoo.compiler import compile_spec
    from progan_zoo.compiler.graph import param_count

    src, out, _ = imported
    c = compile_spec(out / "spec.yaml")
    assert c.spec.conditioning.label_size == 10 and c.spec.conditioning.scheme == "concat_onehot"
    assert c.G.label_size == 10 and c.D.label_size == 10
    fixture = json.loads((src / "fixture.json").read_text())
    for net, module in (("G", c.G), ("D", c.D)):
        want = sum(int(np.prod(shape)) for name, shape in fixture["variables"][net] if name != "lod")
        assert sum(p.numel() for p in module.parameters()) == want == param_count(c.graph, net)
    # The graph carries the label paths: labels into G's concat, D's output split into score and logits.
    assert c.graph.has_edge("G/labels", "G/concat") and c.graph.has_edge("G/concat", "G/b4/dense0")
    assert c.graph.has_edge("D/b4/out", "D/b4/score") and c.graph.has_edge("D/b4/out", "D/b4/label_logits")
    assert c.graph.nodes["D/b4/label_logits"]["out_channels"] == 10


@torch.no_grad()
def test_generators_reproduce_the_official_outputs(imported):
    from progan_zoo.zoo import load
    from progan_zoo.zoo.sources.folder import open_saved

    _, out, ref = imported
    z, labels = torch.from_numpy(ref["latents"]), torch.from_numpy(ref["labels"])
    Gs, G = load(out), open_saved(out, with_training=True).G
    errors = {}
    for lod in _lods(ref):
        stage, alpha, up = lod_to_stage(lod, Gs.num_stages)
        for name, net in (("Gs", Gs.G), ("G", G)):
            img = net(z, stage=stage, alpha=alpha, labels=labels)
            img = Fn.interpolate(img, scale_factor=up, mode="nearest") if up > 1 else img
            errors[f"{name}_lod{lod:g}"] = float((img - torch.from_numpy(ref[f"{name}_lod{lod:g}"])).abs().max())
    assert len(errors) == 2 * len(_lods(ref)) and max(errors.values()) <= TOL, errors
    # Class indices mean the same as the one-hot rows; sample(labels=...) is Gs at lod 0.
    idx = labels.argmax(1)
    assert torch.equal(Gs(z, labels=idx), Gs(z, labels=labels))
    assert float((Gs(z, labels=idx) - torch.from_numpy(ref["Gs_lod0"])).abs().max()) <= TOL


@torch.no_grad()
def test_discriminator_reproduces_the_official_scores_and_label_logits(imported):
    from progan_zoo.nn import split_scores
    from progan_zoo.zoo.sources.folder import open_saved

    _, out, ref = imported
    images = torch.from_numpy(ref["d_images"])
    D = open_saved(out, with_training=True).D
    errors = {}
    for lod in _lods(ref):
        stage, alpha, down = lod_to_stage(lod, D.num_stages)
        x = Fn.avg_pool2d(images, down) if down > 1 else images
        scores, logits = split_scores(D(x, stage=stage, alpha=alpha))
        assert scores.shape == (len(images), 1) and logits.shape == (len(images), 10)
        errors[f"D_lod{lod:g}"] = float((scores - torch.from_numpy(ref[f"D_lod{lod:g}"])).abs().max())
        errors[f"D_labels_lod{lod:g}"] = float((logits - torch.from_numpy(ref[f"D_labels_lod{lod:g}"])).abs().max())
    assert max(errors.values()) <= TOL, errors


def test_sampling_takes_classes(imported):
    from progan_zoo.errors import UserError
    from progan_zoo.zoo import load

    _, out, _ = imported
    G = load(out)
    assert G.label_size == 10 and G.class_names == [str(i) for i in range(10)]
    a, b = G.sample(4, seed=1, labels=3), G.sample(4, seed=1, labels="3")
    assert torch.equal(a, b) and not torch.equal(a, G.sample(4, seed=1, labels=4))
    assert torch.equal(G.sample(2, seed=1, labels=[0, 1]), G.sample(2, seed=1))  # default: classes in turn
    with pytest.raises(UserError, match="unknown class"):
        G.sample(1, labels=10)


def test_card_metadata_and_generate_classes(imported, tmp_path, capsys):
    from PIL import Image

    from progan_zoo.zoo import load

    _, out, _ = imported
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["dataset"]["classes"] == [str(i) for i in range(10)]
    card = (out / "README.md").read_text()
    assert "## Classes" in card and "9: `9`" in card and "--class 3" in card and "- class-conditional" in card
    # samples.png: one row per class (10 samples asked: one column).
    assert Image.open(out / "samples.png").size == (32, 320)
    assert main(["generate", str(out), "--class", "3", "--n", "4", "--out", str(tmp_path / "c3.png"),
                 "--separate", str(tmp_path / "sep")]) == 0
    assert "class 3" in capsys.readouterr().out
    G = load(out)
    want = G.sample(4, seed=0, labels=3)
    got = np.stack([np.asarray(Image.open(tmp_path / "sep" / f"{i:06d}.png").convert("RGB")) for i in range(4)])
    assert np.array_equal(got.transpose(0, 3, 1, 2), want.numpy())
    assert main(["generate", str(out), "--per-class", "2", "--out", str(tmp_path / "pc.png")]) == 0
    assert Image.open(tmp_path / "pc.png").size == (64, 320)
    assert main(["generate", str(out), "--class", "cat", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown class 'cat'" in capsys.readouterr().err
    # A latent walk keeps one class in every frame.
    assert main(["interpolate", str(out), "--seeds", "0,1", "--steps", "2", "--class", "5",
                 "--out", str(tmp_path / "w.gif")]) == 0
    assert (tmp_path / "w.gif").stat().st_size > 0


def test_evaluate_per_class(imported, tmp_path, capsys):
    """Per-class scores (each class's images against the data's images of that class) and the 1-NN class
    agreement; an unconditional model refuses --per-class."""
    _, out, _ = imported
    res = tmp_path / "r.json"
    assert main(["evaluate", str(out), "--metrics", "swd", "--num", "32", "--data", "mnist", "--per-class",
                 "--device", "cpu", "--out", str(res)]) == 0
    text = capsys.readouterr().out
    assert "class 9: swd_32" in text and "class agreement" in text
    per = json.loads(res.read_text())["per_class"]
    assert sorted(per["classes"]) == [str(i) for i in range(10)]
    assert 0.0 <= per["class_agreement"]["agreement"] <= 1.0 and len(per["class_agreement"]["per_class"]) == 10
    assert main(["evaluate", "mnist-32", "--per-class", "--num", "16", "--device", "cpu",
                 "--out", str(tmp_path / "u.json")]) == 2
    assert "is unconditional" in capsys.readouterr().err
