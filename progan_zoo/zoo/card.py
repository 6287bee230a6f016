"""Model cards: README.md with the Hub's YAML front matter, rendered from a model's record.

The front matter follows the Hub's model-card conventions (``library_name``, ``license``, ``tags``,
``datasets``, ``pipeline_tag`` and a ``model-index`` whose results carry each metric's value and, in
``args``, the settings it was measured with), so the Hub and our leaderboard read the same numbers.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

from progan_zoo.errors import UserError

from .classes import card_lines as class_card_lines

if TYPE_CHECKING:
    from .records import ModelMetadata

LIBRARY = "progan-zoo"
TASK = "unconditional-image-generation"

# metric key -> (display name, one line on what it is); lower is better for all but msssim, which is
# reported as a variation measure (closer to the real data's value is better).
METRIC_NAMES = {
    "swd_avg": "SWD average (x1e3)",
    "fid": "FID",
    "kid": "KID",
    "kid_std": "KID std",
    "msssim": "MS-SSIM",
}

# Settings that vary between identical evaluations and do not affect comparability.
VOLATILE_SETTINGS = {"time", "date", "seconds", "device", "duration_s", "images_per_s", "host", "batch_size",
                     "weights_path"}

_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", re.S)

CITATION = """@inproceedings{karras2018progressive,
  title     = {Progressive Growing of {GAN}s for Improved Quality, Stability, and Variation},
  author    = {Karras, Tero and Aila, Timo and Laine, Samuli and Lehtinen, Jaakko},
  booktitle = {International Conference on Learning Representations},
  year      = {2018}
}"""


def metric_display(key: str) -> str:
    if key in METRIC_NAMES:
        return METRIC_NAMES[key]
    m = re.fullmatch(r"swd_(\d+)", key)
    if m:
        return f"SWD {m.group(1)}x{m.group(1)} (x1e3)"
    return key


def _yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.sort_base_mapping_type_on_output = False
    y.width = 4096
    return y


def dump_yaml(data: Any) -> str:
    buf = io.StringIO()
    _yaml().dump(data, buf)
    return buf.getvalue()


def parse_card(text: str, where: str = "README.md") -> tuple[dict[str, Any], str]:
    """Split a card into (front matter dict, markdown body). No front matter gives ``{}``."""
    m = _FRONT.match(text)
    if not m:
        return {}, text
    try:
        data = _yaml().load(m.group(1)) or {}
    except Exception as exc:  # ruamel raises several error types; all mean bad YAML here
        raise UserError(f"{where}: the YAML front matter does not parse ({str(exc).splitlines()[0]}); "
                        "fix it or render the card again with `progan-zoo export`") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}: the YAML front matter must be a mapping")
    return data, text[m.end():]


def _clean(v: Any) -> Any:
    """JSON-ish values safe for YAML: round floats so cards do not show float noise."""
    if isinstance(v, float):
        return float(f"{v:.6g}")
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def comparable_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that make two results comparable (volatile ones such as timings removed)."""
    return {k: v for k, v in sorted(settings.items()) if k not in VOLATILE_SETTINGS}


def dataset_entry(meta: "ModelMetadata") -> dict[str, Any]:
    ds = meta.dataset or {}
    res = int(meta.resolution)
    return {"name": ds.get("display_name") or ds.get("name") or "unknown", "type": ds.get("name") or "unknown",
            "config": f"{res}x{res}", "split": ds.get("split", "train")}


def model_index(meta: "ModelMetadata") -> list[dict[str, Any]]:
    """Hub ``model-index`` from the record's evaluation results (one metric entry per value)."""
    metrics = []
    for ev in meta.evaluation or []:
        settings = _clean(comparable_settings(ev.get("settings") or {}))
        for key, value in (ev.get("values") or {}).items():
            if value is None:
                continue
            # A fresh copy per metric: shared objects would become YAML anchors and aliases.
            metrics.append({"type": key, "name": metric_display(key), "value": _clean(float(value)),
                            "args": _clean(settings)})
    entry: dict[str, Any] = {"name": meta.name or "model", "results": []}
    if metrics:
        entry["results"].append({"task": {"type": TASK, "name": "Unconditional Image Generation"},
                                 "dataset": dataset_entry(meta), "metrics": metrics})
    return [entry]


