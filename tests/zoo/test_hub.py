"""Publish to a loopback Hub, serve it with olah, load back by ``hf-hub:``; offline from a filled cache.

huggingface_hub reads HF_ENDPOINT when imported, so every client runs in a subprocess with its own
environment: uploads go to the tests' write endpoint (``hubserver.UploadHub``), downloads to olah
serving the git repositories that endpoint wrote. Servers bind 127.0.0.1; every wait is bounded.
Run with ``pytest -m network tests/zoo``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from progan_zoo import load
from progan_zoo.zoo import records as F
from progan_zoo.zoo.folder import write_metadata
from progan_zoo.zoo.card import parse_card

from hubserver import Olah, UploadHub, git

pytestmark = pytest.mark.network

HERE = Path(__file__).parent
TOKEN = "test-token"
SAMPLE = ("import sys; from progan_zoo import load; "
          "G = load(sys.argv[1]); open(sys.argv[2], 'wb').write(G.sample(8, seed=0).numpy().tobytes()); "
          "print(G.metadata.hub_repo, G.source)")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    with UploadHub(root / "mirrors", token=TOKEN) as up, Olah(root / "mirrors", root / "olah") as olah:
        yield {"up": up, "olah": olah, "root": root}


def client(*args: str, endpoint: str, home: Path, offline: bool = False, extra: dict | None = None,
           check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update({"HF_ENDPOINT": endpoint, "HF_HOME": str(home / "hf"), "HF_TOKEN": TOKEN,
                "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "PROGAN_ZOO_REGISTRY": str(home / "registry.json"),
                "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])})
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    env.update(extra or {})
    r = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=180)
    if check:
        assert r.returncode == 0, f"{args}: rc {r.returncode}\n{r.stdout}\n{r.stderr[-4000:]}"
    return r


def publish(up: UploadHub, source: Path, repo: str, home: Path, *more: str) -> subprocess.CompletedProcess:
    return client(str(HERE / "zoocli.py"), "publish", str(source), "--repo", repo, *more, endpoint=up.url, home=home)


def samples(ref: str, endpoint: str, home: Path, out: Path, **kw) -> bytes:
    client("-c", SAMPLE, ref, str(out), endpoint=endpoint, home=home, **kw)
    return out.read_bytes()


def test_publish_serve_load_identical(servers, tiny_model, tmp_path):
    up, olah = servers["up"], servers["olah"]
    r = publish(up, tiny_model, "org/tiny", tmp_path)
    assert "published hf-hub:org/tiny" in r.stdout
    assert {"POST /api/repos/create", "POST /api/models/org/tiny/commit/main"} <= set(up.calls)
    repo = up.repo_dir("org", "tiny")
    assert set(git(repo, "ls-tree", "--name-only", "main").split()) == {".gitattributes", *F.FILES}
    local = load(tiny_model).sample(8, seed=0).numpy().tobytes()
    assert samples("hf-hub:org/tiny", olah.url, tmp_path, tmp_path / "s.bin") == local
    # The published card names the repo; the weights are byte for byte the local ones.
    card, _ = parse_card(git(repo, "show", "main:README.md"))
    assert card["library_name"] == "progan-zoo"
    assert json.loads(git(repo, "show", "main:metadata.json"))["hub"] == {"repo": "org/tiny"}

    # Offline, from the cache that load filled; the endpoint is unreachable on purpose.
    dead = "http://127.0.0.1:9"
    assert samples("hf-hub:org/tiny", dead, tmp_path, tmp_path / "o.bin", offline=True) == local
    r = client("-c", SAMPLE, "hf-hub:org/never-fetched", str(tmp_path / "x"), endpoint=dead, home=tmp_path,
               offline=True, check=False)
    assert r.returncode != 0 and "not in the local Hugging Face cache and HF_HUB_OFFLINE=1" in r.stderr


def test_republish_is_a_new_commit(servers, tiny_model, tmp_path):
    up, olah = servers["up"], servers["olah"]
    model = tmp_path / "m"
    import shutil

    shutil.copytree(tiny_model, model)
    publish(up, model, "org/history", tmp_path)
    repo = up.repo_dir("org", "history")
    first = git(repo, "rev-parse", "main")
    # New scores on the model: re-publishing renders the card again and commits on top.
    meta = F.read_metadata(model)
    meta.evaluation = [{"metric": "swd", "values": {"swd_avg": 1.5, "swd_16": 1.5},
                       "settings": {"num_images": 64, "real": "lfw-100", "seed": 0}}]
    write_metadata(model, meta)
    publish(up, model, "org/history", tmp_path, "--message", "add SWD")
    log = git(repo, "log", "--format=%s", "main").splitlines()
    assert log[0] == "add SWD" and len(log) == 3  # initial commit, first publish, re-publish
    changed = git(repo, "show", "--name-only", "--format=", "main").split()
    assert sorted(changed) == ["README.md", "metadata.json"]  # unchanged weights are not sent again
    new_card, _ = parse_card(git(repo, "show", "main:README.md"))
    old_card, _ = parse_card(git(repo, "show", f"{first}:README.md"))
    assert new_card["model-index"][0]["results"][0]["metrics"][0]["value"] == 1.5
    assert "model-index" not in old_card
    # Both revisions load; same weights, so the same images.
    a = samples(f"hf-hub:org/history@{first}", olah.url, tmp_path, tmp_path / "a.bin")
    b = samples("hf-hub:org/history", olah.url, tmp_path, tmp_path / "b.bin")
    assert a == b


def test_branch_and_registry_name(servers, tiny_run, tmp_path):
    up, olah = servers["up"], servers["olah"]
    publish(up, tiny_run, "org/fromrun", tmp_path, "--revision", "dev")  # a run: exported on the way
    repo = up.repo_dir("org", "fromrun")
    assert "metadata.json" in git(repo, "ls-tree", "--name-only", "dev")
    assert "metadata.json" not in git(repo, "ls-tree", "--name-only", "main")
    local = load(tiny_run).sample(8, seed=0).numpy().tobytes()
    assert samples("hf-hub:org/fromrun@dev", olah.url, tmp_path, tmp_path / "d.bin") == local
    # A registry name pointing at the Hub, then the leaderboard reading its card from the Hub.
    client(str(HERE / "zoocli.py"), "models", "--add", "fromrun", "hf-hub:org/fromrun@dev",
           endpoint=olah.url, home=tmp_path)
    assert samples("fromrun", olah.url, tmp_path, tmp_path / "n.bin") == local
    r = client(str(HERE / "zoocli.py"), "leaderboard", endpoint=olah.url, home=tmp_path)
    assert "fromrun: no evaluation results on its card" in r.stderr


def test_missing_repo_is_clear(servers, tmp_path):
    r = client("-c", SAMPLE, "hf-hub:org/absent", str(tmp_path / "x"), endpoint=servers["olah"].url,
               home=tmp_path, check=False)
    assert r.returncode != 0 and "hf-hub:org/absent: no such model repo" in r.stderr


def test_bad_token_is_clear(servers, tiny_model, tmp_path):
    r = client(str(HERE / "zoocli.py"), "publish", str(tiny_model), "--repo", "org/denied",
               endpoint=servers["up"].url, home=tmp_path, extra={"HF_TOKEN": "wrong"}, check=False)
    assert r.returncode == 1 and "publishing failed" in r.stderr and "hf auth login" in r.stderr


PUSH = ("import sys; from progan_zoo import load; "
        "print(load(sys.argv[1]).push_to_hub(sys.argv[2], commit_message='push from a test', token='test-token'))")
FROM_PRETRAINED = ("import sys; from progan_zoo.zoo.model import ZooGenerator; "
                   "G = ZooGenerator.from_pretrained(sys.argv[1]); "
                   "open(sys.argv[2], 'wb').write(G.sample(8, seed=0).numpy().tobytes())")


def test_push_to_hub_from_pretrained_round_trip(servers, tiny_model, tmp_path):
    up, olah = servers["up"], servers["olah"]
    r = client("-c", PUSH, str(tiny_model), "org/mixin", endpoint=up.url, home=tmp_path)
    assert "/org/mixin/commit/" in r.stdout
    repo = up.repo_dir("org", "mixin")
    assert set(git(repo, "ls-tree", "--name-only", "main").split()) == {".gitattributes", *F.FILES, "config.json"}
    assert git(repo, "log", "-1", "--format=%s", "main") == "push from a test"
    assert json.loads(git(repo, "show", "main:config.json"))["library_name"] == "progan-zoo"
    # from_pretrained with a bare repo id, as huggingface_hub's mixin takes it; the same images.
    client("-c", FROM_PRETRAINED, "org/mixin", str(tmp_path / "s.bin"), endpoint=olah.url, home=tmp_path)
    assert (tmp_path / "s.bin").read_bytes() == load(tiny_model).sample(8, seed=0).numpy().tobytes()
