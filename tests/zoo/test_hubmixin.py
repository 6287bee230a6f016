"""torch.hub and Hugging Face conventions: ``hubconf.py`` at the repository root, and
``save_pretrained`` / ``from_pretrained`` on a loaded generator (the Hub round trip is in test_hub.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from progan_zoo import load
from progan_zoo.zoo import records as F
from progan_zoo.zoo.hub import CONFIG
from progan_zoo.zoo.model import ZooGenerator

REPO = Path(__file__).resolve().parents[2]


def test_torch_hub_load_local():
    G = torch.hub.load(str(REPO), "load", "mnist-32", source="local")
    assert isinstance(G, ZooGenerator) and G.resolution == 32
    assert torch.equal(G.sample(4, seed=3), load("mnist-32").sample(4, seed=3))
    # torch.hub lists a hubconf's public callables as its entry points: exactly these two.
    spec = importlib.util.spec_from_file_location("hubconf_under_test", REPO / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    assert {n for n in dir(hubconf) if callable(getattr(hubconf, n)) and not n.startswith("_")} == {"load", "list_models"}
    assert "mnist-32" in torch.hub.load(str(REPO), "list_models", source="local")


def test_torch_hub_load_from_a_plain_checkout(tmp_path):
    """What torch.hub downloads is a checkout, not an install: compiler/ is not inside progan_zoo/ there."""
    copy = tmp_path / "checkout"
    copy.mkdir()
    for part in ("progan_zoo", "compiler", "specs"):
        shutil.copytree(REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "hubconf.py", copy)
    code = ("import sys, torch\n"
            # Hide every installed progan_zoo (editable finders and site-packages copies).
            "sys.meta_path = [f for f in sys.meta_path if '__editable__' not in getattr(f, '__module__', '')]\n"
            "G = torch.hub.load(sys.argv[1], 'load', 'mnist-32', source='local')\n"
            "import progan_zoo, progan_zoo.compiler\n"
            "print(G.resolution, progan_zoo.__file__, progan_zoo.compiler.__file__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", code, str(copy)], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    res, pkg, comp = r.stdout.split()
    assert res == "32" and pkg.startswith(str(copy)) and comp.startswith(str(copy / "compiler"))


def test_save_pretrained_from_pretrained_round_trip(tiny_model, tmp_path):
    G = load(tiny_model)
    out = tmp_path / "saved"
    assert G.save_pretrained(out, config={"note": "round trip"}) is None
    assert {*F.FILES, CONFIG} == {p.name for p in out.iterdir()}
    config = json.loads((out / CONFIG).read_text())
    assert config["library_name"] == "progan-zoo" and config["note"] == "round trip"
    assert config["resolution"] == G.resolution and config["spec_sha256"] == G.metadata.spec["sha256"]
    want = G.sample(8, seed=0)
    # The folder is the one load reads (hashes checked), and from_pretrained reads it too.
    assert torch.equal(load(out).sample(8, seed=0), want)
    assert torch.equal(ZooGenerator.from_pretrained(out).sample(8, seed=0), want)
    assert F.read_metadata(out).weights["contents"] == ["G_ema"]
    # A lower stage saves as a model of that resolution; saving again replaces the folder.
    G.at_resolution(8).save_pretrained(out)
    low = ZooGenerator.from_pretrained(out)
    assert low.resolution == 8 and torch.equal(low.sample(4, seed=1), G.at_resolution(8).sample(4, seed=1))
    # Names and hf-hub: references go through load.
    assert ZooGenerator.from_pretrained("mnist-32").name == "mnist-32"
