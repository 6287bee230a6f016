"""Stage 2: check a raw spec against the JSON Schema, build the pydantic model, apply cross-field rules.

Order matters for the messages: the version is checked first (so a future spec is refused with
the versions we know), then the JSON Schema on the raw YAML (so every error has a position), then
the version's defaults are written in (defaults.py), then pydantic (the source of truth), then the
cross-field rules, all of which live here. The Spec returned is the resolved one: no value in it
comes from a pydantic default.
Every problem is raised as one ``SpecError``: ``file:line:col: key.path: what (hint: fix)``.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Any

import jsonschema
from pydantic import ValidationError

from .defaults import ADDED, added_after, defaults_table, resolve_data, row_layers
from .errors import SpecError
from .load import RawSpec, format_path
from .ops import OPS, LayerCtx, plugin_hint
from .schema import SPEC_VERSIONS, Spec, json_schema

_NETWORK = {"generator": "G", "discriminator": "D"}


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json_schema())


def validate(raw: RawSpec) -> Spec:
    """Return the validated Spec or raise the first problem as a SpecError."""
    _check_version(raw)
    _check_schema(raw)
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


# --------------------------------------------------------------------------- JSON Schema errors

def _describe(instance: Any) -> str:
    text = repr(instance)
    return text if len(text) <= 40 else text[:37] + "..."


def _did_you_mean(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else None


def _leaf(err: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For anyOf/oneOf (optional fields are anyOf[T, null]), the sub-error that explains most."""
    while err.validator in ("anyOf", "oneOf") and err.context:
        # The `null` branch of an optional field only says "not null": never the useful error.
        useful = [e for e in err.context if not (e.validator == "type" and e.validator_value == "null")]
        if not useful:
            break
        err = max(useful, key=lambda e: len(e.absolute_path))
    return err


def _about(schema: dict[str, Any]) -> str | None:
    """The first sentence of a field's description, as a hint."""
    text = schema.get("description")
    if not text:
        return None
    first = text.split(". ")[0].rstrip(".")
    return first[0].lower() + first[1:] if first[:2] != first[:2].upper() else first


_TYPE_HINT = {"integer": "write a whole number without quotes", "number": "write a number without quotes, e.g. 0.001",
              "boolean": "write true or false", "string": "quote it to make it a string",
              "array": "write a list, e.g. [a, b]", "object": "write a mapping: indented 'key: value' lines"}
_ARTICLE = {"integer": "an integer", "number": "a number", "boolean": "true or false", "string": "a string",
            "array": "a list", "object": "a mapping", "null": "nothing"}


def _schema_message(err: jsonschema.ValidationError) -> tuple[list, str, str | None, bool]:
    """(key path, message, hint, whether the position is the value's) for one schema error."""
    err = _leaf(err)
    path = list(err.absolute_path)
    v = err.validator
    about = _about(err.schema)
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        key = sorted(set(err.instance) - set(allowed))[0]
        hint = _did_you_mean(key, allowed) or f"allowed keys here: {', '.join(allowed)}"
        return path + [key], f"unknown key '{key}'", hint, False
    if v == "required":
        missing = [k for k in err.validator_value if k not in err.instance][0]
        where = f"under '{path[-1]}'" if path and isinstance(path[-1], str) else "here"
        desc = _about(err.schema.get("properties", {}).get(missing, {}))
        return path, f"missing required key '{missing}'", f"add '{missing}: ...' {where}" + (f": {desc}" if desc else ""), False
    if v == "enum":
        choices = [str(c) for c in err.validator_value]
        hint = _did_you_mean(str(err.instance), choices) or f"use one of: {', '.join(choices)}"
        if len(path) >= 4 and path[-2] == "layers" and path[-4] in _NETWORK:
            network = path[-4]
            known = ", ".join(OPS.names(_NETWORK[network]))
            if err.instance in OPS and not _did_you_mean(str(err.instance), choices):
                other = "discriminator" if network == "generator" else "generator"
                hint = f"'{err.instance}' is a {other} op"
            elif not _did_you_mean(str(err.instance), choices):
                hint = plugin_hint(str(err.instance))
            return path, f"unknown layer op {_describe(err.instance)} for the {network}; known: {known}", hint, True
        return path, f"expected one of {', '.join(choices)}, got {_describe(err.instance)}", hint, True
    if v == "const":
        return path, f"expected {err.validator_value!r}, got {_describe(err.instance)}", about, True
    if v == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        hint = _TYPE_HINT.get(want[0])
        return (path, f"expected {' or '.join(_ARTICLE.get(w, w) for w in want)}, got {_describe(err.instance)}",
                hint + (f" ({about})" if about else "") if hint else about, True)
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        kind = "an integer" if err.schema.get("type") == "integer" else "a number"
        return path, f"expected {kind} {op} {err.validator_value}, got {_describe(err.instance)}", about, True
    if v in ("minItems", "maxItems"):
        bound = "at least" if v == "minItems" else "at most"
        hint = "write channels: [in, out]" if path and path[-1] == "channels" else about
        return path, f"expected {bound} {err.validator_value} item(s), got {len(err.instance)}", hint, True
    if v == "minLength":
        return path, "must not be empty", about, True
    if v == "pattern":
        return (path, f"{_describe(err.instance)} does not match {err.validator_value}",
                "use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", True)
    return path, err.message, about, True


