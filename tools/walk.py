"""Count how often a walk through the code returns to a file it had left.

The walk: the calls made by one command, as a tree of the package's functions (nested calls of
lower floors, the compiler, nn, data and metrics, are left out: the walk is through the zoo and
train shelves; property reads, dunders and methods of records are reading a record, not steps), read depth first with
each function expanded the first time it is met only (a "place"). A file is *visited* once per run of consecutive places in it; a walk that passes each
shelf once visits each file once.

    python tools/walk.py            # publish (a run -> a local registry) and evaluate_target
                                    # (a run, then a saved folder with --record)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "progan_zoo"
# Floors below the walk (the compiler is outside PACKAGE): nn, data, metrics and the shared helpers.
LOWER = ["nn", "data", "metrics", "registry.py", "errors.py", "fsutil.py"]


def _in_scope(filename: str) -> bool:
    p = Path(filename)
    try:
        rel = p.resolve().relative_to(PACKAGE)
    except ValueError:
        return False
    return rel.parts[0] not in LOWER and str(rel) not in LOWER


def _is_record_access(frame) -> bool:
    """A property read, a dunder, or a method of a record (a dataclass such as ``ModelMetadata``):
    reading, building or copying the record that travels, not a step of the walk."""
    name = frame.f_code.co_name
    if name.startswith("__") and name.endswith("__"):
        return True
    owner = frame.f_locals.get("self", frame.f_locals.get("cls"))
    if owner is None:
        return False
    kind = owner if isinstance(owner, type) else type(owner)
    return dataclasses.is_dataclass(kind) or isinstance(getattr(kind, name, None), property)


class Tracer:
    """The call tree of in-scope functions: node = (file, qualified name), children in call order."""

    def __init__(self) -> None:
        self.children: dict[tuple, list[tuple]] = {}
        self.stack: list[tuple] = [(None, ("<root>", "<root>"))]   # (frame, node) of open in-scope calls

    def __call__(self, frame, event, arg):  # the sys.setprofile hook
        if event == "call":
            code = frame.f_code
            if _in_scope(code.co_filename) and not code.co_name.startswith("<") and not _is_record_access(frame):
                node = (str(Path(code.co_filename).resolve().relative_to(REPO)), code.co_qualname)
                kids = self.children.setdefault(self.stack[-1][1], [])
                if node not in kids:
                    kids.append(node)
                self.stack.append((frame, node))
        elif event == "return" and self.stack[-1][0] is frame:
            self.stack.pop()

    def places(self) -> list[tuple]:
        seen: set[tuple] = set()
        out: list[tuple] = []

        def walk(node: tuple) -> None:
            for kid in self.children.get(node, []):
                if kid in seen:
                    continue
                seen.add(kid)
                out.append(kid)
                walk(kid)

        walk(("<root>", "<root>"))
        return out


def visits(places: list[tuple]) -> Counter:
    """File -> number of runs of consecutive places in it."""
    runs: Counter = Counter()
    last = None
    for file, _ in places:
        if file != last:
            runs[file] += 1
        last = file
    return runs


def trace(fn) -> tuple[list[tuple], Counter]:
    t = Tracer()
    sys.setprofile(t)
    try:
        fn()
    finally:
        sys.setprofile(None)
    places = t.places()
    return places, visits(places)


def report(title: str, places: list[tuple], runs: Counter, verbose: bool) -> None:
    returns = sum(n - 1 for n in runs.values())
    print(f"{title}: {len(places)} places in {len(runs)} files, {returns} returns to a file it had left; "
          f"most visits of one file: {max(runs.values()) if runs else 0}")
    for f, n in runs.most_common():
        print(f"  {n}  {f}")
    if verbose:
        for f, q in places:
            print(f"    {f}: {q}")


def walks() -> list[tuple[str, list[tuple], Counter]]:
    """Make a tiny run, then trace publish (the run -> a local registry) and evaluate_target (the run;
    its exported folder with --record): [(title, places, visits per file)]."""
    sys.path.insert(0, str(REPO / "tests"))
    import torch

    from fingerprint import TINY, _make_images, _module

    make_run = _module(REPO / "tests" / "zoo" / "conftest.py", "_walk_zoo_conftest").make_run

    from progan_zoo.cli import main as cli

    torch.set_num_threads(1)
    out = []
    env = {"HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, env):
        root = Path(tmp)
        os.environ.update({"PROGAN_ZOO_REGISTRY": str(root / "reg.json"), "PROGAN_ZOO_HOME": str(root / "home")})
        run = make_run(root / "run", TINY)
        images = _make_images(root / "reals", 32, 16)
        cli(["export", str(run), str(root / "model"), "--samples", "4"])  # warm imports, and a folder to score
        ev = ["evaluate", "--metrics", "swd", "--num", "32", "--data", str(images), "--device", "cpu",
              "--batch-size", "16", "--out", str(root / "e.json")]
        cli([ev[0], str(run), *ev[1:]])
        from progan_zoo.zoo.publish import publish

        out.append(("publish(run, to=DIR)", *trace(lambda: publish(run, to=root / "registry"))))
        from progan_zoo.cli import build_parser
        from progan_zoo.zoo.evaluate import evaluate_target

        for title, argv in (("evaluate_target(run)", [ev[0], str(run), *ev[1:]]),
                            ("evaluate_target(folder, --record)", [ev[0], str(root / "model"), *ev[1:], "--record"])):
            parsed = build_parser().parse_args(argv)
            out.append((title, *trace(lambda: evaluate_target(parsed))))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="also list the places in walk order")
    p.add_argument("--below", action="append", default=[], metavar="NAME",
                   help="also treat progan_zoo/NAME as a floor below the walk (e.g. zoo/weights.py)")
    args = p.parse_args(argv)
    LOWER.extend(args.below)
    for title, places, runs in walks():
        report(title, places, runs, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
