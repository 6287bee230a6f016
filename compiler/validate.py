"""Stage 2: check a raw spec against the JSON Schema, build the pydantic model, apply cross-field rules.

Order matters for the messages: the version is checked first (so a future spec is refused with
the versions we know), then the JSON Schema on the raw YAML (so every error has a position;
schema_errors.py), then the version's defaults are written in (defaults.py), then pydantic (the
source of truth), then each size against its bound (limits.py), the cross-field rules (rules.py)
and the per-layer and total sizes (limits.py). This file is the order; the checks live in those.
The Spec returned is the resolved one: no value in it comes from a pydantic default.
Every problem is raised as one ``SpecError``: ``file:line:col: key.path: what (hint: fix)``.
"""

from __future__ import annotations

from pydantic import ValidationError

from .defaults import ADDED, added_after, resolve_data
from .limits import check_size_fields, check_size_totals
from .load import RawSpec
from .rules import check_rules
from .schema import SPEC_VERSIONS, Spec
from .schema_errors import check_schema


def validate(raw: RawSpec) -> Spec:
    """Return the validated Spec or raise the first problem as a SpecError."""
    _check_version(raw)
    check_schema(raw)
    try:
        spec = Spec.model_validate(resolve_data(raw.data))
    except ValidationError as exc:  # rare: the schema already passed
        err = exc.errors()[0]
        raise raw.error(list(err["loc"]), err["msg"], "see docs/spec.md for this field", at_value=True) from None
    check_size_fields(spec, raw)
    check_rules(spec, raw)
    check_size_totals(spec, raw)
    return spec


def _check_version(raw: RawSpec) -> None:
    known = ", ".join(str(v) for v in SPEC_VERSIONS)
    if "spec_version" not in raw.data:
        raise raw.error([], "missing required key 'spec_version'",
                        f"add 'spec_version: {SPEC_VERSIONS[-1]}' as the first line")
    version = raw.data["spec_version"]
    if isinstance(version, bool) or version not in SPEC_VERSIONS:
        raise raw.error(["spec_version"], f"unknown spec_version {version!r}; this progan-zoo knows version(s) {known}",
                        "upgrade progan-zoo, or write the spec in a known version", at_value=True)
    for key in added_after(version):  # keys of a newer version (defaults.ADDED)
        path = key.split(".")
        node = raw.data
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node:
            newer = min(n for n, keys in ADDED.items() if key in keys)
            raise raw.error(path, f"'{path[-1]}' needs spec_version {newer} or later; this file is version {version}",
                            f"set spec_version: {newer}; it only added keys, so nothing else in the file changes meaning",
                            at_value=False)
