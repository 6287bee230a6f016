"""Versioned defaults, resolved specs and `migrate` (issue 18): a spec file names one model forever."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from progan_zoo.cli import main
from progan_zoo.compiler import load_spec, load_text, validate
from progan_zoo.compiler.defaults import NEWEST, defaults_table, resolved_sha256, resolved_text, snapshot_text
from progan_zoo.compiler.migrate import migrate_text
from progan_zoo.compiler.schema import SPEC_VERSIONS

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).with_name("snapshots")
SHIPPED = sorted((ROOT / "specs").glob("*.yaml"))
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "specs").glob("*.yaml"))
V1 = sorted((ROOT / "tests" / "fixtures" / "specs" / "v1").glob("*.yaml"))
ALL = SHIPPED + FIXTURES + V1
MODEL_SPEC = ROOT / "progan_zoo" / "zoo" / "models" / "mnist-32" / "spec.yaml"


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("version", SPEC_VERSIONS)
def test_each_version_keeps_its_defaults(version: int) -> None:
    """The pinned table of every version. A default edited in schema.py (or in a version's changes) fails
    here: add a new spec_version instead (compiler/defaults.py), with its own snapshot."""
    snapshot = SNAPSHOTS / f"defaults_v{version}.json"
    assert snapshot.is_file(), (f"spec_version {version} has no pinned defaults: write them with "
                                f"python -m progan_zoo.compiler.defaults {version} > {snapshot}")
    assert snapshot_text(version) == snapshot.read_text(), (
        f"spec_version {version}'s defaults changed; a changed default needs a new spec_version "
        "(compiler/defaults.py: the newest table comes from schema.py, older ones from _CHANGES)")


def test_every_snapshot_is_a_known_version() -> None:
    assert sorted(int(p.stem.split("_v")[1]) for p in SNAPSHOTS.glob("defaults_v*.json")) == list(SPEC_VERSIONS)


def test_version_1_is_the_defaults_mnist32_was_trained_with() -> None:
    """Commit 9835ce5 (the model's): no penalty option (the stage's resolution), reset_on_growth false, the
    schedule updated every minibatch, 10000 images per metric. Version 2: the official values."""
    v1, v2 = defaults_table(1), defaults_table(2)
    assert {k: v1[k] for k in v1 if v1[k] != v2[k]} == {
        "training.loss.gp_at": "stage", "training.optimizer.reset_on_growth": False,
        "training.minibatch_repeats": 1, "evaluation.num_images": 10000}
    assert (v2["training.loss.gp_at"], v2["training.optimizer.reset_on_growth"], v2["training.minibatch_repeats"]) == (
        "final", True, 4)


def test_an_old_file_keeps_its_version_meaning() -> None:
    text = (ROOT / "tests" / "fixtures" / "specs" / "tiny_16.yaml").read_text()
    v1 = validate(load_text(text.replace("spec_version: 2", "spec_version: 1")))
    v2 = validate(load_text(text))
    assert (v1.training.loss.gp_at, v1.training.optimizer.reset_on_growth, v1.training.minibatch_repeats) == (
        "stage", False, 1)
    assert (v2.training.loss.gp_at, v2.training.optimizer.reset_on_growth, v2.training.minibatch_repeats) == (
        "final", True, 4)


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_resolved_form_is_complete(path: Path) -> None:
    """Nothing is left to default: read under any version, the resolved text resolves to itself."""
    text = resolved_text(load_spec(path))
    for version in SPEC_VERSIONS:
        data = {"spec_version": version, **json.loads(text)}
        assert resolved_text(validate(load_text(json.dumps(data)))) == text


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_migrate_keeps_the_resolved_form(path: Path) -> None:
    before = load_spec(path)
    migrated = migrate_text(path.read_text(), str(path))
    after = validate(load_text(migrated))
    assert after.spec_version == NEWEST
    assert resolved_text(after) == resolved_text(before)
    assert migrate_text(migrated) == migrated  # already newest: unchanged


def test_the_demo_spec_names_the_shipped_model() -> None:
    """specs/mnist_32.yaml (version 2), its version-1 original and the model folder's spec.yaml (the exact
    file it was trained from) resolve to one model, the one the shipped card records."""
    want = json.loads((MODEL_SPEC.parent / "metadata.json").read_text())["spec"]["resolved_sha256"]
    assert resolved_sha256(load_spec(ROOT / "specs" / "mnist_32.yaml")) == want
    assert resolved_sha256(load_spec(ROOT / "tests" / "fixtures" / "specs" / "v1" / "mnist_32.yaml")) == want
    assert resolved_sha256(load_spec(MODEL_SPEC)) == want
    assert f"resolved sha256 `{want}`" in (MODEL_SPEC.parent / "README.md").read_text()


@pytest.mark.parametrize("name", ["celeba_128", "cifar10_32", "celebahq_1024", "lsun_256"])
def test_paper_specs_moved_to_the_official_defaults_with_a_new_revision(name: str) -> None:
    """These were written for the official defaults while version 1 had (wrongly) been changed to them; at
    version 2 they keep that meaning under a new revision, which differs from their version-1 file's
    meaning only in the three official values."""
    old = json.loads(resolved_text(load_spec(ROOT / "tests" / "fixtures" / "specs" / "v1" / f"{name}.yaml")))
    new = json.loads(resolved_text(load_spec(ROOT / "specs" / f"{name}.yaml")))
    assert new["revision"] == old["revision"] + 1
    tr_old, tr_new = old["training"], new["training"]
    assert (tr_new["loss"]["gp_at"], tr_new["optimizer"]["reset_on_growth"]) == ("final", True)
    for data in (old, new):
        data.pop("revision")
        data["training"]["loss"].pop("gp_at")
        data["training"]["optimizer"].pop("reset_on_growth")
        if name == "celebahq_1024":  # the others set minibatch_repeats: 1 themselves
            data["training"].pop("minibatch_repeats")
    assert new == old


def test_cli_compile_resolved_and_its_hash(capsys) -> None:
    spec = ROOT / "specs" / "mnist_32.yaml"
    assert main(["compile", str(spec), "--resolved"]) == 0
    out = capsys.readouterr().out
    assert out == resolved_text(load_spec(spec))
    assert main(["compile", str(spec), "--resolved", "--cost"]) == 2


def test_cli_migrate_in_place_and_to_a_file(tmp_path, capsys) -> None:
    src = ROOT / "tests" / "fixtures" / "specs" / "v1" / "mnist_32.yaml"
    before = resolved_sha256(load_spec(src))
    work = tmp_path / "spec.yaml"
    work.write_bytes(src.read_bytes())
    assert main(["migrate", str(work), "--out", str(tmp_path / "out.yaml")]) == 0
    assert work.read_bytes() == src.read_bytes()  # --out leaves the original alone
    assert main(["migrate", str(work)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line == f"{work}: spec_version 1 -> spec_version {NEWEST}; resolved sha256 {before} (unchanged)"
    assert "# A small CPU spec" in work.read_text()  # comments kept
    assert load_spec(work).spec_version == NEWEST and resolved_sha256(load_spec(work)) == before
    assert (tmp_path / "out.yaml").read_text() == work.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec_version: 1\nname: x\n")
    assert main(["migrate", str(bad)]) == 2
    assert bad.read_text() == "spec_version: 1\nname: x\n"
