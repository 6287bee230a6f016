"""A fingerprint of what the package makes, for refactors that must not change behaviour.

For every shipped spec: the sha256 of G's and D's state_dicts compiled with a fixed seed, their
parameter counts and the compile CLI's JSON. For every shipped model: the loaded weights, samples,
metadata.json and README.md as the code re-renders them. Then the paths a saved model travels, run
through the command line on a tiny seeded run: export (from the run, a lower stage, with training
nets, a re-export of a folder), load from a run, ``import`` of the official and pytorch_GAN_zoo
fixtures, ``evaluate --record`` on a folder of images, ``publish --to`` and the leaderboard. Last, the
spec JSON Schema and the generated docs sections.

    python tests/fingerprint.py                 # print the fingerprint as JSON
    python tests/fingerprint.py --write         # record it as tests/fixtures/fingerprint.json
    python tests/fingerprint.py --dump DIR      # also keep every file it hashed under DIR (to diff)

``tests/test_fingerprint.py`` asserts that today's fingerprint equals the recorded one. Volatile
fields (creation times, dates, temporary paths, the checkout's path) are normalised before hashing.

The fixture was first recorded from the tree before the re-shelving refactor; after merging the
spec-version work (whose outputs differ: resolved spec hashes, spec_version 2) it was recorded again
from the merged tree, after checking that it equals the one of main before the merge (old layout)
file for file, the checkout's path aside.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "fingerprint.json"
TINY = REPO / "tests" / "fixtures" / "specs" / "tiny_16.yaml"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T[0-9:.+\-Z]+)?")


def _module(path: Path, name: str) -> Any:
    """A helper module of the tests, loaded by path (sys.path and other tests' imports untouched)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fixtures_root() -> Path | None:
    """The official-format fixtures, found as the conformance tests find them."""
    return _module(REPO / "tests" / "conformance" / "official_fixtures.py", "_fp_official_fixtures").fixtures_root()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _state_sha(module: Any) -> str:
    """sha256 over a state_dict's names, shapes, dtypes and bytes, in key order."""
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        t = v.detach().cpu().contiguous()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


class _Ctx:
    """Normalises volatile text (the temporary root, dates) and keeps hashed files for diffing."""

    def __init__(self, root: Path, dump: Path | None) -> None:
        self.root = root
        self.dump = dump

    def norm(self, text: str, repo: bool = True) -> str:
        text = text.replace(str(self.root.resolve()), "<ROOT>").replace(str(self.root), "<ROOT>")
        if repo:  # the checkout's location (e.g. specs' paths in compile output)
            text = text.replace(str(REPO), "<REPO>")
        return _DATE.sub("<DATE>", text)

    def text(self, key: str, text: str, repo: bool = True) -> str:
        """``repo=False`` for committed files: their bytes do not depend on where the checkout is, and
        the shipped model's record names the folder it was trained in, which may be this checkout."""
        text = self.norm(text, repo)
        if self.dump is not None:
            path = self.dump / (key.replace("/", "__") + ".txt")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return _sha(text.encode("utf-8"))

    def folder(self, key: str, folder: Path, repo: bool = True) -> dict[str, str]:
        """Every file of a saved model folder: binary files by hash, text files normalised."""
        out = {}
        for f in sorted(folder.iterdir()):
            if f.suffix in (".json", ".md", ".yaml"):
                out[f.name] = self.text(f"{key}/{f.name}", f.read_text(encoding="utf-8"), repo)
            else:
                out[f.name] = _sha(f.read_bytes())
        return out


def _cli(*argv: str) -> str:
    """stdout of ``progan-zoo ARGV`` run in this process; a non-zero exit is an error."""
    from progan_zoo.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(list(argv))
    if rc != 0:
        raise RuntimeError(f"progan-zoo {' '.join(argv)} exited {rc}")
    return buf.getvalue()


def specs(ctx: _Ctx) -> dict[str, Any]:
    import torch

    from progan_zoo.compiler import compile_spec

    out = {}
    for path in sorted((REPO / "specs").glob("*.yaml")):
        torch.manual_seed(0)
        c = compile_spec(path)
        out[path.name] = {
            "G": _state_sha(c.G), "D": _state_sha(c.D),
            "params_G": sum(p.numel() for p in c.G.parameters()),
            "params_D": sum(p.numel() for p in c.D.parameters()),
            "compile_json": ctx.text(f"compile/{path.stem}", _cli("compile", str(path), "--json")),
            "compile_graph": ctx.text(f"graph/{path.stem}", _cli("compile", str(path), "--stop-after", "graph",
                                                                 "--json")),
            "compile_cost": ctx.text(f"cost/{path.stem}", _cli("compile", str(path), "--cost")),
        }
    out["specs_listing"] = ctx.text("specs_listing", _cli("specs", "--json"))
    return out


def shipped_models(ctx: _Ctx) -> dict[str, Any]:
    from progan_zoo import load
    from progan_zoo.zoo.card import render_card

    out = {}
    for folder in sorted((REPO / "progan_zoo" / "zoo" / "models").iterdir()):
        if not (folder / "metadata.json").is_file():
            continue
        G = load(folder)
        meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        meta_dict = G.metadata if isinstance(G.metadata, dict) else G.metadata.to_dict()
        out[folder.name] = {
            "weights": _state_sha(G.G), "samples": _sha(G.sample(8, seed=0).numpy().tobytes()),
            "metadata_read_back": meta_dict == meta,
            "card_rendered": ctx.text(f"models/{folder.name}/card", render_card(G.metadata, hub_repo=(
                meta.get("hub") or {}).get("repo")), repo=False),
            "card_file": ctx.text(f"models/{folder.name}/README", (folder / "README.md").read_text(encoding="utf-8"),
                                  repo=False),
            "files": ctx.folder(f"models/{folder.name}", folder, repo=False),
        }
    return out


def _make_images(folder: Path, n: int, res: int) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def flows(ctx: _Ctx) -> dict[str, Any]:
    """The paths of a run to published models, through the command line."""
    # The zoo tests' seeded run (tiny_16: 4 -> 16 px).
    make_run = _module(REPO / "tests" / "zoo" / "conftest.py", "_fp_zoo_conftest").make_run

    from progan_zoo import load

    root = ctx.root
    out: dict[str, Any] = {}
    run = make_run(root / "run", TINY, nimg=3000, stage=2, alpha=0.75)
    G = load(run)
    meta = G.metadata if isinstance(G.metadata, dict) else G.metadata.to_dict()
    # What a run's generator says of itself (the record it carries may hold more keys than these).
    meta = {k: meta.get(k) for k in ("name", "spec", "resolution", "stage", "alpha", "images_shown", "dataset",
                                     "license", "training", "evaluation")}
    out["load_run"] = {"weights": _state_sha(G.G), "alpha": G.alpha,
                       "metadata": ctx.text("load_run/metadata", json.dumps(meta, indent=1))}
    G8 = load(run, resolution=8)
    out["load_run_8"] = {"weights": _state_sha(G8.G), "samples": _sha(G8.sample(4, seed=1).numpy().tobytes())}

    exports = {
        "full": ["export", str(run), str(root / "full"), "--samples", "4"],
        "training": ["export", str(run), str(root / "training"), "--samples", "4", "--with-training",
                     "--name", "tiny", "--dataset", "lfw-100", "--license", "MIT"],
        "stage1": ["export", str(run), str(root / "stage1"), "--stage", "1", "--samples", "4", "--checkpoint",
                   "3000"],
        "refolder": ["export", str(root / "training"), str(root / "refolder"), "--resolution", "8",
                     "--samples", "4", "--with-training"],
    }
    for key, argv in exports.items():
        _cli(*argv)
        out[f"export_{key}"] = ctx.folder(f"export_{key}", Path(argv[2]))

    fixtures = fixtures_root()
    if fixtures is None:
        raise RuntimeError("the import fixtures (tests/fixtures/official) are absent: set PROGAN_ZOO_FIXTURES")
    for case in ("tk_pgan_tiny/fused", "tk_pgan_tiny/unfused", "fbz_pgan_tiny"):
        src = fixtures / case
        f = next(p for p in sorted(src.iterdir()) if p.suffix in (".pkl", ".pt"))
        dest = root / ("import_" + case.replace("/", "_"))
        _cli("import", str(f), "--out", str(dest), "--name", "imp-tiny", "--samples", "4")
        out[dest.name] = ctx.folder(dest.name, dest)

    images = _make_images(root / "reals", 64, 16)
    ev = shutil.copytree(root / "full", root / "evaluated")
    text = _cli("evaluate", str(ev), "--metrics", "swd", "--num", "64", "--data", str(images), "--record",
                "--out", str(root / "eval.json"), "--device", "cpu", "--batch-size", "16")
    meta = json.loads((ev / "metadata.json").read_text())
    for e in meta.get("evaluation") or []:
        e.pop("date", None)
    out["evaluate_record"] = {"values": [e["values"] for e in meta["evaluation"]],
                              "settings": ctx.text("evaluate/settings", json.dumps(meta["evaluation"], indent=1)),
                              "card": ctx.text("evaluate/card", (ev / "README.md").read_text()),
                              "stdout_lines": len(text.splitlines())}
    out["evaluate_run"] = ctx.text("evaluate/run", json.dumps(
        {k: v for k, v in json.loads(_cli_quiet_eval(run, images, root)).items() if k not in ("time",)},
        indent=1, sort_keys=True))

    reg = root / "registry"
    _cli("publish", str(ev), "--to", str(reg), "--name", "tiny-evaluated")
    _cli("publish", str(run), "--to", str(reg))
    out["publish"] = {"registry": ctx.text("publish/registry", (reg / "registry.json").read_text()),
                      "tiny-evaluated": ctx.folder("publish/tiny-evaluated", reg / "tiny-evaluated")}
    out["publish"]["from_run"] = ctx.folder("publish/from_run", reg / "tiny-16")
    os.environ["PROGAN_ZOO_REGISTRY"] = str(reg)
    # The table's column widths follow the checkout's path length: alignment is not behaviour.
    board = re.sub(r" {2,}", "  ", re.sub(r"-{2,}", "--", _cli("leaderboard", "--no-hub").replace(str(REPO), "<REPO>")))
    out["leaderboard"] = ctx.text("leaderboard", board)
    return out


def _cli_quiet_eval(run: Path, images: Path, root: Path) -> str:
    dest = root / "eval-run.json"
    _cli("evaluate", str(run), "--metrics", "swd", "--num", "64", "--data", str(images), "--out", str(dest),
         "--device", "cpu", "--batch-size", "16")
    return dest.read_text()


def schema(ctx: _Ctx) -> dict[str, Any]:
    from progan_zoo.compiler import cost_report, reference
    from progan_zoo.compiler.schema import json_schema_text

    return {
        "schema_file": _sha((REPO / "compiler" / "spec.schema.json").read_bytes()),
        "schema_generated": ctx.text("schema", json_schema_text()),
        "schema_cli": ctx.text("schema_cli", _cli("compile", "--schema")),
        "reference_docs": ctx.text("reference_docs", reference.reference_markdown()),
        "cost_docs": ctx.text("cost_docs", cost_report.docs_markdown()),
        "docs_spec_md": _sha((REPO / "docs" / "spec.md").read_bytes()),
    }


def fingerprint(dump: Path | None = None) -> dict[str, Any]:
    """The whole fingerprint (a few minutes on two cores at most; torch threads pinned to one)."""
    import torch

    torch.set_num_threads(1)
    saved = {k: os.environ.get(k) for k in ("PROGAN_ZOO_REGISTRY", "PROGAN_ZOO_HOME", "HF_HOME", "HF_HUB_OFFLINE")}
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="progan-fp-") as tmp:
        root = Path(tmp)
        os.environ.update({"PROGAN_ZOO_REGISTRY": str(root / "user-registry.json"),
                           "PROGAN_ZOO_HOME": str(root / "home"), "HF_HOME": str(root / "hf"),
                           "HF_HUB_OFFLINE": "1"})
        os.chdir(root)
        try:
            ctx = _Ctx(root, dump)
            return {"specs": specs(ctx), "models": shipped_models(ctx), "flows": flows(ctx), "schema": schema(ctx)}
        finally:
            os.chdir(cwd)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help=f"record the fingerprint as {FIXTURE}")
    p.add_argument("--dump", type=Path, default=None, help="keep the normalised texts it hashed under DIR")
    args = p.parse_args(argv)
    fp = fingerprint(args.dump)
    text = json.dumps(fp, indent=1, sort_keys=True) + "\n"
    if args.write:
        FIXTURE.write_text(text, encoding="utf-8")
        print(f"wrote {FIXTURE}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
