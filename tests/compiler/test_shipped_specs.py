"""Specs ship with the package (progan_zoo.specs) and are found by name from any directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from progan_zoo.cli import main
from progan_zoo.compiler import load_spec
from progan_zoo.compiler.graph import param_count, to_graph
from progan_zoo.errors import UsageError
from progan_zoo.specs import resolve_spec, spec_files

REPO = Path(__file__).resolve().parents[2]


def test_every_top_level_spec_ships_under_its_name():
    files = spec_files()
    assert sorted(p.name for p in files.values()) == sorted(p.name for p in (REPO / "specs").glob("*.yaml"))
    for name, path in files.items():
        assert load_spec(path).name == name          # the registry's key is the spec's own name: field
    assert {"mnist-32", "celebahq-1024", "lsun-bedroom-256"} <= set(files)


def test_resolve_by_name_stem_or_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                      # not the checkout: names still work
    assert Path(resolve_spec("mnist-32")).name == "mnist_32.yaml"
    assert Path(resolve_spec("mnist_32")).name == "mnist_32.yaml"
    assert Path(resolve_spec("lsun-bedroom-256")).name == "lsun_256.yaml"
    assert resolve_spec("specs/mnist_32.yaml") == "specs/mnist_32.yaml"      # a path is left to the loader
    (tmp_path / "mnist-32").write_text("spec_version: 1\n")
    assert resolve_spec("mnist-32") == "mnist-32"    # an existing file wins over a name
    with pytest.raises(UsageError, match=r"nope: no such spec file or shipped spec .*mnist-32"):
        resolve_spec("nope")


def test_specs_command_lists_names_and_parameter_counts(capsys):
    assert main(["specs", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    graph = to_graph(load_spec(rows["mnist-32"]["file"]))
    assert rows["mnist-32"]["params_G"] == param_count(graph, "G") and rows["mnist-32"]["resolution"] == 32
    assert rows["celebahq-1024"]["params_G"] == 23_079_115 and rows["celebahq-1024"]["params_D"] == 23_087_249
    assert main(["specs"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["name", "res"] and any(line.startswith("celebahq-1024") and "23.1M" in line
                                                            for line in table)


def test_compile_and_train_take_a_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["compile", "celebahq-1024", "--stop-after", "validate"]) == 0
    assert "celebahq-1024" in capsys.readouterr().out
    assert main(["compile", "no-such-spec"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no-such-spec: no such spec file or shipped spec" in err and "mnist-32" in err and "\n" not in err
    assert main(["train", "no-such-spec", "--no-progress"]) == 2
    assert "celebahq-1024" in capsys.readouterr().err
