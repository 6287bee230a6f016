"""``progan-zoo plot RUN``: the training curves of a run, from its ``log.jsonl``, as one PNG.

Needs only matplotlib (the ``plots`` extra), not TensorBoard. One panel per quantity, all against
thousands of real images shown (kimg): the losses, the gradient penalty, images/s, the level of
detail with the fade weight alpha, the learning rate, and any metrics recorded during training
(``progan-zoo train --metrics swd``). Growth stages are marked on every panel: a shaded band while a
new resolution fades in, a line where it is fully in. They come from the run's own ``spec.yaml``
(the exact schedule), or from the logged level of detail when the spec cannot be read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from progan_zoo.errors import UsageError
from progan_zoo.jsonl import read_records

LOG = "log.jsonl"
METRIC_PREFIX = "metrics/"      # tick-record keys of metrics measured during training


@dataclass(frozen=True)
class Stage:
    """One growth stage on the kimg axis: its resolution, where its fade starts and where it is fully in."""

    resolution: int
    fade_start: float
    fade_end: float


def read_log(run: str | Path) -> list[dict]:
    """The tick records of a run's log.jsonl; a missing, empty or broken log is a UsageError."""
    run = Path(run)
    path = run / LOG if run.is_dir() else run
    if not path.is_file():
        raise UsageError(f"{path}: no such file (hint: give a run directory that progan-zoo train wrote)")
    records = []
    for i, rec in read_records(path, "remove the broken line"):
        if not isinstance(rec, dict) or "kimg" not in rec:
            raise UsageError(f"{path}:{i}: a tick record needs a 'kimg' field (hint: is this a progan-zoo run log?)")
        records.append(rec)
    if not records:
        raise UsageError(f"{path}: no ticks logged yet (hint: plot again after the first tick)")
    return records


def stages_from_spec(spec_file: Path, last_kimg: float) -> list[Stage] | None:
    """The growth stages up to ``last_kimg`` from the run's spec (None when it cannot be read)."""
    try:
        from progan_zoo.compiler import load_spec

        from .schedule import Schedule

        sched = Schedule(load_spec(spec_file))
    except Exception:   # a run dir from another version: fall back to the logged lod
        return None
    return [Stage(sched.resolutions[s], a, b) for s, a, b in sched.stage_starts()[1:] if a < last_kimg]


def stages_from_log(records: list[dict]) -> list[Stage]:
    """Growth stages read from the logged level of detail (as fine as the ticks)."""
    out: list[Stage] = []
    prev_kimg, prev_lod = 0.0, None
    for r in records:
        lod, kimg = r.get("lod"), float(r["kimg"])
        if lod is None:
            continue
        if prev_lod is not None and math.ceil(lod) < math.ceil(prev_lod):     # a new resolution came in
            res = int(r.get("resolution", 0))
            start = prev_kimg
            out.append(Stage(res, start, kimg if lod == math.floor(lod) else math.inf))
        if out and out[-1].fade_end == math.inf and lod == math.floor(lod):
            out[-1] = Stage(out[-1].resolution, out[-1].fade_start, kimg)
        prev_kimg, prev_lod = kimg, lod
    return [s if s.fade_end != math.inf else Stage(s.resolution, s.fade_start, prev_kimg) for s in out]