def front_matter(meta: "ModelMetadata") -> dict[str, Any]:
    ds = meta.dataset_name
    tags = ["progan", "gan", "progressive-growing", TASK, "pytorch", "safetensors"]
    if (meta.dataset or {}).get("classes"):
        tags.append("class-conditional")
    fm: dict[str, Any] = {
        "library_name": LIBRARY,
        "license": str(meta.license or "other").lower(),
        "pipeline_tag": TASK,
        "tags": tags,
    }
    if ds:
        fm["datasets"] = [ds]
    index = model_index(meta)
    if index[0]["results"]:
        # The Hub rejects a model-index without results; an unevaluated model simply has none.
        fm["model-index"] = index
    return fm


def _short(v: Any) -> str:
    """Hashes shortened for the human table (the front matter keeps them whole)."""
    text = str(v)
    return text[:12] + "..." if re.fullmatch(r"[0-9a-f]{40,64}", text) else text


def _results_table(meta: "ModelMetadata") -> str:
    evals = meta.evaluation or []
    if not evals:
        return ("Not evaluated yet. Run `progan-zoo evaluate MODEL --metrics swd,fid --record` to measure it and "
                "put the scores on this card.\n")
    rows = ["| metric | value | generated | real | settings |", "|---|---|---|---|---|"]
    for ev in evals:
        s = comparable_settings(ev.get("settings") or {})
        gen = s.get("num_images", "?")
        real = f"{s.get('num_real', '?')} of {s.get('real', '?')}"
        rest = ", ".join(f"{k}={_short(v)}" for k, v in s.items()
                         if k not in ("num_images", "num_real", "num_fake", "real"))
        first = True
        for key, value in (ev.get("values") or {}).items():
            if value is None:
                continue
            # Settings once per evaluation (the front matter has them on every metric).
            rows.append(f"| {metric_display(key)} | {float(value):.4g} | {gen} | {real} | {rest if first else '(same)'} |")
            first = False
    return "\n".join(rows) + "\n"


