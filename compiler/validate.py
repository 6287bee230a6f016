"""Stage 2: check a raw spec against the JSON Schema, build the pydantic model, apply cross-field rules.

Order matters for the messages: the version is checked first (so a future spec is refused with
the versions we know), then the JSON Schema on the raw YAML (so every error has a position),
then pydantic (the source of truth), then the cross-field rules, all of which live here.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Any

import jsonschema
from pydantic import ValidationError

from .errors import SpecError
from .load import RawSpec
from .schema import (
    DEFAULT_D_BLOCK,
    DEFAULT_D_LAST,
    DEFAULT_G_BLOCK,
    DEFAULT_G_FIRST,
    SPEC_VERSIONS,
    Spec,
    json_schema,
)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json_schema())


def validate(raw: RawSpec) -> Spec:
    """Return the validated Spec or raise the first problem as a SpecError."""
    _check_version(raw)
    _check_schema(raw)
    try:
        spec = Spec.model_validate(raw.data)
    except ValidationError as exc:  # rare: the schema already passed
        err = exc.errors()[0]
        raise raw.error(list(err["loc"]), err["msg"], "see docs/spec.md for this field") from None
    check_rules(spec, raw)
    return spec


def _check_version(raw: RawSpec) -> None:
    known = ", ".join(str(v) for v in SPEC_VERSIONS)
    if "spec_version" not in raw.data:
        raise raw.error([], "missing 'spec_version'", f"add 'spec_version: {SPEC_VERSIONS[-1]}' at the top")
    version = raw.data["spec_version"]
    if isinstance(version, bool) or version not in SPEC_VERSIONS:
        raise raw.error(["spec_version"], f"unknown spec_version {version!r}; this progan-zoo knows version(s) {known}",
                        "upgrade progan-zoo or write the spec in a known version")


def _describe(instance: Any) -> str:
    text = repr(instance)
    return text if len(text) <= 40 else text[:37] + "..."


def _schema_message(err: jsonschema.ValidationError) -> tuple[list, str, str | None]:
    path = list(err.absolute_path)
    v = err.validator
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        key = extra[0]
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
        return path + [key], f"unknown key '{key}'", hint
    if v == "required":
        missing = [k for k in err.validator_value if k not in err.instance][0]
        return path, f"missing required key '{missing}'", f"add '{missing}:' here (see docs/spec.md)"
    if v == "enum":
        choices = ", ".join(str(c) for c in err.validator_value)
        close = difflib.get_close_matches(str(err.instance), [str(c) for c in err.validator_value], n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"use one of: {choices}"
        return path, f"expected one of {choices}, got {_describe(err.instance)}", hint
    if v == "const":
        return path, f"expected {err.validator_value!r}, got {_describe(err.instance)}", None
    if v == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return path, f"expected {want}, got {_describe(err.instance)}", None
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        return path, f"expected a number {op} {err.validator_value}, got {_describe(err.instance)}", None
    if v in ("minItems", "maxItems"):
        return path, f"expected {'at least' if v == 'minItems' else 'at most'} {err.validator_value} item(s), got {len(err.instance)}", None
    if v == "minLength":
        return path, "must not be empty", None
    if v == "pattern":
        return path, f"{_describe(err.instance)} does not match {err.validator_value}", "use lower case letters, digits, '.', '_' and '-'"
    if v in ("anyOf", "oneOf"):
        # Optional fields are anyOf[T, null]: report the most specific sub-error.
        best = jsonschema.exceptions.best_match(err.context) if err.context else None
        if best is not None and list(best.absolute_path) != []:
            return _schema_message(best)
        return path, f"invalid value {_describe(err.instance)}", None
    return path, err.message, None


def _check_schema(raw: RawSpec) -> None:
    errors = sorted(_validator().iter_errors(raw.data), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if not errors:
        return
    # Prefer unknown keys, then the error best_match picks: the most specific one.
    unknown = [e for e in errors if e.validator == "additionalProperties"]
    err = unknown[0] if unknown else jsonschema.exceptions.best_match(errors)
    path, message, hint = _schema_message(err)
    raise raw.error(path, message, hint)


# --------------------------------------------------------------------------- cross-field rules

def g_layers(spec: Spec, index: int) -> list[str]:
    """Layers of generator row ``index`` with the defaults applied."""
    row = spec.architecture.generator[index]
    return list(row.layers) if row.layers else list(DEFAULT_G_FIRST if index == 0 else DEFAULT_G_BLOCK)


def d_layers(spec: Spec, index: int) -> list[str]:
    """Layers of discriminator row ``index`` (rows run from the top resolution down to 4)."""
    rows = spec.architecture.discriminator
    row = rows[index]
    return list(row.layers) if row.layers else list(DEFAULT_D_LAST if index == len(rows) - 1 else DEFAULT_D_BLOCK)


def _err(raw: RawSpec | None, path: list, message: str, hint: str | None = None) -> SpecError:
    if raw is None:
        from .load import format_path
        return SpecError(message, key_path=format_path(path), hint=hint)
    return raw.error(path, message, hint)


def check_rules(spec: Spec, raw: RawSpec | None = None) -> None:
    """Every rule that involves more than one field. Raises the first violation."""
    arch = spec.architecture
    g_rows, d_rows = arch.generator, arch.discriminator

    # Resolutions: consecutive powers of two starting at 4 (G up, D down, as in Table 2).
    for i, row in enumerate(g_rows):
        want = 4 * 2 ** i
        if row.resolution != want:
            raise _err(raw, ["architecture", "generator", i, "resolution"],
                       f"expected resolution {want}, got {row.resolution}",
                       "generator rows are consecutive powers of two from 4 up (4, 8, 16, ...)")
    g_res = [r.resolution for r in g_rows]
    for i, row in enumerate(d_rows):
        want = g_res[-1] // 2 ** i if i < len(g_res) else None
        if row.resolution != want:
            raise _err(raw, ["architecture", "discriminator", i, "resolution"],
                       f"expected resolution {want}, got {row.resolution}",
                       f"discriminator rows mirror the generator, from {g_res[-1]} down to 4")
    if len(d_rows) != len(g_rows):
        raise _err(raw, ["architecture", "discriminator"],
                   f"the discriminator covers {len(d_rows)} resolution(s), the generator {len(g_rows)}",
                   f"give the discriminator one row for each of {sorted(g_res, reverse=True)}")
    if arch.resolution != g_res[-1]:
        raise _err(raw, ["architecture", "resolution"],
                   f"resolution {arch.resolution} differs from the last generator row ({g_res[-1]})",
                   "the last row's resolution is the network's output size")
    if spec.data.resolution != arch.resolution:
        raise _err(raw, ["data", "resolution"],
                   f"data resolution {spec.data.resolution} differs from the architecture's {arch.resolution}",
                   "train at the resolution of the data, or resize the data")
    if spec.data.channels != arch.image_channels:
        raise _err(raw, ["data", "channels"],
                   f"data has {spec.data.channels} channel(s), the networks {arch.image_channels}",
                   "make architecture.image_channels equal data.channels")

    # Layer lists.
    for i in range(len(g_rows)):
        layers, path = g_layers(spec, i), ["architecture", "generator", i, "layers"]
        if i == 0 and layers[0] != "dense4x4":
            raise _err(raw, path, "the 4x4 generator row must start with dense4x4 (latent to 4x4 map)",
                       "use layers: [dense4x4, conv3x3]")
        if i > 0 and "dense4x4" in layers:
            raise _err(raw, path, "dense4x4 is only allowed in the 4x4 generator row", "use conv3x3")
        if i > 0 and layers.count("upsample") != 1:
            raise _err(raw, path, f"a {g_rows[i].resolution}x{g_rows[i].resolution} generator row needs exactly one upsample",
                       "use layers: [upsample, conv3x3, conv3x3]")
        if i == 0 and "upsample" in layers:
            raise _err(raw, path, "the 4x4 generator row must not upsample", "use layers: [dense4x4, conv3x3]")
    mbstd_on = arch.options.mbstd_group_size > 1
    for i in range(len(d_rows)):
        layers, path = d_layers(spec, i), ["architecture", "discriminator", i, "layers"]
        last = i == len(d_rows) - 1
        n_down = layers.count("downsample")
        if not last and n_down != 1:
            raise _err(raw, path, f"a {d_rows[i].resolution}x{d_rows[i].resolution} discriminator row needs exactly one downsample",
                       "use layers: [conv3x3, conv3x3, downsample]")
        if last and (n_down or layers[-1] != "dense4x4"):
            raise _err(raw, path, "the 4x4 discriminator row must end with dense4x4 and not downsample",
                       "use layers: [mbstd, conv3x3, dense4x4]")
        if not last and ("dense4x4" in layers or "mbstd" in layers):
            raise _err(raw, path, "dense4x4 and mbstd are only allowed in the 4x4 discriminator row",
                       "use conv3x3 and downsample here")
        if last and mbstd_on and "mbstd" not in layers:
            raise _err(raw, path, f"mbstd_group_size is {arch.options.mbstd_group_size} but the 4x4 row has no mbstd layer",
                       "add mbstd first, or set architecture.options.mbstd_group_size: 0")
        if last and not mbstd_on and "mbstd" in layers:
            raise _err(raw, path, "the 4x4 row has an mbstd layer but mbstd_group_size disables it",
                       "remove mbstd, or set architecture.options.mbstd_group_size to 4")
        weighted = [op for op in layers if op.startswith(("conv", "dense"))]
        if not weighted:
            raise _err(raw, path, "a discriminator row needs at least one conv or dense layer", "add conv3x3")

    # Channels chain from one discriminator block to the next (out of 2^r == in of 2^(r-1)).
    for i in range(len(d_rows) - 1):
        out_c, next_in = d_rows[i].channels[1], d_rows[i + 1].channels[0]
        if out_c != next_in:
            raise _err(raw, ["architecture", "discriminator", i + 1, "channels", 0],
                       f"input channels {next_in} do not match the {d_rows[i].resolution}x{d_rows[i].resolution} block's output {out_c}",
                       f"set channels: [{out_c}, ...] or change the previous row's output")

    # Schedule rows.
    seen: set[int] = set()
    for i, row in enumerate(spec.training.schedule):
        if row.resolution not in g_res:
            raise _err(raw, ["training", "schedule", i, "resolution"],
                       f"resolution {row.resolution} is not one of the network's {g_res}", "remove the row or fix its resolution")
        if row.resolution in seen:
            raise _err(raw, ["training", "schedule", i, "resolution"],
                       f"resolution {row.resolution} has two schedule rows", "merge them into one row")
        seen.add(row.resolution)

    # Minibatch stddev: the group must divide every per-resolution minibatch (or be larger than
    # it, in which case the whole minibatch is one group, as the official min() does).
    g = arch.options.mbstd_group_size
    if g > 1:
        for res in g_res:
            mb, where = minibatch_at(spec, res)
            if mb % g != 0 and mb > g:
                raise _err(raw, where, f"minibatch {mb} at {res}x{res} is not divisible by mbstd_group_size {g}",
                           f"use a multiple of {g}, or change architecture.options.mbstd_group_size")

    # Loss parameters that do not apply to the chosen loss.
    loss = spec.training.loss
    if loss.name != "wgan_gp":
        stray = sorted(loss.model_fields_set & {"gp_lambda", "gp_target", "drift"})
        if stray:
            raise _err(raw, ["training", "loss", stray[0]], f"'{stray[0]}' only applies to wgan_gp, not {loss.name}",
                       f"remove '{stray[0]}' or use name: wgan_gp")


def minibatch_at(spec: Spec, resolution: int) -> tuple[int, list]:
    """Minibatch at a resolution and the key path it comes from."""
    for i, row in enumerate(spec.training.schedule):
        if row.resolution == resolution and row.minibatch is not None:
            return row.minibatch, ["training", "schedule", i, "minibatch"]
    return spec.training.defaults.minibatch, ["training", "defaults", "minibatch"]
