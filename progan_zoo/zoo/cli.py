"""Subcommands of the zoo: evaluate, export, generate, interpolate, publish, models, leaderboard.

No torch at module level: ``progan-zoo --help`` imports this file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from progan_zoo import argtypes as at
from progan_zoo.errors import UsageError


SAMPLES = at.integer(1, 1024)      # images in a saved model's samples.png


TRUNCATION_HELP = ("truncation trick: redraw every latent component with |z_i| > PSI inside [-PSI, PSI] "
                   "(PSI > 0; smaller = more typical, less varied images; default: off)")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="a registered name (see `progan-zoo models`), a saved model folder, hf-hub:ORG/NAME[@REV], "
                        "or a run directory / checkpoint")
    p.add_argument("--resolution", type=at.power_of_two, default=None, help="use the lower-resolution generator inside the model")
    p.add_argument("--checkpoint", default=None, help="for a run directory: which checkpoint (default: the newest)")
    p.add_argument("--device", type=at.device, default=None, help="torch device, e.g. cuda or cpu (default: cuda if available)")


def _device(name: str | None) -> str:
    import torch

    return name or ("cuda" if torch.cuda.is_available() else "cpu")


def _load(args: argparse.Namespace):
    from .loader import load

    return load(args.model, resolution=args.resolution, device=_device(args.device), checkpoint=args.checkpoint)


# ---------------------------------------------------------------------------------------- export
def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="RUN_DIR",
                   help="a run directory, a checkpoint folder, or a saved model folder (to export a lower stage)")
    p.add_argument("out", metavar="OUT", type=at.out_dir, help="the saved model folder to write")
    p.add_argument("--checkpoint", default=None,
                   help="which checkpoint of the run: a name (ckpt-000150000), images shown, or 'latest' (default)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resolution", type=at.power_of_two, default=None,
                   help="export the generator of this resolution (default: the stage the run has reached)")
    g.add_argument("--stage", type=at.integer(0, 11), default=None, help="export this stage (0 is 4x4)")
    p.add_argument("--name", default=None, help="model name in metadata and card (default: OUT's folder name)")
    p.add_argument("--dataset", default=None, help="dataset id for the card (default: from the spec's data.source)")
    p.add_argument("--license", default=None, help="licence id for the card (default: the spec's licence)")
    p.add_argument("--with-training", action="store_true",
                   help="also store the raw G and D (prefixed G.* and D.*) to fine-tune from")
    p.add_argument("--samples", type=SAMPLES, default=64, help="images in samples.png (default 64)")
    p.add_argument("--seed", type=at.seed, default=0, help="seed of samples.png (default 0)")
    p.add_argument("--force", action="store_true", help="replace OUT if it is an existing saved model")


def run_export(args: argparse.Namespace) -> int:
    from .export import export_model
    from .records import read_metadata

    out = export_model(args.source, args.out, checkpoint=args.checkpoint, resolution=args.resolution,
                       stage=args.stage, name=args.name, dataset=args.dataset, license=args.license,
                       with_training=args.with_training, samples=args.samples, seed=args.seed, force=args.force)
    meta = read_metadata(out)
    print(f"wrote {out}: {meta.name}, {meta.resolution}x{meta.resolution} (stage {meta.stage}), "
          f"{meta.images_shown or '?'} images shown, weights sha256 {meta.weights['sha256'][:16]}...")
    if float(meta.alpha) < 1.0:
        print(f"note: the checkpoint was fading in its newest resolution (alpha {meta.alpha:.3f}); the model "
              "samples with that blend. Export a later checkpoint, or --resolution one lower, for a settled network.")
    return 0


# ---------------------------------------------------------------------------------------- generate
def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--n", type=at.integer(1, 100_000), default=64, help="number of images, at most 100000 (default 64)")
    p.add_argument("--seed", type=at.seed, default=0, help="latent seed; the same seed gives the same images (default 0)")
    p.add_argument("--out", type=at.out_file, default="grid.png", help="PNG grid to write (default grid.png)")
    p.add_argument("--cols", type=at.integer(1, 100_000), default=None, help="grid columns (default: about sqrt(n))")
    p.add_argument("--separate", metavar="DIR", type=at.out_dir, default=None, help="also write each image as DIR/000000.png ...")
    p.add_argument("--truncation", metavar="PSI", type=at.truncation, default=None, help=TRUNCATION_HELP)
    cls = p.add_mutually_exclusive_group()
    cls.add_argument("--class", dest="cls", metavar="NAME|INDEX", default=None,
                     help="conditional models: images of this class, by name or index (default: classes in turn)")
    cls.add_argument("--per-class", type=at.integer(1, 10_000), metavar="K", default=None,
                     help="conditional models: a grid of one row per class, K images each (same latents per row)")


def run_generate(args: argparse.Namespace) -> int:
    from .classes import class_grid_images
    from .images import grid, image_format, save_grid, to_pil

    if args.cols is not None and args.cols > args.n:
        raise UsageError(f"--cols {args.cols}: more columns than images (--n {args.n}) (hint: leave --cols out)")
    image_format(Path(args.out))  # a name it cannot write is refused before any work
    G = _load(args)
    if (args.cls is not None or args.per_class) and not G.label_size:
        raise UsageError(f"{args.model}: is unconditional; --class and --per-class need a conditional model")
    if args.per_class:
        if args.truncation is not None:
            raise UsageError("--per-class with --truncation: not supported together (hint: drop one of them)")
        images = class_grid_images(G, args.per_class, seed=args.seed)
        args.n, args.cols = len(images), args.per_class
    else:
        images = G.sample(args.n, seed=args.seed, truncation=args.truncation,
                          labels=None if args.cls is None else G.class_index(args.cls))
    out = save_grid(images, args.out, cols=args.cols)
    if args.separate:
        d = Path(args.separate)
        d.mkdir(parents=True, exist_ok=True)
        for i in range(images.shape[0]):
            to_pil(grid(images[i: i + 1], 1)).save(d / f"{i:06d}.png")
    what = f", class {G.class_names[G.class_index(args.cls)]}" if args.cls is not None else \
        f", one row per class ({G.label_size})" if args.per_class else ""
    psi = f", truncation {args.truncation:g}" if args.truncation is not None else ""
    print(f"wrote {out}: {args.n} images{what}, {G.resolution}x{G.resolution}, seed {args.seed}{psi}, from {G.source}")
    return 0


# ---------------------------------------------------------------------------------------- interpolate
def add_interpolate_arguments(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--out", type=at.out_file, default="walk.gif", help="GIF to write (default walk.gif)")
    p.add_argument("--seeds", type=at.seed_list, default=[0, 1, 2, 3],
                   help="key frames: one latent per seed, visited in order and back to the first (default 0,1,2,3)")
    p.add_argument("--steps", type=at.integer(1, 1000), default=24, help="frames between two key frames, at most 1000 (default 24)")
    p.add_argument("--method", choices=("slerp", "lerp"), default="slerp",
                   help="slerp: along the latent sphere (default; G normalizes z, so only direction matters); "
                        "lerp: straight lines")
    p.add_argument("--fps", type=at.real(least=0.01, most=100.0), default=24.0, help="frames per second, 0.01 to 100 (default 24)")
    p.add_argument("--upscale", type=at.integer(1, 64), default=None,
                   help="nearest-neighbour enlargement of each frame (default: to at least 256 px)")
    p.add_argument("--truncation", metavar="PSI", type=at.truncation, default=None, help=TRUNCATION_HELP)
    p.add_argument("--class", dest="cls", metavar="NAME|INDEX", default=None,
                   help="conditional models: the class every frame shows (default: the first class)")


def run_interpolate(args: argparse.Namespace) -> int:
    from .images import grid, image_format, latent_walk, save_gif
    from progan_zoo.data.latents import seed_latents

    if len(args.seeds) < 2:
        raise UsageError("--seeds needs at least two seeds, e.g. 0,1")
    image_format(Path(args.out), animated=True)  # a name it cannot write is refused before any work
    G = _load(args)
    keys = seed_latents(args.seeds, G.z_dim, truncation=args.truncation)
    z = latent_walk(keys, args.steps, args.method)
    if args.cls is not None and not G.label_size:
        raise UsageError(f"{args.model}: is unconditional; --class needs a conditional model")
    # A conditional walk keeps one class (without labels, sample() would cycle classes frame by frame).
    images = G.generate(z, labels=G.class_index(args.cls or 0) if G.label_size else None)
    frames = [grid(images[i: i + 1], 1) for i in range(images.shape[0])]
    up = args.upscale or max(1, 256 // G.resolution)
    out = save_gif(frames, args.out, fps=args.fps, upscale=up)
    print(f"wrote {out}: {len(frames)} frames, {args.method} through seeds {','.join(map(str, args.seeds))}, "
          f"{G.resolution}x{G.resolution} x{up}")
    return 0


# ---------------------------------------------------------------------------------------- publish
def add_publish_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="RUN_OR_FOLDER", help="a saved model folder, or a run (exported first)")
    dest = p.add_mutually_exclusive_group(required=True)
    dest.add_argument("--repo", metavar="ORG/NAME", help="Hugging Face Hub model repo (created if needed)")
    dest.add_argument("--to", metavar="DIR", type=at.out_dir, help="a local registry folder instead of the Hub")
    p.add_argument("--revision", default=None, help="Hub branch to commit to (created if needed; default main)")
    p.add_argument("--private", action="store_true", help="create the Hub repo private")
    p.add_argument("--name", default=None, help="model name (default: the folder's or the repo's name)")
    p.add_argument("--message", default=None, help="commit message")
    p.add_argument("--checkpoint", default=None, help="for a run: which checkpoint (default: the newest)")


def run_publish(args: argparse.Namespace) -> int:
    from .publish import publish

    if args.to and (args.revision or args.private):
        raise UsageError("--revision and --private apply to --repo (the Hub), not --to")
    if args.repo:
        from .registry import parse_hub_ref

        repo, rev = parse_hub_ref(args.repo)
        if rev:
            raise UsageError(f"--repo {args.repo}: give the branch with --revision, not @")
    info = publish(args.source, repo=args.repo, to=args.to, revision=args.revision, private=args.private,
                   name=args.name, message=args.message, checkpoint=args.checkpoint)
    if args.repo:
        print(f"published hf-hub:{info['repo']}" + (f"@{info['revision']}" if info["revision"] != "main" else "")
              + f" (commit {str(info.get('commit'))[:12]}): {info.get('commit_url') or info['url']}")
        print(f"load it with: progan_zoo.load(\"hf-hub:{info['repo']}\")")
    else:
        print(f"published {info['name']} to {info['folder']} (registry {info['registry']})"
              + (f"; previous version kept in {info['previous']}" if info.get("previous") else ""))
        print(f"use it with: PROGAN_ZOO_REGISTRY={Path(info['registry']).parent} progan-zoo generate {info['name']}"
              f"  (or `progan-zoo models --add {info['name']} {info['folder']}`)")
    return 0


# ---------------------------------------------------------------------------------------- models
def add_models_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default=None, help="only names matching this wildcard, e.g. 'mnist*'")
    p.add_argument("--add", nargs=2, metavar=("NAME", "TARGET"),
                   help="register NAME in the user registry; TARGET is a folder or hf-hub:ORG/NAME[@REV]")
    p.add_argument("--remove", metavar="NAME", help="remove NAME from the user registry")
    p.add_argument("--registry", type=at.out_file, default=None, help="registry file for --add/--remove (default: the user registry)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run_models(args: argparse.Namespace) -> int:
    from . import registry as R

    if args.add or args.remove:
        file = Path(args.registry) if args.registry else R.default_user_registry()
        if args.add:
            name, target = args.add
            if target.startswith(R.HUB_PREFIX):
                repo, rev = R.parse_hub_ref(target)
                entry = {"hub": repo, "revision": rev or "main"}
            else:
                from .records import read_metadata

                read_metadata(target)  # a clear error now rather than at load time
                entry = {"folder": str(Path(target).resolve())}
            R.add_entry(file, name, entry)
            print(f"added {name} -> {target} to {file}")
        if args.remove:
            if not R.remove_entry(file, args.remove):
                raise UsageError(f"{file}: has no model {args.remove!r}")
            print(f"removed {args.remove} from {file}")
        return 0
    entries = [e for n, e in R.all_entries().items() if n in set(R.list_models(args.pattern))]
    if args.json:
        print(json.dumps([{"name": e.name, "kind": e.kind, "where": e.where, "location": e.location,
                           "imported": e.imported if e.kind == "official" else None,
                           "official_file": e.official_file, "download": e.download,
                           "revision": e.revision, "registry": e.registry, "dataset": e.dataset,
                           "resolution": e.resolution, "description": e.description} for e in entries], indent=2))
        return 0
    rows = [("name", "status", "resolution", "dataset", "where")]
    for e in entries:
        status = {"folder": "local", "hub": "hub", "unpublished": "not published",
                  "official": "imported" if e.imported else "not imported"}[e.kind]
        rows.append((e.name, status, str(e.resolution or "-"), str(e.dataset or "-"), e.where))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\nregistries: {R.SHIPPED} (shipped), " + ", ".join(str(p) for p in R.user_registry_paths()) + " (user)")
    print(f"zoo folder (imported official networks): {R.zoo_models_dir()}")
    return 0


# ---------------------------------------------------------------------------------------- leaderboard
def add_leaderboard_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metric", default="swd_avg",
                   help="sort by this metric: swd_avg (default), fid, kid, msssim or a level such as swd_32")
    p.add_argument("--html", metavar="DIR", type=at.out_dir, default=None, help="also write DIR/index.html with the sample grids")
    p.add_argument("--dataset", default=None, help="only this dataset id")
    p.add_argument("--no-hub", action="store_true", help="only local models (no network)")


def run_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard import run

    return run(metric=args.metric, html_dir=args.html, include_hub=not args.no_hub, dataset=args.dataset)


# ---------------------------------------------------------------------------------------- evaluate
def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET",
                   help="a run directory, a checkpoint folder, or a zoo model (name, folder or hf-hub:ORG/NAME)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated: swd, fid, kid, msssim (default: the spec's evaluation.metrics)")
    p.add_argument("--num", type=at.integer(1, 1_000_000), default=None,
                   help="images per metric, generated and real, for every metric (default: the spec's "
                        "evaluation.num_images, per metric; reals are cycled when the data has fewer)")
    p.add_argument("--data", default=None,
                   help="real data: a dataset cache, image folder or built-in name (default: the spec's data.source)")
    p.add_argument("--out", type=at.out_file, default=None, help="write the results as JSON here (default: TARGET/metrics-*.json for "
                                               "runs, else results.json)")
    p.add_argument("--seed", type=at.seed, default=0, help="seed of latents and metric randomness (default 0)")
    p.add_argument("--checkpoint", default=None, help="for a run: which checkpoint (default: the newest)")
    p.add_argument("--resolution", type=at.power_of_two, default=None,
                   help="evaluate the lower-resolution generator inside, at its own size (default for a run: its "
                        "current stage, upsampled to the final resolution as the official code scores snapshots)")
    p.add_argument("--device", type=at.device, default=None, help="torch device (default: cuda if available)")
    p.add_argument("--batch-size", type=at.integer(1, 4096), default=64, help="generator batch size (default 64)")
    p.add_argument("--record", action="store_true",
                   help="for a saved model folder: store the results in metadata.json and re-render its card")
    mirror = p.add_mutually_exclusive_group()
    mirror.add_argument("--mirror", dest="mirror", action="store_true", default=None,
                        help="mirror the reals at random, as the official evaluation does for runs trained with "
                             "mirror augmentation (default: what the run or the spec trained with)")
    mirror.add_argument("--no-mirror", dest="mirror", action="store_false", help="never mirror the reals")
    p.add_argument("--per-class", action="store_true",
                   help="conditional models: also score each class on its own (NUM images of the class against "
                        "the data's images of that class, cycled), and the class agreement of a 1-NN classifier")


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_target

    return evaluate_target(args)


# ---------------------------------------------------------------------------------------- import
def add_import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE",
                   help="an official ProGAN release pickle (karras2018iclr-*.pkl, network-snapshot-*.pkl) or a "
                        "pytorch_GAN_zoo PGAN checkpoint (.pt); read without running anything stored in it")
    p.add_argument("--out", metavar="DIR", type=at.out_dir, default=None,
                   help="the saved model folder to write (default: the zoo folder, ZOO/models/NAME; "
                        "see `progan-zoo models`)")
    p.add_argument("--name", default=None,
                   help="model name (default: from the file name, e.g. celebahq-1024 for "
                        "karras2018iclr-celebahq-1024x1024.pkl)")
    p.add_argument("--samples", type=SAMPLES, default=16, help="images in samples.png (default 16)")
    p.add_argument("--force", action="store_true", help="replace DIR if it is an existing saved model")


def run_import(args: argparse.Namespace) -> int:
    from .importer import default_name, import_model
    from .records import read_metadata
    from .registry import zoo_models_dir

    name = args.name or default_name(Path(args.file))
    out = Path(args.out) if args.out else zoo_models_dir() / name
    import_model(args.file, out, name=name, force=args.force, samples=args.samples)
    meta = read_metadata(out)
    prov = meta.provenance
    print(f"imported {args.file} ({prov['format']}, sha256 {prov['sha256'][:16]}...) -> {out}: {meta.name}, "
          f"{meta.resolution}x{meta.resolution} (stage {meta.stage}), weights {', '.join(meta.weights['contents'])}, "
          f"licence {meta.license}; no code from the file was run")
    print(f"load it with: progan_zoo.load(\"{out}\")  or  progan-zoo generate {out} --n 16")
    return 0


# ---------------------------------------------------------------------------------------- fetch
def add_fetch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="a registered official network (see `progan-zoo models`)")
    p.add_argument("--force", action="store_true",
                   help="download and import again even if it is imported (the hash must still match)")


def run_fetch(args: argparse.Namespace) -> int:
    from .download import fetch_official
    from .records import read_metadata
    from .registry import resolve

    entry = resolve(args.name)
    if entry.kind != "official":
        raise UsageError(f"{args.name}: a {entry.kind} entry, not an official network to download; "
                         "`progan-zoo generate NAME` loads it directly")
    already = entry.imported and not args.force
    out = fetch_official(entry, force=args.force)
    dl = read_metadata(out).extra.get("download") or {}
    how = {"pinned": "matches its published sha256", "hash-prefix": "matches the sha256 prefix in its file name",
           "first-download": "recorded as the first download's sha256 (nothing is published)",
           "first-download-match": "matches the first download's sha256"}.get(dl.get("verified"), "not recorded")
    print(f"{args.name}: {'already imported' if already else 'downloaded and imported'} at {out}; "
          f"sha256 {str(dl.get('sha256', '?'))[:16]}... {how}")
    return 0