def _check_schema(raw: RawSpec) -> None:
    errors = list(_validator().iter_errors(raw.data))
    if not errors:
        return
    # Report unknown keys first (a misspelt key also shows up as a missing one), then the problem
    # that comes first in the file.
    candidates = []
    for err in errors:
        path, message, hint, at_value = _schema_message(err)
        line, col = raw.position(path, value=at_value)
        rank = 0 if message.startswith("unknown key") else 1
        candidates.append(((rank, line or 0, col or 0), path, message, hint, at_value))
    _, path, message, hint, at_value = min(candidates, key=lambda c: c[0])
    raise raw.error(path, message, hint, at_value=at_value)


# --------------------------------------------------------------------------- cross-field rules

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


def _err(raw: RawSpec | None, path: list, message: str, hint: str | None = None, at_value: bool = True) -> SpecError:
    if raw is None:
        return SpecError(message, key_path=format_path(path), hint=hint)
    return raw.error(path, message, hint, at_value=at_value)


def _res_list(values: list[int]) -> str:
    return ", ".join(str(v) for v in values)


def check_rules(spec: Spec, raw: RawSpec | None = None) -> None:
    """Every rule that involves more than one field. Raises the first violation."""
    arch = spec.architecture
    g_rows, d_rows = arch.generator, arch.discriminator
    G, D = ["architecture", "generator"], ["architecture", "discriminator"]

    # Resolutions: consecutive powers of two starting at 4 (section 2: growing starts at 4x4).
    if g_rows[0].resolution != 4:
        raise _err(raw, G + [0, "resolution"], f"the generator must start at resolution 4, got {g_rows[0].resolution}",
                   "progressive growing starts at 4x4: make the first row {resolution: 4, ...}")
    for i in range(1, len(g_rows)):
        prev, res = g_rows[i - 1].resolution, g_rows[i].resolution
        if res != 2 * prev:
            raise _err(raw, G + [i, "resolution"], f"resolution {res} does not follow {prev}; expected {2 * prev}",
                       "rows are consecutive powers of two, one per resolution (4, 8, 16, ...)")
    g_res = [r.resolution for r in g_rows]
    top = g_res[-1]
    if arch.resolution != top:
        raise _err(raw, ["architecture", "resolution"],
                   f"resolution {arch.resolution} differs from the last generator row's {top}",
                   "the last row's resolution is the size of the generated images")
    d_res = [r.resolution for r in d_rows]
    if d_res != g_res[::-1]:
        if sorted(d_res) != g_res:
            stray = [i for i, r in enumerate(d_res) if r not in g_res or d_res.count(r) > 1]
            raise _err(raw, D + [stray[0], "resolution"] if stray else D,
                       f"the discriminator covers [{_res_list(d_res)}] but the generator [{_res_list(g_res)}]",
                       f"give the discriminator one row per generator resolution, from {top} down to 4",
                       at_value=bool(stray))
        i = next(i for i, (a, b) in enumerate(zip(d_res, g_res[::-1])) if a != b)
        raise _err(raw, D + [i, "resolution"], f"expected resolution {g_res[::-1][i]} here, got {d_res[i]}",
                   f"discriminator rows run from the final resolution down to 4 ({_res_list(g_res[::-1])}), as in Table 2")
    if spec.data.resolution != top:
        raise _err(raw, ["data", "resolution"],
                   f"data resolution {spec.data.resolution} differs from the networks' final resolution {top}",
                   "train at the resolution of the data: change architecture.resolution and the rows, or the data")
    if spec.data.channels != arch.image_channels:
        raise _err(raw, ["data", "channels"],
                   f"data has {spec.data.channels} channel(s), the networks {arch.image_channels}",
                   "make architecture.image_channels equal data.channels")

    # Layer lists: the 4x4 rows are special (latent in, score out); every other row changes the size once,
    # with a separate upsample/downsample or a fused op (upconv3x3, conv3x3_down: official fused_scale).
    for i, row in enumerate(g_rows):
        layers, path = g_layers(spec, i), G + [i, "layers"]
        res = row.resolution
        ups = sum(_scales(op, 2) for op in layers)
        if i == 0 and (not _is_dense(layers[0]) or sum(map(_is_dense, layers)) != 1 or ups):
            raise _err(raw, path, "the 4x4 generator row must start with dense4x4 (latent to a 4x4 map) and use it once, "
                       "without upsample", "use layers: [dense4x4, conv3x3]")
        if i > 0 and any(map(_is_dense, layers)):
            raise _err(raw, path, "dense4x4 is only allowed in the 4x4 generator row", "use conv3x3")
        if i > 0 and ups != 1:
            raise _err(raw, path, f"the {res}x{res} generator row needs exactly one upsample (or fused upconv3x3), "
                       f"got {ups}", "use layers: [upsample, conv3x3, conv3x3] or [upconv3x3, conv3x3]")
        if not any(OPS.get(op).takes_channels for op in layers):
            raise _err(raw, path, "a generator row needs at least one conv or dense layer (its channels apply to them)",
                       "add conv3x3")
    mbstd_on = arch.options.mbstd_group_size > 1
    for i, row in enumerate(d_rows):
        layers, path = d_layers(spec, i), D + [i, "layers"]
        res, last = row.resolution, i == len(d_rows) - 1
        downs = sum(_scales(op, 0.5) for op in layers)
        n_mbstd = sum(map(_is_mbstd, layers))
        if not last and downs != 1:
            raise _err(raw, path, f"the {res}x{res} discriminator row needs exactly one downsample (or fused "
                       f"conv3x3_down), got {downs}",
                       "use layers: [conv3x3, conv3x3, downsample] or [conv3x3, conv3x3_down]")
        if not last and (any(map(_is_dense, layers)) or n_mbstd):
            raise _err(raw, path, "dense4x4 and mbstd are only allowed in the 4x4 discriminator row",
                       "use conv3x3 and downsample here")
        # Ops on D's flat [N, C] vector (mbdisc) may only follow the 4x4 row's dense4x4.
        n_flat = sum(OPS.get(op).flat for op in layers)
        if not last and n_flat:
            raise _err(raw, path, f"{next(op for op in layers if OPS.get(op).flat)} works on D's final vector: it is "
                       "only allowed after dense4x4 in the 4x4 discriminator row", "remove it from this row")
        body = layers[:len(layers) - n_flat] if last else layers
        if last and (downs or body[-1] != "dense4x4" or layers.count("dense4x4") != 1 or n_mbstd > 1
                     or any(OPS.get(op).flat for op in body)):
            raise _err(raw, path, "the 4x4 discriminator row must end with its only dense4x4 (followed only by mbdisc), "
                       "have at most one mbstd and not downsample", "use layers: [mbstd, conv3x3, dense4x4]")
        n_mbdisc = layers.count("mbdisc")
        if last and (arch.options.mbdisc_kernels > 0) != bool(n_mbdisc) or n_mbdisc > 1:
            if n_mbdisc:
                raise _err(raw, path, f"the 4x4 row has an mbdisc layer but mbdisc_kernels is {arch.options.mbdisc_kernels}"
                           if n_mbdisc == 1 else "the 4x4 row has more than one mbdisc layer",
                           "remove mbdisc, or set architecture.options.mbdisc_kernels (the paper's row e*: 100)")
            raise _err(raw, path, f"mbdisc_kernels is {arch.options.mbdisc_kernels} but the 4x4 row has no mbdisc layer",
                       "add mbdisc after dense4x4, or set architecture.options.mbdisc_kernels: 0")
        if last and mbstd_on and not n_mbstd:
            raise _err(raw, path, f"mbstd_group_size is {arch.options.mbstd_group_size} but the 4x4 row has no mbstd layer",
                       "add mbstd first, or set architecture.options.mbstd_group_size: 0")
        if last and not mbstd_on and n_mbstd:
            raise _err(raw, path, f"the 4x4 row has an mbstd layer but mbstd_group_size {arch.options.mbstd_group_size} "
                       "disables it", "remove mbstd, or set architecture.options.mbstd_group_size: 4")
        if not any(OPS.get(op).takes_channels for op in layers):
            raise _err(raw, path, "a discriminator row needs at least one conv or dense layer", "add conv3x3")

    # Channels chain from one discriminator block to the next (out of 2^r == in of 2^(r-1)).
    for i in range(len(d_rows) - 1):
        out_c, next_in = d_rows[i].channels[1], d_rows[i + 1].channels[0]
        if out_c != next_in:
            res = d_rows[i].resolution
            raise _err(raw, D + [i + 1, "channels", 0],
                       f"input channels {next_in} do not match the {res}x{res} block's output {out_c}",
                       f"set channels: [{out_c}, ...] here, or change the {res}x{res} row's output")
    n_feat = arch.options.mbstd_num_features
    if mbstd_on and d_rows[-1].channels[0] % n_feat:
        raise _err(raw, ["architecture", "options", "mbstd_num_features"],
                   f"{n_feat} minibatch-stddev features do not divide the 4x4 block's {d_rows[-1].channels[0]} channels",
                   "each feature averages an equal share of the channels: use a divisor, e.g. 1")

    # Without progressive growing there are no phases: every image trains the final resolution.
    if not spec.training.progressive:
        for key in ("stabilize_kimg", "fade_kimg"):
            if getattr(spec.training.defaults, key) != 0:
                raise _err(raw, ["training", "defaults", key],
                           f"{key} is {getattr(spec.training.defaults, key):g} but training.progressive is false: "
                           "there are no phases, the final resolution trains from the first image",
                           f"set {key}: 0, or training.progressive: true")
        for i, row in enumerate(spec.training.schedule):
            for key in ("stabilize_kimg", "fade_kimg"):
                if getattr(row, key) is not None:
                    raise _err(raw, ["training", "schedule", i, key],
                               f"{key} does not apply: training.progressive is false",
                               f"remove {key} from this row, or set training.progressive: true", at_value=False)

    # Schedule rows.
    seen: set[int] = set()
    for i, row in enumerate(spec.training.schedule):
        if row.resolution not in g_res:
            raise _err(raw, ["training", "schedule", i, "resolution"],
                       f"resolution {row.resolution} is not one of the network's resolutions [{_res_list(g_res)}]",
                       "remove the row or fix its resolution")
        if row.resolution in seen:
            raise _err(raw, ["training", "schedule", i, "resolution"],
                       f"resolution {row.resolution} has two schedule rows", "merge them into one row")
        seen.add(row.resolution)

    # Minibatch stddev: the group must divide every per-resolution minibatch. A minibatch smaller
    # than the group is one group, as the official min(group_size, minibatch) does.
    g = arch.options.mbstd_group_size
    if mbstd_on:
        for res in g_res:
            mb, where = minibatch_at(spec, res)
            if mb > g and mb % g != 0:
                used = [f"{r}x{r}" for r in g_res if minibatch_at(spec, r)[1] == where]
                at = used[0] if len(used) == 1 else ", ".join(used[:-1]) + " and " + used[-1]
                raise _err(raw, where, f"minibatch {mb} (used at {at}) is not divisible by mbstd_group_size {g}",
                           f"use a multiple of {g}, or change architecture.options.mbstd_group_size")

    check_conditioning(spec, raw)

    # Loss parameters that do not apply to the chosen loss.
    loss = spec.training.loss
    if loss.name != "wgan_gp":
        # Keys the file gives (defaults are written into every resolved spec, so ask the file).
        given = set(((raw.data.get("training") or {}).get("loss") or {}) if raw else loss.model_fields_set)
        stray = sorted(given & {"gp_lambda", "gp_target", "drift", "gp_at"})
        if stray:
            raise _err(raw, ["training", "loss", stray[0]], f"'{stray[0]}' only applies to wgan_gp, not {loss.name}",
                       f"remove '{stray[0]}', or use name: wgan_gp", at_value=False)


