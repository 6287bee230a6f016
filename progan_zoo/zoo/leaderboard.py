"""``progan-zoo leaderboard``: every known model's model-index results, one table per dataset and resolution.

Scores are only comparable when measured the same way (image counts, real data, seeds, feature
extractor). Within a table, each metric's reference settings are those most rows share; rows
measured differently are marked and their differences listed, never silently mixed in.
"""

from __future__ import annotations

import html
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from progan_zoo.errors import ProganZooError, UsageError

from . import records as R
from .card import comparable_settings, metric_display, parse_card, render_card, results_from_card
from .registry import ModelEntry, all_entries

# Metrics where a higher value is better (none of ours: SWD, FID and KID are distances; MS-SSIM is
# a variation measure read against the real data's value, so it is listed ascending too).
HIGHER_IS_BETTER: set[str] = set()
COLUMNS = ("swd_avg", "fid", "kid", "msssim")


@dataclass
class Row:
    model: str
    where: str
    dataset: str
    dataset_name: str
    config: str
    values: dict[str, float] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    samples: Path | None = None
    entry: ModelEntry | None = None
    marks: dict[str, str] = field(default_factory=dict)   # metric -> how its settings differ
    spec: str | None = None   # the resolved spec's sha256 (the model's identity), when the card records it

    @property
    def resolution(self) -> int:
        try:
            return int(str(self.config).split("x")[0])
        except ValueError:
            return 0


_RESOLVED = re.compile(r"resolved sha256 `([0-9a-f]{64})`")


def card_spec_id(body: str) -> str | None:
    """The resolved spec sha256 a card's Training section states (cards written before issue 18: None)."""
    found = _RESOLVED.search(body)
    return found.group(1) if found else None


def _rows_from_card(front: dict[str, Any], model: str, where: str, samples: Path | None,
                    entry: ModelEntry | None, spec: str | None = None) -> list[Row]:
    rows: dict[tuple[str, str], Row] = {}
    for r in results_from_card(front):
        key = (str(r["dataset"]), str(r["config"]))
        row = rows.setdefault(key, Row(model, where, key[0], str(r.get("dataset_name") or key[0]), key[1],
                                       samples=samples, entry=entry, spec=spec))
        row.values[str(r["type"])] = r["value"]
        row.settings[str(r["type"])] = comparable_settings(r["args"])
    return list(rows.values())


def _local_card(folder: Path) -> tuple[dict[str, Any], str, R.ModelMetadata]:
    """A local model's card (front matter and body: its README.md, or rendered from the record if it has
    none) and its record."""
    card = folder / R.CARD
    front_body = parse_card(card.read_text(encoding="utf-8"), str(card)) if card.is_file() else None
    meta = R.read_metadata(folder)
    front, body = front_body if front_body is not None else parse_card(render_card(meta))
    return front, body, meta


def gather(include_hub: bool = True, want_samples: bool = False) -> tuple[list[Row], list[str]]:
    """Rows for every known model with results, and notes on models that could not be read."""
    rows: list[Row] = []
    notes: list[str] = []
    for name, e in all_entries().items():
        try:
            if e.kind == "unpublished":
                notes.append(f"{name}: weights not published yet")
                continue
            if e.kind == "official" and not e.imported:
                notes.append(f"{name}: official network not imported yet (`{e.import_command}`)")
                continue
            if e.kind in ("folder", "official"):
                folder = Path(e.location)
                front, body, meta = _local_card(folder)
                samples = folder / R.SAMPLES if (folder / R.SAMPLES).is_file() else None
                reported, why = _reported_rows(meta, name, e)
                rows.extend(reported)
                if why:
                    notes.append(f"{name}: no reported row: {why}")
            else:
                if not include_hub:
                    notes.append(f"{name}: on the Hub ({e.where}), skipped (--no-hub)")
                    continue
                from .hub import download_file

                card = download_file(e.location, R.CARD, e.revision)
                front, body = parse_card(card.read_text(encoding="utf-8"), f"{e.where}/{R.CARD}")
                samples = None
                if want_samples:
                    try:
                        samples = download_file(e.location, R.SAMPLES, e.revision)
                    except ProganZooError:
                        samples = None
        except ProganZooError as exc:
            notes.append(f"{name}: skipped: {exc}")
            continue
        got = _rows_from_card(front, name, e.where, samples, e, card_spec_id(body))
        if not got:
            notes.append(f"{name}: no evaluation results on its card")
        rows.extend(got)
    return rows, notes


