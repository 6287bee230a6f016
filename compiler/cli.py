"""``progan-zoo compile SPEC``: run the compiler stage by stage and show what each stage made.

No torch at import time (``progan-zoo --help`` stays fast); the modules are built only when the
command runs to the end.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from progan_zoo import argtypes as at
from progan_zoo.errors import UsageError

STAGES = ("load", "validate", "graph")


def add_compile_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``progan-zoo compile``."""
    p.add_argument("spec", nargs="?", metavar="SPEC",
                   help="spec YAML file (e.g. specs/celebahq_1024.yaml) or a shipped spec's name (e.g. celebahq-1024)")
    p.add_argument("--stop-after", choices=STAGES, metavar="STAGE",
                   help="stop after this stage and show its output: load (keys and their line:col), "
                        "validate (OK and a summary), graph (nodes and edges)")
    p.add_argument("--graph", metavar="OUT", type=at.out_file, help="also write a picture of the layer graph with its fade paths: "
                                                  "OUT.dot, OUT.png or OUT.svg")
    p.add_argument("--fade", action="store_true", help="list the fade nodes (no weights) in the tables")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    p.add_argument("--schema", action="store_true", help="print the JSON Schema of spec files and exit")
    p.add_argument("--resolved", action="store_true",
                   help="print the resolved spec (every default of its spec_version written out, canonical "
                        "order and numbers) and exit; its sha256 is the model identity runs and cards record")
    # ---- cost model (compiler/cost.py): from the graph alone, nothing is allocated.
    cost = p.add_argument_group("cost", "parameters, FLOPs, memory and schedule time from the graph alone "
                                        "(the networks are not built)")
    cost.add_argument("--cost", action="store_true", help="print parameters, FLOPs and memory per stage and the "
                                                          "schedule's images and FLOPs (see docs/spec.md)")
    cost.add_argument("--rate", type=at.real(0.0, 1e9), metavar="IMG_PER_S", help="measured training images/s (implies --cost): "
                      "also print the projected wall time of the schedule")
    cost.add_argument("--rate-res", type=at.power_of_two, metavar="R", help="resolution --rate was measured at (default: the final one)")
    cost.add_argument("--rate-from", metavar="FILE", help="take the rate from benchmarks/bench_train.py --json output "
                                                          "or a run's log.jsonl (implies --cost)")
    cost.add_argument("--devices", type=at.integer(1, 65536), default=1, metavar="N", help="also project the time on N devices, "
                                                                        "assuming linear scaling (default: 1)")
    p.epilog = ("exit status: 0 when the spec compiles, 2 when it is invalid (one line: file:line:col: "
                "key.path: problem (hint: fix)).")


def _emit(args: argparse.Namespace, text: str, data: dict[str, Any]) -> None:
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text)


def run_compile(args: argparse.Namespace) -> int:
    """Run ``progan-zoo compile``; invalid specs raise SpecError (printed as one line, exit 2)."""
    from progan_zoo.compiler import summary

    if args.schema:
        from progan_zoo.compiler.schema import json_schema_text
        sys.stdout.write(json_schema_text())
        return 0
    if not args.spec:
        raise UsageError("give a SPEC file, e.g. progan-zoo compile specs/mnist_32.yaml (or --schema)")
    stop = args.stop_after
    want_cost = args.cost or args.rate is not None or args.rate_from is not None
    if want_cost:
        _check_cost_arguments(args)
    if args.resolved and (stop or want_cost or args.graph or args.json):
        raise UsageError("--resolved prints the resolved spec alone: drop --stop-after, --cost, --graph and --json")
    if args.graph and stop in ("load", "validate"):
        raise UsageError(f"--graph needs the graph stage: drop '--stop-after {stop}' or use '--stop-after graph'")

    from progan_zoo.compiler import compile_spec
    from progan_zoo.specs import resolve_spec
    # The build stage runs only when nothing stops before it: the cost tables need the graph alone.
    until = stop or ("validate" if args.resolved else "graph" if want_cost else "build")
    c = compile_spec(resolve_spec(args.spec), until=until)
    raw, spec, graph = c.raw, c.spec, c.graph
    if stop == "load":
        _emit(args, summary.load_report(raw),
              {"stage": "load", "file": raw.file, "sha256": raw.sha256, "keys": summary.load_summary(raw)})
        return 0
    if args.resolved:
        from progan_zoo.compiler.defaults import resolved_text
        sys.stdout.write(resolved_text(spec))
        return 0
    if stop == "validate":
        _emit(args, summary.validate_report(spec), {"stage": "validate", "ok": True, **summary.validate_summary(spec)})
        return 0

    from progan_zoo.compiler.graph import param_count
    if args.graph:
        from progan_zoo.compiler.draw import write_graph_picture
        how = write_graph_picture(graph, args.graph)
        print(f"wrote {args.graph} ({how})", file=sys.stderr if args.json else sys.stdout)
    if stop == "graph":
        _emit(args, summary.graph_report(graph), {"stage": "graph", **summary.graph_json(graph)})
        return 0
    if want_cost:
        return _run_cost(args, graph, spec, raw)

    for net, module in (("G", c.G), ("D", c.D)):
        built = sum(p.numel() for p in module.parameters())
        if built != param_count(graph, net):  # the graph's counts are what the table shows
            raise RuntimeError(f"internal error: built {net} has {built} parameters, the graph {param_count(graph, net)}")
    _emit(args, summary.compile_report(graph, spec, raw.file, fade=args.fade),
          {"stage": "build", **summary.compile_json(graph, spec, raw, fade=args.fade)})
    return 0