def label_size(spec: Spec) -> int:
    """Classes the networks are conditioned on (0: unconditional)."""
    return spec.conditioning.label_size if spec.conditioning is not None else 0


def check_conditioning(spec: Spec, raw: RawSpec | None = None) -> None:
    """The conditioning section: one unique class name per label."""
    cond = spec.conditioning
    if cond is None or cond.class_names is None:
        return
    path = ["conditioning", "class_names"]
    if len(cond.class_names) != cond.label_size:
        raise _err(raw, path, f"{len(cond.class_names)} class name(s) for label_size {cond.label_size}",
                   f"give exactly {cond.label_size} names, one per class in label order, or drop class_names")
    seen: dict[str, int] = {}
    for i, name in enumerate(cond.class_names):
        if name in seen:
            raise _err(raw, path + [i], f"class name {name!r} is used twice (classes {seen[name]} and {i})",
                       "give every class its own name")
        if name.isdigit() and int(name) != i:
            raise _err(raw, path + [i], f"class name {name!r} is a number other than its index {i}",
                       "`--class N` reads a number as an index: name the class differently, or put it at index N")
        seen[name] = i


def _scales(op: str, factor: float) -> bool:
    """Whether a layer op changes the spatial size by ``factor`` (2: upsampling, 0.5: downsampling)."""
    return OPS.get(op).out_size(16) == int(16 * factor)