def _reported_rows(meta: R.ModelMetadata, name: str, entry: ModelEntry) -> tuple[list[Row], str | None]:
    """The paper's reported scores of an imported official network, as their own row marked "reported"
    (never merged with the scores `evaluate --record` measured), and why there is none where the name has
    reported scores but the folder does not hold the official network (checked at import: official.py)."""
    check = meta.official
    if isinstance(check, dict) and not check.get("matched"):
        return [], str(check.get("reason") or "not the official network")
    reported = [r for r in meta.reported or [] if isinstance(r, dict) and "metric" in r and "value" in r]
    if reported and not isinstance(check, dict):
        return [], "imported before the file was checked against the official network (import it again)"
    if not reported:
        return [], None
    ds = meta.dataset or {}
    res = int(meta.resolution)
    row = Row(f"{name} (reported)", f"reported: {reported[0].get('source', 'the paper')}", str(ds.get("name") or "unknown"),
              str(ds.get("display_name") or ds.get("name") or "unknown"), f"{res}x{res}", entry=entry)
    for r in reported:
        row.values[str(r["metric"])] = float(r["value"])
        row.settings[str(r["metric"])] = {"kind": "reported", "num_images": r.get("num_images")}
    return [row], None


def _fmt_settings(s: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in s.items()) or "(none recorded)"


def _diff(s: dict[str, Any], ref: dict[str, Any]) -> str:
    keys = sorted(set(s) | set(ref))
    return ", ".join(f"{k}={s.get(k, '-')} (reference {ref.get(k, '-')})" for k in keys if s.get(k) != ref.get(k))


def mark_comparability(rows: list[Row]) -> dict[str, dict[str, Any]]:
    """Reference settings per metric (those most rows share); mark the rows that differ."""
    refs: dict[str, dict[str, Any]] = {}
    metrics = sorted({m for r in rows for m in r.values})
    for m in metrics:
        seen = [repr(sorted(r.settings.get(m, {}).items())) for r in rows if m in r.values]
        if not seen:
            continue
        common, _ = Counter(seen).most_common(1)[0]
        ref = next(r.settings.get(m, {}) for r in rows if m in r.values
                   and repr(sorted(r.settings.get(m, {}).items())) == common)
        refs[m] = ref
        for r in rows:
            if m in r.values and r.settings.get(m, {}) != ref:
                r.marks[m] = _diff(r.settings.get(m, {}), ref)
    return refs


