"""What a spec leaves out, per ``spec_version``, and the resolved form that writes it all down.

A spec file names a model only if what it leaves out means the same thing forever. So defaults belong
to a spec version, not to the code of the day: each version has a fixed table (flat dotted keys, the
per-row layer lists included), and tests/compiler/snapshots/defaults_v<N>.json pins every table.
Changing a default therefore means adding a version:

- the newest version's table is read from the pydantic models in schema.py (defaults stated once);
- every older version is the next newer one plus the values that differ (``_CHANGES``), so it stays
  what it was when the newer version was added.

``resolve_data`` fills a file's version's defaults into its data; ``resolved_text`` is the complete
explicit form of a validated spec (every value written out, canonical key order, JSON number
formatting, no ``spec_version``: with nothing left to default, the version no longer matters), and its
sha256 is the model's identity. ``migrate.migrate_text`` rewrites a file to the newest version with the same
resolved form.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, get_args

from pydantic import BaseModel

from .schema import (
    DEFAULT_D_BLOCK,
    DEFAULT_D_LAST,
    DEFAULT_G_BLOCK,
    DEFAULT_G_FIRST,
    FUSED_D_BLOCK,
    FUSED_G_BLOCK,
    SPEC_VERSIONS,
    MetricName,
    Spec,
)

NEWEST = SPEC_VERSIONS[-1]

# Block layers of rows without their own `layers` (keys of the table; resolve_data picks one per row).
LAYER_KEYS = {
    "architecture.generator.layers.first": DEFAULT_G_FIRST,
    "architecture.generator.layers.block": DEFAULT_G_BLOCK,
    "architecture.generator.layers.block_fused": FUSED_G_BLOCK,
    "architecture.discriminator.layers.block": DEFAULT_D_BLOCK,
    "architecture.discriminator.layers.block_fused": FUSED_D_BLOCK,
    "architecture.discriminator.layers.last": DEFAULT_D_LAST,
}

# Version N -> the values in which its table differs from version N + 1's.
_CHANGES: dict[int, dict[str, Any]] = {
    # Version 1 as it stood when the shipped mnist-32 was trained (commit 9835ce5, 2026-11-24). Commit
    # 3672cd1 (2026-12-03) then changed these in place, and ee0fe16 the evaluation count:
    1: {
        "training.loss.gp_at": "stage",                 # the field did not exist: the penalty was taken at the stage's resolution
        "training.optimizer.reset_on_growth": False,    # default was false
        "training.minibatch_repeats": 1,                # did not exist: the schedule was updated every minibatch
        "evaluation.num_images": 10000,                 # default was 10000 for every metric
    },
    2: {},  # version 3 only added keys (ADDED)
}


# Version N -> the keys it added, with their defaults: each means "not used" (the behaviour every older
# spec already had), so adding them changed no older file's meaning. An older version's table does not
# have them, an older file may not set them (validate.py), and the resolved form leaves a version's keys
# out while all of them hold these values, so a spec that uses none keeps the resolved form and sha256 it
# had before (one that uses any has all of them written out).
ADDED: dict[int, dict[str, Any]] = {
    3: {  # the switches of the paper's Table 1 rows (specs/table1/, docs/table1.md)
        "architecture.options.g_activation": "lrelu",
        "architecture.options.g_output": "linear",
        "architecture.options.batch_norm": False,
        "architecture.options.layer_norm": False,
        "architecture.options.mbdisc_kernels": 0,
        "architecture.options.mbdisc_kernel_dim": 5,
        "training.progressive": True,
    },
}


# Optional sections whose absence means "not used" (the behaviour of every spec written before them): they
# have no entry in any version's table, and the resolved form leaves them out while absent, so a spec
# without one keeps the resolved form and sha256 it had before. A spec that has one gets it written out
# whole (every key of the section, defaults included) in its resolved form.
OPTIONAL_SECTIONS = ("conditioning",)   # class conditioning (issue 20, docs/conditional.md)


def added_after(version: int) -> dict[str, Any]:
    """The keys that versions newer than ``version`` added, with their "not used" defaults."""
    return {k: v for n, keys in ADDED.items() if n > version for k, v in keys.items()}


def _default_of(field: Any) -> Any:
    if field.default_factory is not None:
        return field.default_factory()
    return field.default


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds directly (a section), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _walk(model: type[BaseModel], prefix: str, out: dict[str, Any]) -> None:
    for name, field in model.model_fields.items():
        key = prefix + name
        if key in OPTIONAL_SECTIONS:
            continue  # not a default: absent means not used (see OPTIONAL_SECTIONS)
        section = _model_of(field.annotation)
        if section is not None:
            _walk(section, key + ".", out)  # a section's own fields carry the defaults
            continue
        if field.is_required():
            continue
        value = _default_of(field)
        out[key] = json.loads(json.dumps(value.model_dump() if isinstance(value, BaseModel) else value))


def model_defaults() -> dict[str, Any]:
    """The newest version's table, read from the pydantic models (flat dotted keys, sorted)."""
    out: dict[str, Any] = {}
    _walk(Spec, "", out)
    out.update({k: list(v) for k, v in LAYER_KEYS.items()})
    return dict(sorted(out.items()))


