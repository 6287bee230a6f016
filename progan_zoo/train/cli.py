"""``progan-zoo train`` and ``progan-zoo dataset``. Torch is imported only when a command runs."""

from __future__ import annotations

import argparse
import sys

from progan_zoo import argtypes as at


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", nargs="?", help="spec YAML file or a shipped spec's name, e.g. mnist-32 "
                                           "(progan-zoo specs lists them; optional with --resume: the run's own spec.yaml)")
    p.add_argument("--data", metavar="PATH_OR_NAME",
                   help="built-in dataset (mnist, lfw-100), dataset cache folder, image folder or zip (default: the spec's data.source)")
    p.add_argument("--out", metavar="DIR", type=at.out_dir, help="run directory (default: runs/<spec name>-<date-time>, or the resumed run's)")
    p.add_argument("--kimg", type=at.kimg, metavar="N", help="train until N thousand real images shown (default: the spec's total_kimg)")
    p.add_argument("--resume", metavar="RUN_OR_CKPT", help="continue a run directory (newest checkpoint) or a ckpt-XXXXXXXXX folder exactly")
    p.add_argument("--init-from", metavar="MODEL",
                   help="fine-tune: start from a saved model's G_ema, G and D (a registered name, folder or "
                        "hf-hub:ORG/NAME) at its stage of the schedule; the spec's networks must match its weights")
    p.add_argument("--seed", type=at.seed, default=0, help="seed of weights, latents, data order (default: 0; a resumed run keeps its own)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto = cuda if available)")
    p.add_argument("--tick-kimg", type=at.kimg, metavar="N", help="log line and sample grid every N kimg (default: total/30, at least 1)")
    p.add_argument("--snapshot-ticks", type=at.count, default=5, metavar="N", help="checkpoint every N ticks, and at the end (default: 5)")
    p.add_argument("--keep", type=at.integer(0, what="an integer >= 0 (0 keeps all)"), default=3, metavar="N", help="keep the newest N checkpoints (default: 3; 0 keeps all)")
    p.add_argument("--grid", type=at.integer(1, 1024), default=64, metavar="N",
                   help="images in each sample grid, 1 to 1024 (default: 64)")
    mirror = p.add_mutually_exclusive_group()
    mirror.add_argument("--mirror", dest="mirror", action="store_true", default=None, help="random horizontal flips of the reals")
    mirror.add_argument("--no-mirror", dest="mirror", action="store_false", help="no flips (default: the spec's mirror_augment)")
    p.add_argument("--amp", default="none", choices=["none", "bf16"],
                   help="opt-in bf16 autocast of G and D (CPU or CUDA; pays only where the hardware has bf16 units, "
                        "see docs/training.md); the gradient penalty stays fp32 (default: none, paper-faithful fp32)")
    p.add_argument("--amp-penalty", action="store_true", help="opt-in, with --amp bf16: the penalty's double backward in bf16 too")
    p.add_argument("--tf32", action="store_true", help="opt-in: allow TF32 matmuls and convolutions on CUDA")
    p.add_argument("--channels-last", action="store_true", help="opt-in: NHWC memory format")
    p.add_argument("--lazy-penalty", type=at.count, default=1, metavar="K",
                   help="opt-in: the gradient penalty every K-th D step, weighted by K (lazy regularisation; default 1: every step)")
    p.add_argument("--shared-fakes", action="store_true",
                   help="opt-in: one G forward per minibatch serves the last D step and the G step (default: fresh latents for G)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="opt-in, CUDA only: capture each phase's D and G steps in CUDA graphs and replay them "
                        "(launch-free steps; see docs/training.md)")
    p.add_argument("--deterministic", action="store_true", help="torch.use_deterministic_algorithms(True)")
    p.add_argument("--steps", type=at.count, metavar="N", help="stop after N G steps in this process (for tests and timing)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--metrics", type=at.names, default=[], metavar="NAMES",
                   help="measure these metrics during training (comma-separated, e.g. swd), written to log.jsonl, "
                        "metrics.jsonl and TensorBoard (default: none)")
    p.add_argument("--metrics-ticks", type=at.count, default=5, metavar="N", help="measure them every N ticks, and at the end (default: 5)")
    p.add_argument("--metrics-num", type=at.count, default=1000, metavar="N",
                   help="generated and real images per measurement, at most the data's size (default: 1000)")
    p.add_argument("--tensorboard", default="auto", choices=["auto", "on", "off"],
                   help="TensorBoard event files in the run directory: auto = when tensorboard is installed "
                        "(pip install 'progan-zoo[tensorboard]') (default: auto)")