def groups(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    out: dict[tuple[str, str], list[Row]] = {}
    for r in sorted(rows, key=lambda r: (r.dataset, r.resolution)):
        out.setdefault((r.dataset, r.config), []).append(r)
    return out


def sort_rows(rows: list[Row], metric: str) -> list[Row]:
    sign = -1.0 if metric in HIGHER_IS_BETTER else 1.0
    return sorted(rows, key=lambda r: (metric not in r.values, sign * r.values.get(metric, 0.0), r.model))


def _columns(rows: list[Row], metric: str) -> list[str]:
    present = {m for r in rows for m in r.values}
    cols = [metric] + [c for c in COLUMNS if c != metric and c in present]
    levels = sorted((m for m in present if m.startswith("swd_") and m[4:].isdigit()), key=lambda m: -int(m[4:]))
    return cols + [m for m in levels if m not in cols]


def format_tables(rows: list[Row], metric: str) -> str:
    """Plain-text tables, one per dataset and resolution, sorted by ``metric`` (lower is better)."""
    if not rows:
        return "no evaluation results on any known model's card yet\n"
    out = []
    for (dataset, config), grp in groups(rows).items():
        refs = mark_comparability(grp)
        grp = sort_rows(grp, metric)
        cols = _columns(grp, metric)
        header = ["#", "model"] + cols + ["spec", "where"]
        table = [header]
        for i, r in enumerate(grp, 1):
            cells = [str(i), r.model]
            for c in cols:
                v = r.values.get(c)
                cells.append("-" if v is None else f"{v:.4g}" + ("*" if c in r.marks else ""))
            cells += [r.spec[:12] if r.spec else "-", r.where]
            table.append(cells)
        widths = [max(len(row[j]) for row in table) for j in range(len(header))]
        title = f"{grp[0].dataset_name} {config} - sorted by {metric} ({'higher' if metric in HIGHER_IS_BETTER else 'lower'} is better)"
        out.append(title)
        out.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        out.append("  ".join("-" * w for w in widths))
        for row in table[1:]:
            out.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        out.append("settings:")
        for m in cols:
            if m in refs:
                out.append(f"  {m}: {_fmt_settings(refs[m])}")
        for r in grp:
            for m, d in r.marks.items():
                out.append(f"  * {r.model} {m} was evaluated differently: {d}")
        out.append("")
    return "\n".join(out)


def write_html(rows: list[Row], metric: str, out_dir: str | Path, notes: list[str] | None = None) -> Path:
    """A static page: the tables with settings and marks, and each model's sample grid."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>progan-zoo leaderboard</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td.l,th.l{text-align:left}"
             ".mark{color:#b00}img.s{image-rendering:pixelated;width:160px;height:auto}"
             ".note{color:#555;font-size:90%}</style></head><body>",
             "<h1>progan-zoo leaderboard</h1>",
             f"<p>Sorted by <b>{e(metric)}</b> (lower is better). Values marked <span class='mark'>*</span> were "
             "measured with settings other than the table's reference settings and are not directly comparable.</p>"]
    copied: dict[str, str] = {}
    if not rows:
        parts.append("<p>No evaluation results on any known model's card yet.</p>")
    for (dataset, config), grp in groups(rows).items():
        refs = mark_comparability(grp)
        grp = sort_rows(grp, metric)
        cols = _columns(grp, metric)
        parts.append(f"<h2>{e(grp[0].dataset_name)} {e(config)}</h2><table><tr><th>#</th><th class='l'>model</th>"
                     + "".join(f"<th>{e(metric_display(c))}</th>" for c in cols)
                     + "<th class='l'>samples</th><th class='l'>spec</th><th class='l'>where</th></tr>")
        for i, r in enumerate(grp, 1):
            cells = []
            for c in cols:
                v = r.values.get(c)
                if v is None:
                    cells.append("<td>-</td>")
                elif c in r.marks:
                    cells.append(f"<td class='mark' title='{e(r.marks[c])}'>{v:.4g}*</td>")
                else:
                    cells.append(f"<td>{v:.4g}</td>")
            img = ""
            if r.samples is not None and Path(r.samples).is_file():
                if r.model not in copied:
                    dest = out / "samples" / f"{r.model}.png"
                    shutil.copyfile(r.samples, dest)
                    copied[r.model] = f"samples/{r.model}.png"
                img = f"<img class='s' src='{e(copied[r.model])}' alt='{e(r.model)} samples'>"
            parts.append(f"<tr><td>{i}</td><td class='l'>{e(r.model)}</td>{''.join(cells)}"
                         f"<td class='l'>{img}</td><td class='l' title='resolved spec sha256 {e(r.spec or 'not recorded')}'>"
                         f"{e(r.spec[:12] if r.spec else '-')}</td><td class='l'>{e(r.where)}</td></tr>")
        parts.append("</table><p class='note'>Reference settings:<br>"
                     + "<br>".join(f"{e(m)}: {e(_fmt_settings(refs[m]))}" for m in cols if m in refs) + "</p>")
        marks = [f"{e(r.model)} {e(m)}: {e(d)}" for r in grp for m, d in r.marks.items()]
        if marks:
            parts.append("<p class='note mark'>Evaluated differently:<br>" + "<br>".join(marks) + "</p>")
    if notes:
        parts.append("<h2>Not listed</h2><ul class='note'>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>")
    page = out / "index.html"
    page.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return page


def run(metric: str = "swd_avg", html_dir: str | Path | None = None, include_hub: bool = True,
        dataset: str | None = None, stream=None) -> int:
    stream = stream or sys.stdout
    rows, notes = gather(include_hub=include_hub, want_samples=html_dir is not None)
    if dataset:
        rows = [r for r in rows if r.dataset == dataset]
    known = {m for r in rows for m in r.values}
    if rows and metric not in known:
        raise UsageError(f"--metric {metric}: no model has it; metrics on the cards: {', '.join(sorted(known))}")
    stream.write(format_tables(rows, metric))
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    if html_dir is not None:
        page = write_html(rows, metric, html_dir, notes)
        stream.write(f"wrote {page}\n")
    return 0
