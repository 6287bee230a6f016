"""``progan-zoo evaluate``: load a target (run, checkpoint or zoo model) and its real data, run the
metrics package's ``evaluate``, print the table, write JSON, and file the results where they belong:
the run's ``metrics.jsonl`` for runs, ``metadata.json`` and the card for saved models (``--record``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progan_zoo import __version__
from progan_zoo.errors import UsageError, UserError

from . import folder as F

if TYPE_CHECKING:
    import torch

# The metrics package reports KID as kid_mean/kid_std; cards and the leaderboard call the mean "kid".
_CARD_KEYS = {"kid_mean": "kid"}


def real_images(data: str, resolution: int, channels: int, num: int, seed: int = 0) -> tuple["torch.Tensor", int]:
    """(uint8 [num, C, R, R] real images at the generator's resolution, images in the data).

    When the data has more than ``num`` images, a seeded random subset (in data order) is taken, so
    sorted data stays representative and only ``num`` images are ever held in memory.
    """
    import numpy as np
    import torch

    from progan_zoo.data import open_dataset

    level = open_dataset(data, resolution, channels, progress=True).level(resolution)
    total = len(level)
    if num > total:
        raise UsageError(f"--num {num}: {data} has {total} images at {resolution}x{resolution}; "
                         f"give --num {total} or fewer")
    if num < total:
        idx = np.sort(np.random.default_rng(seed).choice(total, size=num, replace=False))
        level = level[idx]
    return torch.from_numpy(np.array(level, dtype=np.uint8)), total


def data_label(data: str) -> str:
    """How the real data is named in recorded settings: built-in names as is, paths by their last part
    (absolute paths differ between machines and would mark identical evaluations as different)."""
    p = Path(data)
    return data if not (p.exists() or "/" in data or "\\" in data) else (p.name or str(p))


def to_entries(results: dict[str, Any], data: str, num: int, seed: int, real_total: int | None = None
               ) -> list[dict[str, Any]]:
    """metrics.evaluate's result -> metadata ``evaluation`` entries ({metric, values, settings})."""
    per_metric = (results.get("settings") or {}).get("per_metric") or {}
    stamp = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    out = []
    for metric, values in results.items():
        if metric in ("settings", "time") or not isinstance(values, dict) or "unavailable" in values:
            continue
        vals = {_CARD_KEYS.get(k, k): float(v) for k, v in values.items() if isinstance(v, (int, float))}
        vals = dict(sorted(vals.items(), key=lambda kv: kv[0] != "swd_avg"))  # the headline number first
        settings = {"num_images": int(num), "real": data_label(data), "seed": int(seed)}
        if real_total is not None:
            settings["real_total"] = int(real_total)
        for k, v in (per_metric.get(metric) or {}).items():
            if k not in ("weights_path",) and v is not None:
                settings[k] = v
        out.append({"metric": metric, "values": vals, "settings": settings, "date": stamp,
                    "progan_zoo_version": __version__})
    return out


def record(folder: str | Path, entries: list[dict[str, Any]]) -> Path:
    """Store entries in a saved model's metadata.json (replacing earlier results of the same metrics)
    and re-render its card."""
    from .export import write_card

    meta = F.read_metadata(folder)
    new = {e["metric"] for e in entries}
    meta["evaluation"] = [e for e in meta.get("evaluation") or [] if e.get("metric") not in new] + entries
    F.write_metadata(folder, meta)
    return write_card(folder, meta)


def evaluate_target(args: argparse.Namespace) -> int:
    """The body of ``progan-zoo evaluate`` (see ``progan_zoo.zoo.cli.add_evaluate_arguments``)."""
    import torch

    from progan_zoo.metrics.evaluate import evaluate, format_table

    from .export import is_checkpoint_dir, is_run_dir
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
        shown = G.metadata.get("images_shown")
        log_extra = {"snapshot": ck.name, "kimg": shown / 1000 if shown is not None else None,
                     "resolution": G.resolution, "generator": "G_ema"}
    else:
        if args.checkpoint:
            raise UsageError("--checkpoint applies to run directories")
        G = load(args.target, resolution=args.resolution, device=device)
        if F.is_model_folder(target):
            folder = target
        elif not str(args.target).startswith("hf-hub:") and "/" not in str(args.target):
            from .registry import resolve

            entry = resolve(str(args.target))
            folder = Path(entry.location) if entry.kind == "folder" else None
    if args.record and folder is None:
        raise UsageError("--record stores results in a local saved model folder; give its path or a local name "
                         "(for a Hub model: download or export it, record, then publish again)")
    if args.record and args.resolution and args.resolution != F.read_metadata(folder)["resolution"]:
        raise UsageError("--record with --resolution would put scores of another resolution on this model's card; "
                         "export that resolution first (`progan-zoo export MODEL OUT --resolution R`)")

    spec = G.spec
    metrics = [m.strip() for m in (args.metrics.split(",") if args.metrics else spec.evaluation.metrics) if m.strip()]
    num = args.num or spec.evaluation.num_images
    data = args.data or spec.data.source
    need = 2 * num if "swd_noise_floor" in metrics else num
    real, total = real_images(data, G.resolution, G.image_channels, need, args.seed)
    out = args.out
    if out is None:
        out = (run_dir / f"eval-{log_extra['snapshot']}.json") if run_dir is not None else Path("results.json")
    print(f"evaluating {G.name} ({G.resolution}x{G.resolution}, from {G.source}) with {', '.join(metrics)}: "
          f"{num} generated vs {num} real images of {data}, seed {args.seed}, {device}")
    results = evaluate(G, metrics, num, real=real, out_json=out, seed=args.seed, device=device,
                       batch_size=args.batch_size, run_dir=run_dir, log_extra=log_extra)
    print(format_table(results))
    print(f"wrote {out}" + (f"; appended to {run_dir / 'metrics.jsonl'}" if run_dir is not None else ""))
    if args.record:
        entries = to_entries(results, data, num, args.seed, total)
        if not entries:
            raise UserError("no metric produced a value; nothing recorded")
        card = record(folder, entries)
        print(f"recorded {', '.join(e['metric'] for e in entries)} in {folder / F.METADATA} and {card}")
    return 0