def _is_dense(op: str) -> bool:
    return op.startswith("dense4x4")


def _is_mbstd(op: str) -> bool:
    return op.startswith("mbstd")


def minibatch_at(spec: Spec, resolution: int) -> tuple[int, list]:
    """Minibatch at a resolution and the key path it comes from."""
    for i, row in enumerate(spec.training.schedule):
        if row.resolution == resolution and row.minibatch is not None:
            return row.minibatch, ["training", "schedule", i, "minibatch"]
    return spec.training.defaults.minibatch, ["training", "defaults", "minibatch"]


# --------------------------------------------------------------------------- sizes no machine could build
# Bounds on every size in a spec, so an absurd value is refused here, with its position, instead of
# reaching the allocator. They sit far above anything the paper or the shipped specs use (Table 2:
# latent 512, 16-512 maps, 1024x1024, minibatch 4-512, 12000 kimg) and are stated in docs/spec.md
# ("Size limits"). Per layer and in total they are parameter and activation counts that no single
# machine holds in fp32 while training (weights, gradients and Adam need about 9 bytes x 4 per weight).

MAX_WIDTH = 2 ** 16              # latent_size and every channel count.
MAX_IMAGE_CHANNELS = 2 ** 10
MAX_RESOLUTION = 2 ** 14         # 16384x16384.
MAX_MINIBATCH = 2 ** 16
MAX_KIMG = 10 ** 6               # A billion images (the paper: 12000 kimg).
MAX_NUM_IMAGES = 10 ** 7         # Generated images per metric (the paper: 50000 for FID).
MAX_D_REPEATS = 1000            # d_repeats and minibatch_repeats.
MAX_LAYER_PARAMS = 2 ** 31       # 8.6 GB of fp32 weights in one layer.
MAX_TOTAL_PARAMS = 2 ** 34       # G and D together: 69 GB of fp32 weights, ~600 GB to train.
MAX_LAYER_ACTIVATIONS = 2 ** 31  # Elements of one layer's output for one image (8.6 GB fp32).


