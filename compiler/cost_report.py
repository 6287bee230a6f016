"""The cost model's reports: the cost tables of ``compile --cost`` (text and JSON), rates read from a
benchmark or a run's log, and the generated cost section of docs/spec.md.

The model itself (what each stage and the schedule cost) is ``cost``; this module only prints it.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from progan_zoo import generated

from .cost import FLOAT_BYTES, Rate, SpecCost, projected_seconds, rate_from_images, spec_cost

DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "spec.md"


# --------------------------------------------------------------------------- printing

def si(x: float, unit: str = "") -> str:
    """1.2 G, 340 M: three significant figures with an SI prefix."""
    for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}".rstrip()


def binary(n: float) -> str:
    """Bytes as KiB/MiB/GiB/TiB."""
    for factor, prefix in ((2**60, "EiB"), (2**50, "PiB"), (2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= factor:
            v = n / factor
            return f"{v:.3g} {prefix}" if v < 1000 else f"{v:.0f} {prefix}"
    return f"{n:.0f} B"


def duration(seconds: float) -> str:
    """Seconds as 45 s, 12.5 min, 3.2 h or 4.1 d."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} d"


CONVENTION = ("FLOP = 2 x multiply-accumulates of convs and dense layers (torch FlopCounterMode's convention); "
              "train = D step with the WGAN-GP double backward + G step, per real image shown; memory fp32, "
              "peak of the D and G steps at the schedule's minibatch")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    return [fmt(header), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def cost_report(cost: SpecCost, rate: Rate | None = None, devices: int = 1) -> str:
    """The ``progan-zoo compile --cost`` tables: per stage, then the schedule (and its wall time)."""
    lines = [f"Cost of {cost.name}: G {cost.g_params:,} parameters ({binary(cost.g_params * FLOAT_BYTES)} fp32), "
             f"D {cost.d_params:,} ({binary(cost.d_params * FLOAT_BYTES)})", CONVENTION, ""]
    header = ("Stage", "G params", "D params", "G fwd FLOP/img", "D fwd FLOP/img", "train FLOP/img",
              "act/img", "minibatch", "fixed", "peak memory") + ((f"per device of {devices}",) if devices > 1 else ())
    rows = []
    for c in cost.stages:
        row = (c.label, si(c.g_params), si(c.d_params), si(c.g_forward_flops), si(c.d_forward_flops),
               si(c.train_flops_per_image), binary(c.activation_bytes_per_image), str(c.minibatch),
               binary(c.fixed_bytes), binary(c.memory_bytes()))
        if devices > 1:
            row += (binary(c.memory_bytes(math.ceil(c.minibatch / devices))),)
        rows.append(row)
    lines += _table(header, rows, right=set(range(1, len(header))))
    lines += ["peak memory: one device holding the whole minibatch"
              + (f"; per device: the minibatch split over {devices} devices (data parallel)" if devices > 1 else "")]
    lines += ["", "Schedule"]
    header = ["Phase", "kimg", "images", "train FLOP"]
    if rate is not None:
        header += ["time, 1 device"] + ([f"time, {devices} devices"] if devices > 1 else [])
    rows = []
    for p in cost.phases:
        row = [p.cost.label, f"{p.kimg_start:g}-{p.kimg_end:g}", si(p.images), si(p.flops)]
        if rate is not None:
            row.append(duration(projected_seconds(p, rate)))
            if devices > 1:
                row.append(duration(projected_seconds(p, rate, devices)))
        rows.append(tuple(row))
    total = ["Total", f"{cost.total_images / 1000:g}", si(cost.total_images), si(cost.total_flops)]
    if rate is not None:
        seconds = cost.total_flops / rate.flops_per_s
        total.append(duration(seconds))
        if devices > 1:
            total.append(duration(seconds / devices))
    table = _table(tuple(header), rows + [tuple(total)], right=set(range(1, len(header))))
    lines += table[:-1] + [table[1], table[-1]]
    if rate is not None:
        lines += ["", f"Rate: {rate.source} = {si(rate.flops_per_s, 'FLOP/s')} achieved, assumed the same at every "
                      "stage (small stages run below it, so their times are lower bounds)"
                      + (f"; {devices} devices assumed to scale linearly" if devices > 1 else "")]
    return "\n".join(lines)


def cost_json(cost: SpecCost, rate: Rate | None = None, devices: int = 1) -> dict[str, Any]:
    """Machine-readable form of ``cost_report``."""
    stages = [{**asdict(c), "label": c.label, "memory_bytes": c.memory_bytes()} for c in cost.stages]
    phases = []
    for p in cost.phases:
        entry = {"stage": p.cost.stage, "resolution": p.cost.resolution, "fading": p.cost.fading,
                 "kimg_start": p.kimg_start, "kimg_end": p.kimg_end, "images": p.images, "flops": p.flops}
        if rate is not None:
            entry["seconds"] = projected_seconds(p, rate)
            entry[f"seconds_{devices}_devices"] = projected_seconds(p, rate, devices)
        phases.append(entry)
    out: dict[str, Any] = {"convention": CONVENTION, "g_params": cost.g_params, "d_params": cost.d_params,
                           "param_bytes": (cost.g_params + cost.d_params) * FLOAT_BYTES,
                           "stages": stages, "schedule": {"phases": phases, "total_images": cost.total_images,
                                                          "total_flops": cost.total_flops}}
    if rate is not None:
        out["rate"] = {"flops_per_s": rate.flops_per_s, "source": rate.source, "devices": devices,
                       "assumption": "achieved FLOP/s constant across stages; devices scale linearly"}
        out["schedule"]["seconds"] = cost.total_flops / rate.flops_per_s
        out["schedule"][f"seconds_{devices}_devices"] = cost.total_flops / rate.flops_per_s / devices
    return out


def rate_from_file(cost: SpecCost, path: str) -> Rate:
    """A rate from a benchmark's ``--json`` output (its achieved GFLOP/s, same FLOP convention) or a
    run's ``log.jsonl`` (the median images/s of the ticks at the last record's resolution and phase)."""
    from progan_zoo.errors import UsageError
    from progan_zoo.jsonl import read_records

    hint = "give benchmarks/bench_train.py --json output or a run's log.jsonl"
    records = [rec for _, rec in read_records(path, hint, "rate file")
               if isinstance(rec, dict) and isinstance(rec.get("images_per_s"), (int, float)) and rec["images_per_s"] > 0]
    if not records:
        raise UsageError(f"{path}: no record with a positive 'images_per_s' (hint: give benchmarks/bench_train.py "
                         "--json output or a run's log.jsonl)")
    last = records[-1]
    if isinstance(last.get("gflops"), (int, float)) and last["gflops"] > 0:
        res = last.get("resolution", "?")
        return Rate(last["gflops"] * 1e9, f"{path}: {last['gflops']:.4g} GFLOP/s achieved by "
                                          f"{last.get('variant', 'the benchmark')} at {res}x{res}")
    res = last.get("resolution")
    fading = float(last.get("alpha", 1.0)) < 1.0
    same = sorted(r["images_per_s"] for r in records if r.get("resolution") == res
                  and (float(r.get("alpha", 1.0)) < 1.0) == fading)
    median = same[len(same) // 2]
    if not isinstance(res, int) or res not in {c.resolution for c in cost.stages}:
        raise UsageError(f"{path}: the last record's resolution {res!r} is not one of this spec's "
                         "(hint: give the log of a run of this spec, or --rate IMG_PER_S --rate-res R)")
    return rate_from_images(cost, median, res, fading, source=f"{path}: median of {len(same)} tick(s)")


# --------------------------------------------------------------------------- the cost section of docs/spec.md

DOCS_BEGIN = "<!-- BEGIN COST: generated by `python -m progan_zoo.compiler.cost --docs`; do not edit by hand -->"
DOCS_END = "<!-- END COST -->"

# Achieved rates measured with benchmarks/bench_train.py (FlopCounterMode FLOPs, the convention above),
# as docs/training.md reports them; each projection assumes the rate holds at every stage.
DOC_RATES = (
    ("CPU, 2 cores", 180e9, "the development VM at a quiet moment, bench 32x32 minibatch 32, docs/training.md"),
    ("1 H100", 24_081e9, "fp32, bench 32x32 minibatch 256, docs/training.md"),
    ("8 H100", 8 * 24_081e9, "the same, 8 devices assumed to scale linearly"),
)


def docs_markdown(spec_paths: list[str] | None = None) -> str:
    """The generated cost section: a table per shipped spec and its schedule's projected time."""
    from . import compile_spec

    root = Path(__file__).resolve().parents[1]
    paths = spec_paths or sorted(str(p.relative_to(root)) for p in (root / "specs").glob("*.yaml"))
    lines = ["### Cost of the shipped specs", "",
             "Generated from the graphs by `progan-zoo compile SPEC --cost` (conventions above). Peak memory is",
             "one device holding the stage's whole global minibatch in fp32; split over N devices, each",
             "holds `fixed + minibatch / N x act/img`.", "",
             "Projected schedule time uses these achieved rates (measured, `benchmarks/bench_train.py`):", ""]
    lines += [f"- {name}: {si(rate, 'FLOP/s')} ({source})" for name, rate, source in DOC_RATES]
    lines.append("")
    for path in paths:
        c = compile_spec(root / path, until="graph")
        cost = spec_cost(c.graph, c.spec)
        lines += [f"#### `{path}`", "",
                  f"G {cost.g_params:,} parameters, D {cost.d_params:,} ({binary((cost.g_params + cost.d_params) * FLOAT_BYTES)} "
                  "of fp32 weights together).", "",
                  "| stage | G params | D params | G fwd FLOP/img | D fwd FLOP/img | train FLOP/img | act/img | "
                  "minibatch | fixed | peak memory |", "|---|---|---|---|---|---|---|---|---|---|"]
        for c in cost.stages:
            lines.append(f"| {c.label} | {si(c.g_params)} | {si(c.d_params)} | {si(c.g_forward_flops)} | "
                         f"{si(c.d_forward_flops)} | {si(c.train_flops_per_image)} | {binary(c.activation_bytes_per_image)} | "
                         f"{c.minibatch} | {binary(c.fixed_bytes)} | {binary(c.memory_bytes())} |")
        times = ", ".join(f"{name} {duration(cost.total_flops / rate)}" for name, rate, _ in DOC_RATES)
        lines += ["", f"Schedule: {si(cost.total_images)} images, {si(cost.total_flops, 'FLOP')}; projected: {times}.", ""]
    return "\n".join(lines)


def check_docs() -> bool:
    """True when the committed cost section of docs/spec.md equals the generated one."""
    return generated.is_current(DOCS_PATH, DOCS_BEGIN, DOCS_END, docs_markdown())


def main(argv: list[str] | None = None) -> int:
    """``python -m progan_zoo.compiler.cost --docs``: rewrite (or ``--check``) the cost section of docs/spec.md."""
    return generated.command("python -m progan_zoo.compiler.cost", DOCS_PATH, DOCS_BEGIN, DOCS_END, docs_markdown, argv)


if __name__ == "__main__":
    import sys

    # Run the package's copy of this module, not a second copy under the name __main__.
    from progan_zoo.compiler.cost_report import main as _main
    sys.exit(_main())
