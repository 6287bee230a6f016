"""The cross-field rules of a spec: every check that involves more than one field (docs/spec.md).

The JSON Schema checks each field alone; these rules check how fields fit together: resolutions
that double from 4 and agree between G, D and the data; the layer lists of each row (the 4x4 rows
special, every other row changing the size once); D's channels chaining from block to block; the
schedule rows; the minibatch stddev group against every minibatch; the conditioning section; loss
parameters that do not apply. ``check_rules`` raises the first violation, located in the file when
the raw spec is given.
"""

from __future__ import annotations

from .defaults import d_layers, g_layers
from .load import RawSpec, error_at
from .ops import OPS
from .schema import Spec


def _res_list(values: list[int]) -> str:
    return ", ".join(str(v) for v in values)


def check_rules(spec: Spec, raw: RawSpec | None = None) -> None:
    """Every rule that involves more than one field. Raises the first violation."""
    arch = spec.architecture
    g_rows, d_rows = arch.generator, arch.discriminator
    G, D = ["architecture", "generator"], ["architecture", "discriminator"]

    # Resolutions: consecutive powers of two starting at 4 (section 2: growing starts at 4x4).
    if g_rows[0].resolution != 4:
        raise error_at(raw, G + [0, "resolution"], f"the generator must start at resolution 4, got {g_rows[0].resolution}",
                       "progressive growing starts at 4x4: make the first row {resolution: 4, ...}")
    for i in range(1, len(g_rows)):
        prev, res = g_rows[i - 1].resolution, g_rows[i].resolution
        if res != 2 * prev:
            raise error_at(raw, G + [i, "resolution"], f"resolution {res} does not follow {prev}; expected {2 * prev}",
                           "rows are consecutive powers of two, one per resolution (4, 8, 16, ...)")
    g_res = [r.resolution for r in g_rows]
    top = g_res[-1]
    if arch.resolution != top:
        raise error_at(raw, ["architecture", "resolution"],
                       f"resolution {arch.resolution} differs from the last generator row's {top}",
                       "the last row's resolution is the size of the generated images")
    d_res = [r.resolution for r in d_rows]
    if d_res != g_res[::-1]:
        if sorted(d_res) != g_res:
            stray = [i for i, r in enumerate(d_res) if r not in g_res or d_res.count(r) > 1]
            raise error_at(raw, D + [stray[0], "resolution"] if stray else D,
                           f"the discriminator covers [{_res_list(d_res)}] but the generator [{_res_list(g_res)}]",
                           f"give the discriminator one row per generator resolution, from {top} down to 4",
                           at_value=bool(stray))
        i = next(i for i, (a, b) in enumerate(zip(d_res, g_res[::-1])) if a != b)
        raise error_at(raw, D + [i, "resolution"], f"expected resolution {g_res[::-1][i]} here, got {d_res[i]}",
                       f"discriminator rows run from the final resolution down to 4 ({_res_list(g_res[::-1])}), as in Table 2")
    if spec.data.resolution != top:
        raise error_at(raw, ["data", "resolution"],
                       f"data resolution {spec.data.resolution} differs from the networks' final resolution {top}",
                       "train at the resolution of the data: change architecture.resolution and the rows, or the data")
    if spec.data.channels != arch.image_channels:
        raise error_at(raw, ["data", "channels"],
                       f"data has {spec.data.channels} channel(s), the networks {arch.image_channels}",
                       "make architecture.image_channels equal data.channels")

    # Layer lists: the 4x4 rows are special (latent in, score out); every other row changes the size once,
    # with a separate upsample/downsample or a fused op (upconv3x3, conv3x3_down: official fused_scale).
    for i, row in enumerate(g_rows):
        layers, path = g_layers(spec, i), G + [i, "layers"]
        res = row.resolution
        ups = sum(_scales(op, 2) for op in layers)
        if i == 0 and (not _is_dense(layers[0]) or sum(map(_is_dense, layers)) != 1 or ups):
            raise error_at(raw, path, "the 4x4 generator row must start with dense4x4 (latent to a 4x4 map) and use it once, "
                           "without upsample", "use layers: [dense4x4, conv3x3]")
        if i > 0 and any(map(_is_dense, layers)):
            raise error_at(raw, path, "dense4x4 is only allowed in the 4x4 generator row", "use conv3x3")
        if i > 0 and ups != 1:
            raise error_at(raw, path, f"the {res}x{res} generator row needs exactly one upsample (or fused upconv3x3), "
                           f"got {ups}", "use layers: [upsample, conv3x3, conv3x3] or [upconv3x3, conv3x3]")
        if not any(OPS.get(op).takes_channels for op in layers):
            raise error_at(raw, path, "a generator row needs at least one conv or dense layer (its channels apply to them)",
                           "add conv3x3")
    mbstd_on = arch.options.mbstd_group_size > 1
    for i, row in enumerate(d_rows):
        layers, path = d_layers(spec, i), D + [i, "layers"]
        res, last = row.resolution, i == len(d_rows) - 1
        downs = sum(_scales(op, 0.5) for op in layers)
        n_mbstd = sum(map(_is_mbstd, layers))
        if not last and downs != 1:
            raise error_at(raw, path, f"the {res}x{res} discriminator row needs exactly one downsample (or fused "
                           f"conv3x3_down), got {downs}",
                           "use layers: [conv3x3, conv3x3, downsample] or [conv3x3, conv3x3_down]")
        if not last and (any(map(_is_dense, layers)) or n_mbstd):
            raise error_at(raw, path, "dense4x4 and mbstd are only allowed in the 4x4 discriminator row",
                           "use conv3x3 and downsample here")
        # Ops on D's flat [N, C] vector (mbdisc) may only follow the 4x4 row's dense4x4.
        n_flat = sum(OPS.get(op).flat for op in layers)
        if not last and n_flat:
            raise error_at(raw, path, f"{next(op for op in layers if OPS.get(op).flat)} works on D's final vector: it is "
                           "only allowed after dense4x4 in the 4x4 discriminator row", "remove it from this row")
        body = layers[:len(layers) - n_flat] if last else layers
        if last and (downs or body[-1] != "dense4x4" or layers.count("dense4x4") != 1 or n_mbstd > 1
                     or any(OPS.get(op).flat for op in body)):
            raise error_at(raw, path, "the 4x4 discriminator row must end with its only dense4x4 (followed only by mbdisc), "
                           "have at most one mbstd and not downsample", "use layers: [mbstd, conv3x3, dense4x4]")
        n_mbdisc = layers.count("mbdisc")
        if last and (arch.options.mbdisc_kernels > 0) != bool(n_mbdisc) or n_mbdisc > 1:
            if n_mbdisc:
                raise error_at(raw, path, f"the 4x4 row has an mbdisc layer but mbdisc_kernels is {arch.options.mbdisc_kernels}"
                               if n_mbdisc == 1 else "the 4x4 row has more than one mbdisc layer",
                               "remove mbdisc, or set architecture.options.mbdisc_kernels (the paper's row e*: 100)")
            raise error_at(raw, path, f"mbdisc_kernels is {arch.options.mbdisc_kernels} but the 4x4 row has no mbdisc layer",
                           "add mbdisc after dense4x4, or set architecture.options.mbdisc_kernels: 0")
        if last and mbstd_on and not n_mbstd:
            raise error_at(raw, path, f"mbstd_group_size is {arch.options.mbstd_group_size} but the 4x4 row has no mbstd layer",
                           "add mbstd first, or set architecture.options.mbstd_group_size: 0")
        if last and not mbstd_on and n_mbstd:
            raise error_at(raw, path, f"the 4x4 row has an mbstd layer but mbstd_group_size {arch.options.mbstd_group_size} "
                           "disables it", "remove mbstd, or set architecture.options.mbstd_group_size: 4")
        if not any(OPS.get(op).takes_channels for op in layers):
            raise error_at(raw, path, "a discriminator row needs at least one conv or dense layer", "add conv3x3")

    # Channels chain from one discriminator block to the next (out of 2^r == in of 2^(r-1)).
    for i in range(len(d_rows) - 1):
        out_c, next_in = d_rows[i].channels[1], d_rows[i + 1].channels[0]
        if out_c != next_in:
            res = d_rows[i].resolution
            raise error_at(raw, D + [i + 1, "channels", 0],
                           f"input channels {next_in} do not match the {res}x{res} block's output {out_c}",
                           f"set channels: [{out_c}, ...] here, or change the {res}x{res} row's output")
    n_feat = arch.options.mbstd_num_features
    if mbstd_on and d_rows[-1].channels[0] % n_feat:
        raise error_at(raw, ["architecture", "options", "mbstd_num_features"],
                       f"{n_feat} minibatch-stddev features do not divide the 4x4 block's {d_rows[-1].channels[0]} channels",
                       "each feature averages an equal share of the channels: use a divisor, e.g. 1")

    # Without progressive growing there are no phases: every image trains the final resolution.
    if not spec.training.progressive:
        for key in ("stabilize_kimg", "fade_kimg"):
            if getattr(spec.training.defaults, key) != 0:
                raise error_at(raw, ["training", "defaults", key],
                               f"{key} is {getattr(spec.training.defaults, key):g} but training.progressive is false: "
                               "there are no phases, the final resolution trains from the first image",
                               f"set {key}: 0, or training.progressive: true")
        for i, row in enumerate(spec.training.schedule):
            for key in ("stabilize_kimg", "fade_kimg"):
                if getattr(row, key) is not None:
                    raise error_at(raw, ["training", "schedule", i, key],
                                   f"{key} does not apply: training.progressive is false",
                                   f"remove {key} from this row, or set training.progressive: true", at_value=False)

    # Schedule rows.
    seen: set[int] = set()
    for i, row in enumerate(spec.training.schedule):
        if row.resolution not in g_res:
            raise error_at(raw, ["training", "schedule", i, "resolution"],
                           f"resolution {row.resolution} is not one of the network's resolutions [{_res_list(g_res)}]",
                           "remove the row or fix its resolution")
        if row.resolution in seen:
            raise error_at(raw, ["training", "schedule", i, "resolution"],
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
                raise error_at(raw, where, f"minibatch {mb} (used at {at}) is not divisible by mbstd_group_size {g}",
                               f"use a multiple of {g}, or change architecture.options.mbstd_group_size")

    check_conditioning(spec, raw)

    # Loss parameters that do not apply to the chosen loss.
    loss = spec.training.loss
    if loss.name != "wgan_gp":
        # Keys the file gives (defaults are written into every resolved spec, so ask the file).
        given = set(((raw.data.get("training") or {}).get("loss") or {}) if raw else loss.model_fields_set)
        stray = sorted(given & {"gp_lambda", "gp_target", "drift", "gp_at"})
        if stray:
            raise error_at(raw, ["training", "loss", stray[0]], f"'{stray[0]}' only applies to wgan_gp, not {loss.name}",
                           f"remove '{stray[0]}', or use name: wgan_gp", at_value=False)


def check_conditioning(spec: Spec, raw: RawSpec | None = None) -> None:
    """The conditioning section: one unique class name per label."""
    cond = spec.conditioning
    if cond is None or cond.class_names is None:
        return
    path = ["conditioning", "class_names"]
    if len(cond.class_names) != cond.label_size:
        raise error_at(raw, path, f"{len(cond.class_names)} class name(s) for label_size {cond.label_size}",
                       f"give exactly {cond.label_size} names, one per class in label order, or drop class_names")
    seen: dict[str, int] = {}
    for i, name in enumerate(cond.class_names):
        if name in seen:
            raise error_at(raw, path + [i], f"class name {name!r} is used twice (classes {seen[name]} and {i})",
                           "give every class its own name")
        if name.isdigit() and int(name) != i:
            raise error_at(raw, path + [i], f"class name {name!r} is a number other than its index {i}",
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