def render_card(meta: "ModelMetadata", hub_repo: str | None = None) -> str:
    """The whole README.md: front matter, then a human card rendered from the record."""
    name = meta.name or "model"
    spec = meta.spec or {}
    ds = meta.dataset or {}
    res = meta.resolution
    ref = f"hf-hub:{hub_repo}" if hub_repo else name
    shown = meta.images_shown
    alpha = float(meta.alpha)
    training = meta.training or {}
    spec_res = meta.spec_resolution if meta.spec_resolution is not None else res
    lines = [
        "---", dump_yaml(front_matter(meta)).rstrip("\n"), "---", "",
        f"# {name}",
        "",
        f"A Progressive GAN generator (Karras et al., ICLR 2018) producing {res}x{res} "
        f"{'greyscale' if meta.image_channels == 1 else 'colour'} images"
        + (f", trained on {ds.get('display_name') or ds.get('name')}" if ds.get("name") else "") + ". "
        "Saved by [progan-zoo](https://github.com/progan-zoo/progan-zoo): the EMA generator as safetensors, "
        "the exact spec it was trained from, and metadata with hashes and scores.",
        "",
        "![samples](samples.png)",
        "",
        "## Use",
        "",
        "```python",
        "from progan_zoo import load",
        "",
        f'G = load("{ref}")            # sha256 of the weights is checked before loading',
        "images = G.sample(64, seed=0)   # uint8 [64, C, H, W]; the same seed gives the same images",
        "z = G.latents(8, seed=1)        # [8, z_dim] standard normal",
        "x = G(z)                        # float [8, C, H, W] in [-1, 1]",
        "```",
        "",
        "```bash",
        f"progan-zoo generate {ref} --n 64 --seed 0 --out grid.png",
        f"progan-zoo interpolate {ref} --out walk.gif",
        "```",
        "",
        *class_card_lines(meta, ref),
        "## Evaluation",
        "",
        _results_table(meta),
        "SWD is the paper's multi-scale sliced Wasserstein distance (x1e3, one value per Laplacian level and their "
        "average); FID and KID use Inception-v3 pool features through torch-fidelity. Scores are comparable only "
        "between rows measured with the same settings.",
        "",
        _reported_section(meta),
        "## Training",
        "",
        f"- spec: `{spec.get('name')}` revision {spec.get('revision')}, sha256 `{spec.get('sha256')}` "
        f"(the file is `spec.yaml` next to the weights)"
        + (f"; resolved sha256 `{spec['resolved_sha256']}` (the model's identity: "
           f"`progan-zoo compile spec.yaml --resolved | sha256sum`)" if spec.get("resolved_sha256") else ""),
        f"- resolution {res}x{res} (stage {meta.stage} of the spec's {spec_res}x{spec_res} network)"
        + (f", exported mid fade-in with alpha {alpha:.3f}" if alpha < 1 else ""),
        f"- images shown: {shown:,}" if isinstance(shown, int) else "- images shown: unknown",
        f"- data: `{ds.get('source', ds.get('name', 'unknown'))}`",
    ]
    if training.get("checkpoint"):
        lines.append(f"- checkpoint: `{training['checkpoint']}`")
    parent = training.get("init_from")
    if isinstance(parent, dict):
        lines.append(f"- fine-tuned from `{parent.get('model')}` ({parent.get('name')}, {parent.get('resolution')}x"
                     f"{parent.get('resolution')}): spec sha256 `{parent.get('spec_sha256')}`, weights sha256 "
                     f"`{parent.get('weights_sha256')}`; started from its {', '.join(parent.get('loaded') or [])}")
    lines += _provenance_lines(meta)
    w = meta.weights or {}
    lines += [
        f"- weights: `{w.get('file', 'model.safetensors')}`, sha256 `{w.get('sha256')}`, "
        f"contents {', '.join(w.get('contents', ['G_ema']))}",
        "",
        "## Licence",
        "",
        f"{meta.license or 'other'}. The licence of the training data applies to what you make with it.",
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return "\n".join(lines)


def _reported_section(meta: "ModelMetadata") -> str:
    """Scores the paper reports for an imported official network, apart from measured ones."""
    reported = meta.reported or []
    if not reported:
        return ""
    rows = ["### Reported in the paper (not measured here)", "",
            "| metric | value | images | source |", "|---|---|---|---|"]
    for r in reported:
        rows.append(f"| {metric_display(str(r.get('metric')))} | {r.get('value')} | {r.get('num_images', '?')} | "
                    f"{r.get('source', '?')} |")
    return "\n".join(rows) + "\n\nThese figures are quoted from the paper; the table above holds only scores " \
        "measured on this copy with `progan-zoo evaluate --record`.\n"


_VERIFIED = {
    "pinned": "matches the sha256 published for it",
    "hash-prefix": "matches the sha256 prefix in its file name (torch.hub's convention)",
    "first-download": "no hash is published, so this is the first download's sha256; a later download with "
                      "another hash is refused",
    "first-download-match": "matches the sha256 of the first download (no hash is published)",
}


def _provenance_lines(meta: "ModelMetadata") -> list[str]:
    prov = meta.provenance
    if not prov:
        return []
    lines = []
    dl = meta.extra.get("download")
    if dl:
        lines.append(f"- downloaded from <{dl.get('url')}>: sha256 `{dl.get('sha256')}` "
                     f"{_VERIFIED.get(str(dl.get('verified')), '(not verified)')}")
    lines += [f"- imported from `{prov.get('source_file')}` ({prov.get('format')}, sha256 `{prov.get('sha256')}`), "
              f"origin {prov.get('origin')}; read without running any code stored in the file",
              f"- level of detail in the file: " + ", ".join(f"{k} {v:g}" for k, v in (prov.get("lod") or {}).items())]
    for net, kw in (prov.get("static_kwargs") or {}).items():
        lines.append(f"- {net} static arguments: " + ", ".join(f"{k}={v}" for k, v in kw.items()))
    check = meta.official
    if isinstance(check, dict):
        published = check.get("published_sha256")
        hash_text = ("no hash is published for the official file" if not published else
                     f"{'matches' if check.get('hash_matched') else 'does not match'} the published sha256 `{published}`")
        verdict = ("the official network (resolution, channels, latent size, G and D parameters and format as the "
                   "registry states), so the paper's reported scores are attached" if check.get("matched") else
                   f"{check.get('reason')}; no reported scores are attached")
        lines.append(f"- official `{check.get('name')}`: file sha256 `{check.get('file_sha256')}`, {hash_text}; {verdict}")
    return lines


def results_from_card(front: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten model-index results: one dict per metric with model, dataset, config, type, value, args."""
    out = []
    for entry in front.get("model-index") or []:
        if not isinstance(entry, dict):
            continue
        for res in entry.get("results") or []:
            ds = res.get("dataset") or {}
            for m in res.get("metrics") or []:
                try:
                    value = float(m["value"])
                except (KeyError, TypeError, ValueError):
                    continue
                out.append({"model": entry.get("name"), "dataset": ds.get("type") or ds.get("name"),
                            "dataset_name": ds.get("name"), "config": ds.get("config"),
                            "type": m.get("type"), "value": value, "args": m.get("args") or {}})
    return out