def _series(records: list[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in records:
        v = r.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            xs.append(float(r["kimg"]))
            ys.append(float(v))
    return xs, ys


def plot_run(run: str | Path, out: str | Path | None = None) -> Path:
    """Draw the run's curves to ``out`` (default RUN/training.png); returns the path written."""
    records = read_log(run)
    run = Path(run)
    run_dir = run if run.is_dir() else run.parent
    out = Path(out) if out else run_dir / "training.png"
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {out}: the plot is written as PNG (hint: end the name with .png)")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("progan-zoo plot needs matplotlib (hint: pip install 'progan-zoo[plots]')") from None

    last = max(float(r["kimg"]) for r in records)
    stages = stages_from_spec(run_dir / "spec.yaml", last)
    if stages is None:
        stages = stages_from_log(records)
    keys = {k for r in records for k in r}
    metric_keys = _metric_keys(records, keys)
    losses = [k for k in ("D/loss", "G/loss", "D/real", "D/fake") if k in keys]
    panels = [("losses", losses), ("gradient penalty", [k for k in ("D/gp",) if k in keys]),
              ("images / s", ["images_per_s"]), ("level of detail", ["lod", "alpha"]),
              ("learning rate", ["learning_rate"])]
    if metric_keys:
        panels.append(("metrics (during training)", metric_keys))
    panels = [(t, ks) for t, ks in panels if any(_series(records, k)[0] for k in ks)]

    fig = Figure(figsize=(10, 2.1 * len(panels) + 0.8), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    name = _run_name(run_dir)
    fig.suptitle(f"{name}: {len(records)} ticks, {last:g} kimg", fontsize=11)
    for ax, (title, ks) in zip(axes, panels):
        twin = None
        for k in ks:
            xs, ys = _series(records, k)
            if not xs:
                continue
            if k == "alpha":       # 0..1, on its own scale beside the lod
                twin = ax.twinx()
                twin.plot(xs, ys, color="tab:orange", lw=1.0, ls="--", label="alpha (fade weight)")
                twin.set_ylim(-0.05, 1.05)
                twin.set_ylabel("alpha", color="tab:orange")
                continue
            faint = k in ("D/real", "D/fake") or (k.startswith(METRIC_PREFIX) and not k.endswith("_avg"))
            style = {"lw": 1.0, "alpha": 0.5} if faint else {"lw": 1.4}
            ax.plot(xs, ys, marker="." if len(xs) < 40 else None, label=_label(k), **style)
        if title == "gradient penalty" and all(v > 0 for v in _series(records, "D/gp")[1]):
            ax.set_yscale("log")
        if title == "learning rate":
            ax.set_ylim(0, max(_series(records, "learning_rate")[1]) * 1.15)
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        if title == "level of detail":
            _lod_axis(ax, records)
        ax.set_ylabel(title, fontsize=9)
        ax.grid(True, alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if twin is not None:
            h2, l2 = twin.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        if len(labels) > 1 or title.startswith("metrics"):
            ax.legend(handles, labels, fontsize=8, loc="upper right", ncol=min(4, len(labels)))
        for s in stages:
            ax.axvspan(s.fade_start, max(s.fade_end, s.fade_start), color="tab:green", alpha=0.10, lw=0)
            ax.axvline(s.fade_end, color="tab:green", alpha=0.5, lw=0.8, ls="--")
    top = axes[0]
    for s in stages:
        top.annotate(f"{s.resolution}px", xy=(s.fade_start, 1.0), xycoords=("data", "axes fraction"),
                     xytext=(2, 2), textcoords="offset points", fontsize=8, color="tab:green", va="bottom")
    axes[-1].set_xlabel("kimg (thousands of real images shown); green: a new resolution fades in")
    axes[-1].set_xlim(0, last * 1.01 if last > 0 else 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def _metric_keys(records: list[dict], keys: set[str]) -> list[str]:
    """The metric fields to draw: averages first; a per-level series equal to its average (one level) is left out."""
    found = sorted((k for k in keys if k.startswith(METRIC_PREFIX)), key=lambda k: (not k.endswith("_avg"), k))
    out: list[str] = []
    for k in found:
        if any(_series(records, k) == _series(records, o) for o in out):
            continue
        out.append(k)
    return out


def _lod_axis(ax, records: list[dict]) -> None:
    """Integer lods labelled with their resolution, the final resolution at the top."""
    first = next((r for r in records if "lod" in r and "resolution" in r), None)
    lods = [float(r["lod"]) for r in records if "lod" in r]
    if first is None or not lods:
        return
    final = int(first["resolution"]) * 2 ** int(math.floor(float(first["lod"])))
    ticks = list(range(int(math.floor(min(lods))), int(math.ceil(max(lods))) + 1))
    ax.set_yticks(ticks, [f"{t} ({final // 2 ** t}px)" for t in ticks])
    lo, hi = min(ticks), max(ticks)
    ax.set_ylim(hi + 0.15, lo - 0.15 if hi > lo else lo - 1)      # inverted: up = higher resolution


def _label(key: str) -> str:
    if key.startswith(METRIC_PREFIX):
        return key[len(METRIC_PREFIX):]
    return {"images_per_s": "images/s", "lod": "lod (0 = final resolution)", "learning_rate": "learning rate"}.get(key, key)


def _run_name(run_dir: Path) -> str:
    try:
        return str(json.loads((run_dir / "run.json").read_text())["spec_name"]) + f" ({run_dir.name})"
    except (OSError, ValueError, KeyError, TypeError):
        return run_dir.name
