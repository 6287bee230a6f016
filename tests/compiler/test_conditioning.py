"""The spec's conditioning section: G(z, labels) and D's label logits, the label paths in the graph, and
no change at all for a spec without the section."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from progan_zoo.compiler import compile_spec
from progan_zoo.compiler.cost import spec_cost
from progan_zoo.compiler.draw import to_dot
from progan_zoo.compiler.graph import param_count
from progan_zoo.cli import main
from progan_zoo.nn import split_scores

BASE = Path(__file__).parents[1] / "fixtures" / "specs" / "tiny_mnist_16.yaml"
COND = "conditioning:\n  label_size: 3\n  class_names: [zero, one, two]\n  cond_weight: 0.5\n"


@pytest.fixture
def cond_spec(tmp_path: Path) -> Path:
    path = tmp_path / "cond.yaml"
    path.write_text(BASE.read_text() + COND)
    return path


def test_networks_take_labels_and_d_returns_label_logits(cond_spec):
    torch.manual_seed(0)
    c = compile_spec(cond_spec)
    assert c.spec.conditioning.class_names == ["zero", "one", "two"] and c.spec.conditioning.cond_weight == 0.5
    z = torch.randn(4, 16)
    idx = torch.tensor([0, 1, 2, 0])
    img = c.G(z, labels=idx)
    assert img.shape == (4, 1, 16, 16)
    assert torch.equal(img, c.G(z, labels=torch.nn.functional.one_hot(idx, 3).float()))
    assert not torch.allclose(img, c.G(z, labels=(idx + 1) % 3))  # the label changes the image
    with pytest.raises(ValueError, match="conditional on 3 classes"):
        c.G(z)
    with pytest.raises(ValueError, match="out of range"):
        c.G(z, labels=torch.tensor([0, 1, 2, 3]))
    out = c.D(img, stage=2)
    scores, logits = split_scores(out)
    assert out.shape == (4, 4) and scores.shape == (4, 1) and logits.shape == (4, 3)
    # G's first dense layer reads latent + labels; D's output layer emits 1 + label_size values.
    assert c.G.b4.block.dense0.weight.shape[1] == 16 + 3 and c.D.b4.block.out.weight.shape[0] == 1 + 3
    for net, module in (("G", c.G), ("D", c.D)):
        assert sum(p.numel() for p in module.parameters()) == param_count(c.graph, net)


def test_graph_shows_the_label_paths(cond_spec, tmp_path, capsys):
    c = compile_spec(cond_spec)
    g = c.graph
    assert g.graph["label_size"] == 3
    assert list(g.predecessors("G/concat")) == ["G/latent", "G/labels"]
    assert g.nodes["G/concat"]["activation"] == "pixnorm" and g.nodes["G/latent"]["activation"] == "-"
    assert sorted(g.successors("D/b4/out")) == ["D/b4/label_logits", "D/b4/score"]
    dot = to_dot(g)
    assert '"G/labels" -> "G/concat"' in dot and '"D/b4/out" -> "D/b4/label_logits"' in dot
    assert spec_cost(g, c.spec).phases  # the cost model knows the new nodes
    assert main(["compile", str(cond_spec), "--graph", str(tmp_path / "g.dot")]) == 0
    text = capsys.readouterr().out
    assert "Labels (one-hot)" in text and "Concat [latent, labels]" in text and "Label logits" in text
    assert '"G/labels" -> "G/concat"' in (tmp_path / "g.dot").read_text()


def test_without_the_section_nothing_changes():
    c = compile_spec(BASE)
    assert c.spec.conditioning is None and c.G.label_size == 0 and c.D.label_size == 0
    assert "G/labels" not in c.graph and "D/b4/score" not in c.graph
    assert list(c.graph.successors("G/latent")) == ["G/b4/dense0"]
    assert c.graph.nodes["G/latent"]["activation"] == "pixnorm"
    assert c.D(torch.zeros(2, 1, 16, 16)).shape == (2, 1)
    with pytest.raises(ValueError, match="unconditional"):
        c.G(torch.zeros(2, 16), labels=torch.tensor([0, 1]))
