"""specs/table1: every row of the paper's Table 1 compiles at 128x128, each CPU twin trains a tick,
each row differs from the one above it by what its step of Table 1 changes, and `extends:` errors
are positioned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from progan_zoo.compiler import SpecError, compile_spec, load, validate
from progan_zoo.train.config import TrainConfig
from progan_zoo.train.trainer import train

REPO = Path(__file__).resolve().parents[2]
TABLE1 = REPO / "specs" / "table1"
ROWS = ["a_baseline", "b_progressive", "c_small_minibatch", "d_revised_training",
        "e_star_minibatch_discrimination", "e_minibatch_stddev", "f_equalized_lr", "g_pixelwise_norm", "h_converged"]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _diff(a: str, b: str, folder: Path = TABLE1) -> set[str]:
    da, db = (_flat(validate(load(folder / f"{n}.yaml")).model_dump()) for n in (a, b))
    return {k for k in da.keys() | db.keys() if da.get(k) != db.get(k)} - {"name", "source", "description"}


@pytest.mark.parametrize("row", ROWS)
def test_every_row_compiles_at_128(row: str) -> None:
    c = compile_spec(TABLE1 / f"{row}.yaml")
    assert c.spec.architecture.resolution == 128 and c.G.resolution == 128
    assert c.raw.text.startswith("# Resolved spec") or row == "a_baseline"
    # The resolved text stands alone: it compiles without its bases, to the same spec.
    assert validate(load_text_of(c.raw.text)) == c.spec
    # Version 3's keys are written out in the resolved spec by the rows that use one ((a)-(c), (e*)); rows
    # that use none resolve as they would have before the keys existed ((g) is the shipped celeba-128 model).
    from progan_zoo.compiler.defaults import resolved_text
    uses = row in ("a_baseline", "b_progressive", "c_small_minibatch", "e_star_minibatch_discrimination")
    assert ('"batch_norm"' in resolved_text(c.spec)) == uses


def load_text_of(text: str):
    from progan_zoo.compiler import load_text
    return load_text(text, "<resolved>")


def test_each_row_changes_only_its_step() -> None:
    assert _diff("a_baseline", "b_progressive") == {
        "training.progressive", "training.defaults.stabilize_kimg", "training.defaults.fade_kimg"}
    assert _diff("b_progressive", "c_small_minibatch") == {"training.defaults.minibatch", "training.g_ema_decay"}
    # D's 4x4 row follows the switch (version 3): mbdisc after its dense layer, mbstd before its conv.
    assert _diff("d_revised_training", "e_star_minibatch_discrimination") == {
        "architecture.options.mbdisc_kernels", "architecture.discriminator"}
    assert _diff("d_revised_training", "e_minibatch_stddev") == {
        "architecture.options.mbstd_group_size", "architecture.discriminator"}
    assert _diff("e_minibatch_stddev", "f_equalized_lr") == {
        "architecture.options.equalized_lr", "training.defaults.learning_rate"}
    assert _diff("f_equalized_lr", "g_pixelwise_norm") == {"architecture.options.pixel_norm"}
    assert _diff("g_pixelwise_norm", "h_converged") == {
        "architecture.generator", "architecture.discriminator", "training.total_kimg"}
    # The CPU twins keep their rows' differences.
    cpu = TABLE1 / "cpu"
    for a, b in zip(ROWS[:4], ROWS[1:5]):
        assert _diff(a, b, cpu) == _diff(a, b), (a, b)
    # (g) is the shipped celeba-128 network and schedule.
    shipped = _flat(validate(load(REPO / "specs" / "celeba_128.yaml")).model_dump())
    g = _flat(validate(load(TABLE1 / "g_pixelwise_norm.yaml")).model_dump())
    assert {k for k in g if g[k] != shipped.get(k)} == {"spec_version", "name", "revision", "source", "description"}


def test_cpu_twins_train_one_tick(tmp_path: Path) -> None:
    """Every CPU twin trains one tick (one G step and its D steps) and logs finite losses."""
    for row in ROWS:
        out = tmp_path / row
        train(TrainConfig(spec=str(TABLE1 / "cpu" / f"{row}.yaml"), out=str(out), kimg=0.016, tick_kimg=0.016,
                          device="cpu", grid=4, progress=False, tensorboard="off", seed=1))
        log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        assert log and all(abs(v) < 1e6 for k, v in log[-1].items() if k.startswith(("D/", "G/"))), row
        assert (out / "spec.yaml").read_text().startswith("# Resolved spec")
        if row == "a_baseline":
            assert log[0]["resolution"] == 32 and log[0]["alpha"] == 1.0  # no growing: full size at once


def test_extends_errors_are_positioned(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("name: x\nextends: y.yaml\n")
    (tmp_path / "y.yaml").write_text("extends: x.yaml\nname: y\n")
    with pytest.raises(SpecError) as e:
        load(tmp_path / "x.yaml")
    assert "cycle: x.yaml -> y.yaml -> x.yaml" in str(e.value) and e.value.line == 1
    (tmp_path / "m.yaml").write_text("spec_version: 1\n\nextends: [nothere.yaml]\n")
    with pytest.raises(SpecError) as e:
        load(tmp_path / "m.yaml")
    assert "base spec 'nothere.yaml' not found" in str(e.value) and (e.value.line, e.value.column) == (3, 11)


def test_an_inherited_mistake_points_at_the_base_file(tmp_path: Path) -> None:
    base = (REPO / "specs" / "mnist_32.yaml").read_text().replace("minibatch: 16", "minibatch: 0")
    base = base.replace("spec_version: 2", "spec_version: 3")
    (tmp_path / "base.yaml").write_text(base)
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nname: child\n")
    with pytest.raises(SpecError) as e:
        validate(load(tmp_path / "child.yaml"))
    assert e.value.file.endswith("base.yaml")
    assert e.value.line == next(i + 1 for i, s in enumerate(base.splitlines()) if "minibatch: 0" in s)
    (tmp_path / "base.yaml").write_text(base.replace("minibatch: 0", "minibatch: 16"))
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nname: child\ntraining:\n  defaults: {minibatch: 0}\n")
    with pytest.raises(SpecError) as e:  # the child's own mistake points at the child
        validate(load(tmp_path / "child.yaml"))
    assert e.value.file.endswith("child.yaml") and e.value.line == 4
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nname: child\ntraining:\n  progressive: false\n")
    with pytest.raises(SpecError) as e:  # a rule broken by the child's switch names the inherited value's place
        validate(load(tmp_path / "child.yaml"))
    assert e.value.file.endswith("base.yaml") and "progressive is false" in str(e.value)
