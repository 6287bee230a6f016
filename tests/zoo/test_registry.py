"""Names -> models: the shipped registry, user registries, local publishing, and every shipped model loading."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
import torch

from progan_zoo import list_models, load
from progan_zoo.errors import UserError
from progan_zoo.zoo import records as F
from progan_zoo.zoo import registry as R
from progan_zoo.zoo.publish import publish

import zoocli

SHIPPED_LOCAL = [n for n, e in R.read_registry(R.SHIPPED).items() if e.kind == "folder"]


def test_shipped_registry_parses():
    shipped = R.read_registry(R.SHIPPED)
    assert "celebahq-1024" in shipped and shipped["celebahq-1024"].kind == "official"
    assert shipped["cifar10-32"].kind == "unpublished"
    assert set(shipped) <= set(list_models())
    assert "cifar10-32" not in list_models(published_only=True)
    assert list_models("celebahq*") == ["celebahq-1024"]


def test_unpublished_name_says_so():
    with pytest.raises(UserError, match=r"cifar10-32: its weights are not published yet .*hf-hub:progan-zoo/cifar10-32"):
        load("cifar10-32")


def test_unknown_name_lists_known():
    with pytest.raises(UserError, match=r"unknown model 'nope'; known models: .*celebahq-1024"):
        load("nope")
    with pytest.raises(UserError, match="no such folder"):
        load("./missing/folder")


def test_user_registry_adds_and_overrides(tmp_path, tiny_model, isolated, capsys):
    reg = isolated / "registry.json"
    assert zoocli.main(["models", "--add", "mine", str(tiny_model)]) == 0
    assert zoocli.main(["models", "--add", "celebahq-1024", str(tiny_model)]) == 0  # user entries win
    assert json.loads(reg.read_text())["models"]["mine"]["folder"] == str(tiny_model.resolve())
    assert torch.equal(load("mine").sample(2, seed=5), load(tiny_model).sample(2, seed=5))
    assert load("celebahq-1024").resolution == 16
    capsys.readouterr()
    assert zoocli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "mine" in out and str(tiny_model.resolve()) in out and "local" in out
    assert zoocli.main(["models", "--json", "mi*"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["mine"]
    assert zoocli.main(["models", "--remove", "mine"]) == 0
    assert "mine" not in list_models()
    assert zoocli.main(["models", "--add", "hubbed", "hf-hub:org/thing@v2"]) == 0
    e = R.resolve("hubbed")
    assert (e.kind, e.location, e.revision, e.where) == ("hub", "org/thing", "v2", "hf-hub:org/thing@v2")


def test_bad_registry_names_the_file(isolated):
    reg = isolated / "registry.json"
    reg.write_text(json.dumps({"format_version": 1, "models": {"x": {"nothing": 1}}}))
    with pytest.raises(UserError, match=rf"{reg}: models.x: needs \"folder\""):
        list_models()
    reg.write_text("{")
    with pytest.raises(UserError, match=rf"{reg}: not valid JSON"):
        list_models()


def test_several_user_registries(tmp_path, tiny_model, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    R.add_entry(a / "registry.json", "m", {"folder": str(tiny_model)})
    R.add_entry(b / "registry.json", "m", {"hub": "org/other"})
    monkeypatch.setenv("PROGAN_ZOO_REGISTRY", f"{a}:{b}")
    assert R.resolve("m").kind == "folder"  # earlier paths win, like PATH


def test_publish_to_local_registry(tmp_path, tiny_run, monkeypatch):
    dest = tmp_path / "zoo"
    info = publish(tiny_run, to=dest, name="tiny")  # a run: exported first
    assert (dest / "tiny" / F.WEIGHTS).is_file() and info["previous"] is None
    monkeypatch.setenv("PROGAN_ZOO_REGISTRY", str(dest))
    first = load("tiny").sample(3, seed=0)
    assert torch.equal(first, load(tiny_run).sample(3, seed=0))
    again = publish(tiny_run, to=dest, name="tiny")  # re-publishing keeps the previous version
    assert again["previous"] and (F.read_metadata(again["previous"]).name == "tiny")
    assert torch.equal(load("tiny").sample(3, seed=0), first)


def _no_network(monkeypatch):
    def refuse(*a, **k):
        raise OSError("network access during a local load")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_local_folder_needs_no_network(tiny_model, monkeypatch):
    _no_network(monkeypatch)
    assert load(tiny_model).sample(2).shape == (2, 3, 16, 16)


@pytest.mark.parametrize("name", SHIPPED_LOCAL)
def test_every_shipped_model_loads_offline(name, monkeypatch):
    """Like timm's sweep over registered models: each shipped folder loads by name with no network."""
    _no_network(monkeypatch)
    G = load(name)
    meta = G.metadata
    x = G.sample(4, seed=0)
    assert x.shape == (4, G.image_channels, G.resolution, G.resolution) and x.dtype == torch.uint8
    assert x.float().std() > 0  # not a constant image
    assert torch.equal(x, load(name).sample(4, seed=0))
    evaluated = {k for ev in meta.evaluation for k in ev["values"]}
    assert {"swd_avg", "fid"} <= evaluated, f"{name}: the card must carry measured SWD and FID"


def test_zoo_cli_imports_no_torch():
    code = "import sys, progan_zoo.zoo.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