def _check_cost_arguments(args: argparse.Namespace) -> None:
    if args.stop_after in ("load", "validate", "graph"):
        raise UsageError(f"--cost reads the graph and prints its own tables: drop '--stop-after {args.stop_after}'")
    if args.rate is not None and args.rate_from is not None:
        raise UsageError("give --rate or --rate-from, not both")
    if args.rate_res is not None and args.rate is None:
        raise UsageError("--rate-res needs --rate IMG_PER_S")


def _run_cost(args: argparse.Namespace, graph: Any, spec: Any, raw: Any) -> int:
    """``compile --cost``: Table 2 from the graph, then the cost tables; nothing is built or allocated."""
    from progan_zoo.compiler import cost as cost_model
    from progan_zoo.compiler import cost_report, summary

    cost = cost_model.spec_cost(graph, spec)
    rate = None
    if args.rate is not None:
        try:
            rate = cost_model.rate_from_images(cost, args.rate, args.rate_res)
        except ValueError as exc:
            raise UsageError(f"--rate-res {args.rate_res}: {exc}") from None
    elif args.rate_from is not None:
        rate = cost_report.rate_from_file(cost, args.rate_from)
    _emit(args, summary.compile_report(graph, spec, raw.file, fade=args.fade) + "\n\n"
          + cost_report.cost_report(cost, rate, args.devices),
          {"stage": "cost", **summary.compile_json(graph, spec, raw, fade=args.fade),
           "cost": cost_report.cost_json(cost, rate, args.devices)})
    return 0


# ---------------------------------------------------------------------------------------- migrate
def add_migrate_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``progan-zoo migrate``."""
    p.add_argument("spec", metavar="SPEC", help="spec YAML file to rewrite to the newest spec_version")
    p.add_argument("--out", metavar="PATH", help="write the migrated spec here ('-': print it) instead of "
                                                 "rewriting SPEC in place")
    p.epilog = ("The migrated file has the same resolved form (progan-zoo compile SPEC --resolved), so it names "
                "the same model: every value the old version took by default, where the newest differs, is "
                "written out. Comments and layout are kept. exit status 2 for an invalid spec.")


def run_migrate(args: argparse.Namespace) -> int:
    """Rewrite a spec to the newest spec_version with the same resolved meaning."""
    from pathlib import Path

    from progan_zoo.compiler import compile_spec
    from progan_zoo.compiler.defaults import NEWEST, resolved_sha256
    from progan_zoo.compiler.migrate import migrate_text
    from progan_zoo.fsutil import replaced_atomically

    raw = compile_spec(args.spec, until="load").raw
    old_version = raw.data.get("spec_version")
    text = migrate_text(raw.text, raw.file)
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.out) if args.out else Path(args.spec)
    if text != raw.text or out != Path(args.spec):
        with replaced_atomically(out) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
    digest = resolved_sha256(compile_spec(out, text=text, until="validate").spec)
    what = "already at" if old_version == NEWEST else f"spec_version {old_version} ->"
    print(f"{out}: {what} spec_version {NEWEST}; resolved sha256 {digest} (unchanged)")
    return 0


# ---------------------------------------------------------------------------------------- specs
def add_specs_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``progan-zoo specs``."""
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    p.epilog = "Train or compile one by name: progan-zoo train mnist-32, progan-zoo compile celebahq-1024."


def run_specs(args: argparse.Namespace) -> int:
    """List the shipped specs: name, resolution, G and D parameters (from the graph, no torch), description."""
    from progan_zoo.compiler import compile_spec
    from progan_zoo.compiler.graph import param_count
    from progan_zoo.compiler.summary import human
    from progan_zoo.specs import spec_files

    rows = []
    for name, path in spec_files().items():
        c = compile_spec(path, until="graph")
        spec, graph = c.spec, c.graph
        rows.append({"name": name, "resolution": spec.architecture.resolution, "params_G": param_count(graph, "G"),
                     "params_D": param_count(graph, "D"), "description": spec.description or "", "file": str(path)})
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    table = [("name", "res", "G params", "D params", "description")]
    table += [(r["name"], str(r["resolution"]), human(r["params_G"]), human(r["params_D"]), r["description"])
              for r in rows]
    widths = [max(len(row[j]) for row in table) for j in range(4)]
    for row in table:
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row[:4], widths)))
              + "  " + row[4])
    return 0