def run_train(args: argparse.Namespace) -> int:
    from progan_zoo.specs import resolve_spec
    from progan_zoo.train.config import TrainConfig
    from progan_zoo.train.trainer import train

    cfg = TrainConfig(
        spec=resolve_spec(args.spec) if args.spec else None, data=args.data, out=args.out, kimg=args.kimg, resume=args.resume,
        init_from=args.init_from, seed=args.seed,
        device=args.device, tick_kimg=args.tick_kimg, snapshot_ticks=args.snapshot_ticks, keep=args.keep,
        grid=args.grid, mirror=args.mirror, amp=args.amp, tf32=args.tf32, channels_last=args.channels_last,
        amp_penalty=args.amp_penalty, lazy_penalty=args.lazy_penalty, shared_fakes=args.shared_fakes,
        deterministic=args.deterministic, cuda_graphs=args.cuda_graphs, max_steps=args.steps, progress=args.progress,
        argv=list(sys.argv),
        metrics=args.metrics, metrics_ticks=args.metrics_ticks, metrics_num=args.metrics_num,
        tensorboard=args.tensorboard,
    )
    parent = None
    if args.init_from:
        from progan_zoo.zoo.finetune import open_parent  # the CLI sits above both train and zoo

        parent = open_parent(args.init_from)
    run_dir = train(cfg, parent=parent)
    import os
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run directory: {run_dir}\nsample grid: {run_dir / 'samples' / 'latest.png'}")
    return 0


def add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="folder (searched recursively) or .zip of images (png, jpg, bmp, webp, gif, tif), or a built-in name (mnist, lfw-100)")
    p.add_argument("out", type=at.out_dir, help="cache folder to create")
    p.add_argument("--resolution", type=at.power_of_two, required=True, metavar="R", help="top resolution, a power of two; levels 4..R are stored")
    p.add_argument("--channels", type=int, default=3, choices=[1, 3], help="1 (grey) or 3 (RGB) (default: 3)")
    p.add_argument("--crop", default="center", choices=["center", "celeba", "none"],
                   help="center: the largest centred square, then a Lanczos resize (the official LSUN tool); celeba: "
                        "the official CelebA crop, 128x128 centred at x=89, y=121 of the aligned 178x218 images, "
                        "no resize; none: stretch to square (default: center)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable or wrong-mode images (listed in OUT/manifest.json) instead of stopping at the first")
    p.add_argument("--labels", metavar="folders|builtin|FILE",
                   help="store class labels for conditional specs: folders (each image's top-level folder is its "
                        "class), builtin (a built-in's own labels: the mnist digits), or a labels file (JSON "
                        "{\"file\": \"class\"} or CSV lines file,class)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run_dataset(args: argparse.Namespace) -> int:
    from progan_zoo.data.cache import create_cache, read_manifest

    out = create_cache(args.src, args.out, args.resolution, args.channels, args.crop, overwrite=args.overwrite,
                       progress=args.progress, skip_bad=args.skip_bad, labels=args.labels)
    m = read_manifest(out)
    print(f"{out}: {m['count']} images, {m['channels']} channel(s), levels {', '.join(m['levels'])}")
    if m.get("labels"):
        print(f"labels: {len(m['labels']['class_names'])} classes ({', '.join(m['labels']['class_names'][:10])}"
              f"{', ...' if len(m['labels']['class_names']) > 10 else ''})")
    if m.get("skipped"):
        print(f"skipped {len(m['skipped'])} unreadable or wrong-mode file(s), listed under \"skipped\" in "
              f"{out / 'manifest.json'}")
    return 0


def add_plot_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run directory (or its log.jsonl)")
    p.add_argument("--out", metavar="FILE.png", type=at.out_file, help="where to write the picture (default: RUN/training.png)")
    p.epilog = ("Curves of the losses, gradient penalty, images/s, level of detail and alpha, learning rate and "
                "in-training metrics against kimg, growth stages shaded. Needs matplotlib: pip install 'progan-zoo[plots]'.")


def run_plot(args: argparse.Namespace) -> int:
    from progan_zoo.train.plot import plot_run

    print(f"wrote {plot_run(args.run, args.out)}")
    return 0
