"""``progan-zoo evaluate``: load a target (run, checkpoint or zoo model) and its real data, run the
metrics package's ``evaluate``, print the table, write JSON, and file the results where they belong:
the run's ``metrics.jsonl`` for runs, ``metadata.json`` and the card for saved models (``--record``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progan_zoo import __version__
from progan_zoo.errors import UsageError, UserError

from . import records as R

if TYPE_CHECKING:
    import torch

# The metrics package reports KID as kid_mean/kid_std; cards and the leaderboard call the mean "kid".
_CARD_KEYS = {"kid_mean": "kid"}


def run_mirror(checkpoint: Path, run_dir: Path | None, spec: Any) -> bool:
    """Whether a run trained with mirror augmentation: the checkpoint's data sampler state, else the run's
    command-line choice (run.json), else the spec's ``training.mirror_augment``."""
    import json

    def read(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    state = read(checkpoint / "state.json")
    for value in (state.get("mirror"), ((state.get("rng") or {}).get("data_sampler") or {}).get("mirror")):
        if isinstance(value, bool):
            return value
    if run_dir is not None:
        value = (read(run_dir / "run.json").get("config") or {}).get("mirror")
        if isinstance(value, bool):
            return value
    return bool(spec.training.mirror_augment)


def data_label(data: str) -> str:
    """How the real data is named in recorded settings: built-in names as is, paths by their last part
    (absolute paths differ between machines and would mark identical evaluations as different)."""
    p = Path(data)
    return data if not (p.exists() or "/" in data or "\\" in data) else (p.name or str(p))


def to_entries(results: dict[str, Any], data: str, num: int | dict[str, int], seed: int,
               real_total: int | None = None) -> list[dict[str, Any]]:
    """metrics.evaluate's result -> metadata ``evaluation`` entries ({metric, values, settings})."""
    per_metric = (results.get("settings") or {}).get("per_metric") or {}
    stamp = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    out = []
    for metric, values in results.items():
        if metric in ("settings", "time") or not isinstance(values, dict) or "unavailable" in values:
            continue
        vals = {_CARD_KEYS.get(k, k): float(v) for k, v in values.items() if isinstance(v, (int, float))}
        vals = dict(sorted(vals.items(), key=lambda kv: kv[0] != "swd_avg"))  # the headline number first
        count = num.get(metric) if isinstance(num, dict) else num
        settings = {"num_images": int(count), "real": data_label(data), "seed": int(seed)}
        if real_total is not None:
            settings["real_total"] = int(real_total)
        for k, v in (per_metric.get(metric) or {}).items():
            if k not in ("weights_path",) and v is not None:
                settings[k] = v
        out.append({"metric": metric, "values": vals, "settings": settings, "date": stamp,
                    "progan_zoo_version": __version__})
    return out


def record(folder: str | Path, meta: R.ModelMetadata, entries: list[dict[str, Any]]) -> Path:
    """Store entries in a saved model's record (replacing earlier results of the same metrics), write
    its metadata.json and re-render its card."""
    from .folder import write_record

    new = {e["metric"] for e in entries}
    kept = [e for e in meta.evaluation or [] if e.get("metric") not in new]
    return write_record(folder, meta.replace(evaluation=kept + entries))


def evaluate_target(args: argparse.Namespace) -> int:
    """The body of ``progan-zoo evaluate`` (see ``progan_zoo.zoo.cli.add_evaluate_arguments``)."""
    import torch

    from progan_zoo.data.dataset import real_images
    from progan_zoo.metrics.evaluate import evaluate, format_table, reals_needed
    from progan_zoo.metrics.registry import METRICS

    from progan_zoo.train.checkpoint import is_checkpoint_dir, is_run_dir

    from .loader import from_checkpoint, load

    target = Path(args.target)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    run_dir: Path | None = None
    folder: Path | None = None
    log_extra: dict[str, Any] = {}
    if target.exists() and (is_run_dir(target) or is_checkpoint_dir(target)):
        G = from_checkpoint(target, checkpoint=args.checkpoint, resolution=args.resolution, device=device)
        ck = Path(G.source)
        run_dir = ck.parent.parent if ck.parent.name == "checkpoints" else None
        shown = G.metadata.images_shown
        log_extra = {"snapshot": ck.name, "kimg": shown / 1000 if shown is not None else None,
                     "resolution": G.resolution, "generator": "G_ema"}
    else:
        if args.checkpoint:
            raise UsageError("--checkpoint applies to run directories")
        G = load(args.target, resolution=args.resolution, device=device)
        if R.is_model_folder(target):
            folder = target
        elif not str(args.target).startswith("hf-hub:") and "/" not in str(args.target):
            from .registry import resolve

            entry = resolve(str(args.target))
            folder = Path(entry.location) if entry.kind == "folder" else None
    if getattr(args, "per_class", False) and not G.label_size:
        raise UsageError(f"{args.target}: is unconditional; --per-class needs a conditional model")
    if args.record and folder is None:
        raise UsageError("--record stores results in a local saved model folder; give its path or a local name "
                         "(for a Hub model: download or export it, record, then publish again)")
    # The folder's own record (``load`` may have given a lower resolution of it: its record says so).
    saved = R.read_metadata(folder) if args.record else None
    if args.record and args.resolution and args.resolution != saved.resolution:
        raise UsageError("--record with --resolution would put scores of another resolution on this model's card; "
                         "export that resolution first (`progan-zoo export MODEL OUT --resolution R`)")

    spec = G.spec
    metrics = [m.strip().lower() for m in (args.metrics.split(",") if args.metrics else spec.evaluation.metrics) if m.strip()]
    for m in metrics:
        METRICS.get(m)  # an unknown name fails here, listing the known ones
    # Counts per metric: --num for all of them, else the spec's (one number or per metric, official defaults).
    counts = {m: args.num or spec.evaluation.count(m) for m in metrics}
    data = args.data or spec.data.source
    # The official code scores every snapshot at the final resolution (its G upsamples a lower level of
    # detail); a run still at 4x4 is scored on its images nearest-upsampled. --resolution asks for a stage.
    is_run = bool(log_extra)
    size = spec.architecture.resolution if is_run and args.resolution is None else G.resolution
    if is_run:
        log_extra["scored_at"] = size
    # Reals mirrored at random when the run trained with mirror augmentation (official evaluate_metrics).
    mirror = args.mirror
    if mirror is None:
        mirror = run_mirror(Path(G.source), run_dir, spec) if is_run else bool(spec.training.mirror_augment)
    level, order = real_images(data, size, G.image_channels, args.seed, crop=spec.data.crop)
    total = len(level)
    out = args.out
    if out is None:
        out = (run_dir / f"eval-{log_extra['snapshot']}.json") if run_dir is not None else Path("results.json")
    shown = ", ".join(f"{m} {n}" for m, n in counts.items())
    print(f"evaluating {G.name} ({G.resolution}x{G.resolution}"
          + (f", upsampled to {size}x{size}" if size != G.resolution else "")
          + f", from {G.source}) with {', '.join(metrics)}: {shown} generated and real images of {data} "
          + f"({total} images{', cycled' if reals_needed(counts) > total else ''}"
          + f"{', mirrored at random' if mirror else ''}), seed {args.seed}, {device}")
    results = evaluate(G, metrics, counts, real=level, out_json=out, seed=args.seed, device=device,
                       batch_size=args.batch_size, run_dir=run_dir, log_extra=log_extra, mirror=mirror,
                       resolution=size, real_order=order)
    print(format_table(results))
    if args.per_class:
        from .classes import print_per_class

        results["per_class"] = print_per_class(G, data, size, metrics, counts, args.seed, crop=spec.data.crop)
        Path(out).write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    print(f"wrote {out}" + (f"; appended to {run_dir / 'metrics.jsonl'}" if run_dir is not None else ""))
    if args.record:
        entries = to_entries(results, data, counts, args.seed, total)
        if not entries:
            raise UserError("no metric produced a value; nothing recorded")
        card = record(folder, saved, entries)
        print(f"recorded {', '.join(e['metric'] for e in entries)} in {folder / R.METADATA} and {card}")
    return 0