def _bytes_text(n: float) -> str:
    """Decimal bytes as an author reads a machine's size: 200 TB, 8.6 GB."""
    for factor, unit in ((1e18, "EB"), (1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n:.0f} B"


def _count_text(n: float) -> str:
    return f"{n:,.0f}" if n < 1e6 else f"{n:.2g}"


def _over(value: float, limit: float) -> bool:
    return not value <= limit  # also true for NaN


def check_size_fields(spec: Spec, raw: RawSpec | None = None) -> None:
    """Every size field against its bound; the message says what the value would cost."""
    arch, tr = spec.architecture, spec.training
    G, D = ["architecture", "generator"], ["architecture", "discriminator"]
    first_g = arch.generator[0].channels
    if _over(arch.latent_size, MAX_WIDTH):
        n = arch.latent_size * 16 * first_g + first_g
        raise _err(raw, ["architecture", "latent_size"],
                   f"latent_size {arch.latent_size} is beyond any machine: the 4x4 dense layer would hold "
                   f"{_count_text(n)} parameters, {_bytes_text(4 * n)} in fp32; the limit is {MAX_WIDTH}",
                   "the paper uses 512")
    for path, value in ((["architecture", "image_channels"], arch.image_channels), (["data", "channels"], spec.data.channels)):
        if _over(value, MAX_IMAGE_CHANNELS):
            raise _err(raw, path, f"{value} image channels exceed the limit {MAX_IMAGE_CHANNELS}", "3 for RGB, 1 for greyscale")
    widths = [(G + [i, "channels"], row.channels, row.resolution) for i, row in enumerate(arch.generator)]
    widths += [(D + [i, "channels", j], c, row.resolution) for i, row in enumerate(arch.discriminator)
               for j, c in enumerate(row.channels)]
    for path, c, res in widths:
        if _over(c, MAX_WIDTH):
            n = 9 * c * c + c
            raise _err(raw, path, f"{c} channels are beyond any machine: one {res}x{res} conv3x3 would hold "
                       f"{_count_text(n)} parameters, {_bytes_text(4 * n)} in fp32; the limit is {MAX_WIDTH}",
                       "Table 2 uses 16 to 512 feature maps")
    resolutions = [(["architecture", "resolution"], arch.resolution), (["data", "resolution"], spec.data.resolution)]
    resolutions += [(G + [i, "resolution"], r.resolution) for i, r in enumerate(arch.generator)]
    resolutions += [(D + [i, "resolution"], r.resolution) for i, r in enumerate(arch.discriminator)]
    resolutions += [(["training", "schedule", i, "resolution"], r.resolution) for i, r in enumerate(tr.schedule)]
    for path, r in resolutions:
        if _over(r, MAX_RESOLUTION):
            raise _err(raw, path, f"resolution {r} exceeds the limit {MAX_RESOLUTION}: one {arch.image_channels}-channel "
                       f"fp32 image alone would be {_bytes_text(4.0 * r * r * arch.image_channels)}",
                       "the paper's largest is 1024")
    batches = [(["training", "defaults", "minibatch"], tr.defaults.minibatch)]
    batches += [(["training", "schedule", i, "minibatch"], r.minibatch) for i, r in enumerate(tr.schedule)
                if r.minibatch is not None]
    for path, mb in batches:
        if _over(mb, MAX_MINIBATCH):
            raise _err(raw, path, f"minibatch {mb} exceeds the limit {MAX_MINIBATCH}", "the paper uses 4 to 512")
    opts = arch.options
    for key in ("mbdisc_kernels", "mbdisc_kernel_dim"):
        if _over(getattr(opts, key), MAX_WIDTH):
            raise _err(raw, ["architecture", "options", key], f"{key} {getattr(opts, key)} exceeds the limit {MAX_WIDTH}",
                       "the paper's row e* uses 100 kernels of 5 dimensions")
    for key in ("mbstd_group_size", "mbstd_num_features"):
        if _over(getattr(opts, key), MAX_WIDTH):
            raise _err(raw, ["architecture", "options", key], f"{key} {getattr(opts, key)} exceeds the limit {MAX_WIDTH}",
                       "the official code uses a group of 4 and 1 feature")
    kimgs = [(["training", "total_kimg"], tr.total_kimg)]
    rampup = getattr(tr, "lr_rampup", None)
    if rampup is not None:
        kimgs.append((["training", "lr_rampup", "kimg"], rampup.kimg))
    kimgs += [(["training", "defaults", k], getattr(tr.defaults, k)) for k in ("stabilize_kimg", "fade_kimg")]
    kimgs += [(["training", "schedule", i, k], getattr(r, k)) for i, r in enumerate(tr.schedule)
              for k in ("stabilize_kimg", "fade_kimg") if getattr(r, k) is not None]
    for path, kimg in kimgs:
        if _over(kimg, MAX_KIMG):
            raise _err(raw, path, f"{path[-1]} {kimg:g} exceeds the limit {MAX_KIMG:g} (a billion images)",
                       "the paper trains for 12000 kimg in all")
    for key, usual in (("d_repeats", 1), ("minibatch_repeats", 4)):
        value = getattr(tr, key, None)
        if value is not None and _over(value, MAX_D_REPEATS):
            raise _err(raw, ["training", key], f"{key} {value} exceeds the limit {MAX_D_REPEATS}",
                       f"the official code uses {usual}")
    counts = spec.evaluation.num_images
    per_metric = [([], counts)] if isinstance(counts, int) else [([m], n) for m, n in counts.items()]
    for sub, n in per_metric:
        if _over(n, MAX_NUM_IMAGES):
            raise _err(raw, ["evaluation", "num_images", *sub], f"num_images {n} exceeds the limit {MAX_NUM_IMAGES:,}",
                       "the paper uses 16384 for SWD and 50000 for FID")


def _layer_sizes(spec: Spec) -> list[tuple[list, str, int, int]]:
    """(key path of the row's channels, layer description, parameters, output elements per image) of
    every weighted layer, walked as the graph stage walks the rows (channels chain through the ops)."""
    arch = spec.architecture
    img_c = arch.image_channels
    out = []
    channels, size = arch.latent_size + label_size(spec), 1
    for i, row in enumerate(arch.generator):
        path = ["architecture", "generator", i, "channels"]
        for op_name in g_layers(spec, i):
            op = OPS.get(op_name)
            ctx = LayerCtx("G", row.resolution, channels, row.channels if op.takes_channels else channels)
            size, channels = op.out_size(size), op.out_channels(ctx)
            if op.takes_channels:
                out.append((path, f"{row.resolution}x{row.resolution} generator {op_name}", op.params(ctx),
                            channels * size * size))
        out.append((path, f"{row.resolution}x{row.resolution} toRGB", channels * img_c + img_c, img_c * size * size))
    rows = arch.discriminator
    for i, row in enumerate(rows):
        path = ["architecture", "discriminator", i, "channels"]
        cin, cout = row.channels
        res = size = row.resolution
        out.append((path + [0], f"{res}x{res} fromRGB", img_c * cin + cin, cin * res * res))
        layers = d_layers(spec, i)
        weighted = [j for j, op in enumerate(layers) if OPS.get(op).takes_channels]
        channels = cin
        for j, op_name in enumerate(layers):
            op = OPS.get(op_name)
            want = cout if j == weighted[-1] else cin
            ctx = LayerCtx("D", res, channels, want if op.takes_channels else channels,
                           mbstd_num_features=arch.options.mbstd_num_features,
                           mbdisc_kernels=arch.options.mbdisc_kernels, mbdisc_kernel_dim=arch.options.mbdisc_kernel_dim)
            size, channels = op.out_size(size), op.out_channels(ctx)
            if op.takes_channels:
                out.append((path + [1 if j == weighted[-1] else 0], f"{res}x{res} discriminator {op_name}",
                            op.params(ctx), channels * size * size))
    out.append((["architecture", "discriminator", len(rows) - 1, "channels", 1], "discriminator output",
                (channels + 1) * (1 + label_size(spec)), 1 + label_size(spec)))
    return out


def check_size_totals(spec: Spec, raw: RawSpec | None = None) -> None:
    """Parameters per layer and in all, and one image's largest activation, against their bounds."""
    total = 0
    for path, what, params, elems in _layer_sizes(spec):
        if params > MAX_LAYER_PARAMS:
            raise _err(raw, path, f"the {what} layer would hold {_count_text(params)} parameters, "
                       f"{_bytes_text(4 * params)} in fp32; the limit is 2^31 per layer", "use fewer channels")
        if elems > MAX_LAYER_ACTIVATIONS:
            raise _err(raw, path, f"the {what} layer's output for one image would hold {_count_text(elems)} values, "
                       f"{_bytes_text(4 * elems)} in fp32; the limit is 2^31 per layer", "use fewer channels at this resolution")
        total += params
    if total > MAX_TOTAL_PARAMS:
        widest = max(_layer_sizes(spec), key=lambda x: x[2])
        raise _err(raw, widest[0], f"G and D would hold {_count_text(total)} parameters, {_bytes_text(4 * total)} in fp32 "
                   f"(the largest layer: the {widest[1]}, {_count_text(widest[2])}); the limit is 2^34 in all",
                   "use fewer channels")