def defaults_table(version: int) -> dict[str, Any]:
    """The fixed defaults of one spec version (flat dotted keys -> values)."""
    if version not in SPEC_VERSIONS:
        raise ValueError(f"unknown spec_version {version!r}; known: {SPEC_VERSIONS}")
    table = model_defaults()
    for v in range(NEWEST - 1, version - 1, -1):
        table.update(copy.deepcopy(_CHANGES[v]))
    for key in added_after(version):
        del table[key]
    return table


# --------------------------------------------------------------------------- resolving

def _get(data: dict[str, Any], path: list[str]) -> tuple[bool, Any]:
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _setdefault(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node.setdefault(path[-1], copy.deepcopy(value))


def row_layers(table: dict[str, Any], network: str, index: int, rows: int, fused: bool,
               options: dict[str, Any] | None = None) -> list[str]:
    """The layers a row without its own takes: 4x4 rows are special, fused_scale picks the block. From
    version 3 (whose table has the Table 1 keys) D's 4x4 row also follows ``options``: no mbstd while
    the statistic is off (older versions refuse that row instead), and mbdisc last while it is on."""
    end = index == 0 if network == "generator" else index == rows - 1
    kind = ("first" if network == "generator" else "last") if end else ("block_fused" if fused else "block")
    layers = list(table[f"architecture.{network}.layers.{kind}"])
    if kind == "last" and options is not None and "architecture.options.mbdisc_kernels" in table:
        layers = [op for op in layers if op != "mbstd" or options.get("mbstd_group_size", 0) > 1]
        layers += ["mbdisc"] if options.get("mbdisc_kernels", 0) > 0 else []
    return layers


def g_layers(spec: Spec, index: int) -> list[str]:
    """Layers of generator row ``index`` (a validated spec has them all; else the version's defaults)."""
    rows = spec.architecture.generator
    return list(rows[index].layers or row_layers(defaults_table(spec.spec_version), "generator", index, len(rows),
                                                 spec.architecture.options.fused_scale))


def d_layers(spec: Spec, index: int) -> list[str]:
    """Layers of discriminator row ``index`` (rows run from the top resolution down to 4)."""
    rows = spec.architecture.discriminator
    return list(rows[index].layers or row_layers(defaults_table(spec.spec_version), "discriminator", index,
                                                 len(rows), spec.architecture.options.fused_scale,
                                                 spec.architecture.options.model_dump()))


def resolve_data(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of schema-checked spec data with every default of its version written in."""
    table = defaults_table(data["spec_version"])
    out = copy.deepcopy(data)
    for key, value in table.items():
        if key not in LAYER_KEYS:
            _setdefault(out, key.split("."), value)
    arch = out["architecture"]
    fused = bool(arch["options"]["fused_scale"])
    for network in ("generator", "discriminator"):
        rows = arch[network]
        for i, row in enumerate(rows):
            if row.get("layers") is None:
                row["layers"] = row_layers(table, network, i, len(rows), fused, arch["options"])
    training = out["training"]
    for row in training["schedule"]:
        for key, value in training["defaults"].items():
            if row.get(key) is None:
                row[key] = value
    training["schedule"].sort(key=lambda r: r["resolution"])
    counts = out["evaluation"]["num_images"]
    if isinstance(counts, dict):  # metrics left out take the official count (the same in every version)
        from progan_zoo.metrics.registry import OFFICIAL_NUM_IMAGES

        out["evaluation"]["num_images"] = {m: counts.get(m, OFFICIAL_NUM_IMAGES[m]) for m in get_args(MetricName)}
    return out


def _flat(value: Any) -> bool:
    return not isinstance(value, (dict, list)) or (isinstance(value, list) and not any(
        isinstance(x, (dict, list)) for x in value))


def _canonical(value: Any, depth: int = 0, item: bool = False) -> str:
    """JSON with one fixed layout: sections indented by two spaces; lists of scalars, and table rows
    (list items whose values are all flat), on one line; numbers and strings as ``json.dumps`` writes them."""
    if isinstance(value, dict) and value and not (item and all(map(_flat, value.values()))):
        pad = "  " * (depth + 1)
        body = ",\n".join(f"{pad}{json.dumps(k, ensure_ascii=False)}: {_canonical(v, depth + 1)}" for k, v in value.items())
        return "{\n" + body + "\n" + "  " * depth + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_canonical(v, depth, True)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list) and not _flat(value):
        pad = "  " * (depth + 1)
        return "[\n" + ",\n".join(pad + _canonical(v, depth + 1, True) for v in value) + "\n" + "  " * depth + "]"
    if isinstance(value, list):
        return "[" + ", ".join(_canonical(v, depth, True) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def resolved_text(spec: Spec) -> str:
    """The complete explicit form of a validated spec: canonical JSON (which is YAML too) in the schema's
    key order, without ``spec_version``."""
    data = spec.model_dump(mode="json")
    data.pop("spec_version")
    for section in OPTIONAL_SECTIONS:  # absent: left out, so older specs keep their identity
        if data.get(section) is None:
            data.pop(section, None)
    for keys in ADDED.values():  # a version's added keys, all at their "not used" values: left out
        places = []
        for key, unused in keys.items():
            *parents, last = key.split(".")
            node = data
            for part in parents:
                node = node[part]
            places.append((node, last, node[last] == unused))
        if all(unused for _, _, unused in places):
            for node, last, _ in places:
                del node[last]
    return _canonical(data) + "\n"


def resolved_sha256(spec: Spec) -> str:
    """sha256 of :func:`resolved_text`: the identity of the model a spec describes."""
    return hashlib.sha256(resolved_text(spec).encode("utf-8")).hexdigest()


__all__ = ["ADDED", "NEWEST", "OPTIONAL_SECTIONS", "added_after", "defaults_table", "model_defaults", "resolve_data", "resolved_sha256", "resolved_text",
           "row_layers"]


def snapshot_text(version: int) -> str:
    """A version's table as its pinned snapshot file holds it (tests/compiler/snapshots/defaults_v<N>.json)."""
    return json.dumps(defaults_table(version), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    import sys

    # `python -m progan_zoo.compiler.defaults N` prints version N's table in the snapshot's form (only a new
    # version ever gets a new snapshot: an old one changing is the bug its test exists to catch).
    from progan_zoo.compiler.defaults import snapshot_text as _snapshot

    sys.stdout.write(_snapshot(int(sys.argv[1]) if len(sys.argv) > 1 else NEWEST))
