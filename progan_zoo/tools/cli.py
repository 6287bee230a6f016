"""Subcommands of the tools: export-onnx, video, project.

No torch at module level: ``progan-zoo --help`` imports this file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from progan_zoo import argtypes as at
from progan_zoo.zoo.cli import TRUNCATION_HELP, _load, _model_args


# ---------------------------------------------------------------------------------------- export-onnx
def add_export_onnx_arguments(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument("--out", type=at.out_file, default=None,
                   help="file to write (default: NAME-RES.onnx, or NAME-RES.pt2 with --format torch-export)")
    p.add_argument("--format", choices=("onnx", "torch-export"), default="onnx",
                   help="onnx (default; run it with onnxruntime) or torch-export (a torch.export program, "
                        "loaded with torch.export.load)")
    p.add_argument("--opset", type=at.integer(7, 30), default=18, help="ONNX opset (default 18)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the onnxruntime-vs-PyTorch comparison (to 1e-4) made before the file is kept")


def run_export_onnx(args: argparse.Namespace) -> int:
    from .onnx_export import export

    args.device = "cpu"   # exported on the CPU: the check compares float32 CPU results
    G = _load(args)
    suffix = "onnx" if args.format == "onnx" else "pt2"
    out = Path(args.out or f"{G.name}-{G.resolution}.{suffix}")
    path, diff = export(G, out, fmt=args.format, opset=args.opset, check=not args.no_check)
    checked = "not checked" if diff is None else f"max |{args.format} - PyTorch| {diff:.2g}"
    print(f"wrote {path}: {G.name} at {G.resolution}x{G.resolution}, input z [batch, {G.z_dim}] float32, "
          f"output images [batch, {G.image_channels}, {G.resolution}, {G.resolution}] in [-1, 1]; {checked}")
    return 0


# ---------------------------------------------------------------------------------------- video
def _default_video(stem: str) -> str:
    from .video import mp4_available

    return f"{stem}.mp4" if mp4_available() else f"{stem}.gif"   # GIF when the video extra is missing


def _video_out_args(p: argparse.ArgumentParser, stem: str, fps: float,
                    scale_default: str = "to at least 256 px") -> None:
    p.add_argument("--out", type=at.out_file, default=None,
                   help=f"file to write, .mp4 (H.264; the video extra) or .gif (default {stem}.mp4, or {stem}.gif "
                        "without the video extra)")
    p.add_argument("--fps", type=at.real(least=0.01, most=240.0), default=fps, help=f"frames per second (default {fps:g})")
    p.add_argument("--scale", type=at.integer(1, 16), default=None,
                   help=f"nearest-neighbour enlargement of each frame (default: {scale_default})")


def add_video_arguments(p: argparse.ArgumentParser) -> None:
    modes = p.add_subparsers(dest="mode", metavar="MODE", required=True)
    walk = modes.add_parser("walk", help="the official interpolation video: a Gaussian-smoothed random walk "
                                         "through latents (util_scripts.generate_interpolation_video)",
                            description="The official interpolation video: one random latent per frame and grid "
                                        "cell, Gaussian-smoothed over time (looping), renormalized to unit variance.")
    _model_args(walk)
    walk.add_argument("--duration", type=at.real(0.0, 3600.0), default=60.0, help="seconds (default 60, as the official code)")
    walk.add_argument("--smoothing", type=at.real(least=0.0, most=3600.0), default=1.0,
                      help="Gaussian sigma in seconds along time (default 1.0, as the official code)")
    walk.add_argument("--grid", default="1x1", help="COLSxROWS cells, each its own walk (default 1x1)")
    walk.add_argument("--seed", type=at.seed, default=1000, help="random seed (default 1000, as the official code)")
    walk.add_argument("--truncation", metavar="PSI", type=at.truncation, default=None, help=TRUNCATION_HELP)
    _video_out_args(walk, "walk", 30.0)

    slerp = modes.add_parser("slerp", help="a closed slerp walk from seed to seed",
                             description="A closed walk along great circles through one latent per seed.")
    _model_args(slerp)
    slerp.add_argument("--seeds", type=at.seed_list, default=[0, 1, 2, 3], help="key seeds, in order (default 0,1,2,3)")
    slerp.add_argument("--steps", type=at.integer(1, 1000), default=30, help="frames from one seed to the next (default 30)")
    slerp.add_argument("--truncation", metavar="PSI", type=at.truncation, default=None, help=TRUNCATION_HELP)
    _video_out_args(slerp, "slerp", 30.0)

    lapse = modes.add_parser("timelapse", help="a run's sample grids (samples/kimg-*.png) in training order",
                             description="A training time-lapse from a run's samples/kimg-*.png grids, labelled "
                                         "with the kimg, scaled to the largest grid.")
    lapse.add_argument("run", metavar="RUN_DIR", help="a run directory written by `progan-zoo train`")
    lapse.add_argument("--hold", type=at.integer(1, 1000), default=3, help="frames each grid is shown (default 3)")
    lapse.add_argument("--no-label", action="store_true", help="no kimg caption above the grid")
    _video_out_args(lapse, "timelapse", 10.0, scale_default="1, the grids' own size")


def _grid(text: str) -> tuple[int, int]:
    from progan_zoo.errors import UsageError

    try:
        cols, rows = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--grid {text}: expected COLSxROWS, e.g. 3x2") from None
    if cols < 1 or rows < 1 or cols * rows > 64:
        raise UsageError(f"--grid {text}: between 1x1 and 64 cells")
    return cols, rows


def run_video(args: argparse.Namespace) -> int:
    from progan_zoo.errors import UsageError

    from . import video as V

    out = args.out or _default_video(args.mode)
    V.check_suffix(out)
    if not args.fps > 0:
        raise UsageError(f"--fps {args.fps:g}: must be > 0")
    if args.scale is not None and args.scale < 1:
        raise UsageError(f"--scale {args.scale}: must be >= 1")
    if args.mode == "timelapse":
        frames = V.timelapse_frames(args.run, hold=args.hold, label=not args.no_label)
        path, n, (h, w) = V.write_video(frames, out, fps=args.fps, scale=args.scale or 1)
        print(f"wrote {path}: {n} frames, {w}x{h}, {args.fps:g} fps, from {args.run}/samples")
        return 0
    G = _load(args)
    if args.mode == "walk":
        cols, rows = _grid(args.grid)
        if not args.duration > 0 or args.smoothing < 0:
            raise UsageError("--duration must be > 0 and --smoothing >= 0")
        num = max(1, int(round(args.duration * args.fps)))
        z = V.smoothed_walk_latents(num, G.z_dim, cells=cols * rows, smoothing_frames=args.smoothing * args.fps,
                                    seed=args.seed)
        frames = V.render_frames(G, z, grid_cols=cols, truncation=args.truncation, seed=args.seed)
        what = f"smoothed walk, {cols}x{rows} cells, sigma {args.smoothing:g} s, seed {args.seed}"
        width = cols * G.resolution
    else:
        z = V.slerp_walk_latents(args.seeds, G.z_dim, args.steps, truncation=args.truncation)
        frames = V.render_frames(G, z)
        what = f"slerp through seeds {','.join(map(str, args.seeds))}"
        width = G.resolution
    scale = args.scale or max(1, 256 // width)
    path, n, (h, w) = V.write_video(frames, out, fps=args.fps, scale=scale)
    psi = f", truncation {args.truncation:g}" if args.truncation is not None else ""
    print(f"wrote {path}: {n} frames, {w}x{h}, {args.fps:g} fps, {what}{psi}")
    return 0


# ---------------------------------------------------------------------------------------- project
def add_project_arguments(p: argparse.ArgumentParser) -> None:
    from .project_settings import ProjectionSettings as S

    _model_args(p)
    p.add_argument("images", metavar="IMAGES", nargs="+",
                   help="image files or folders of them (PNG/JPEG...), centre-cropped and resized to the model")
    p.add_argument("--out", required=True, metavar="DIR", type=at.out_dir,
                   help="folder for latents.safetensors, reconstructions/, grid.png, scores.json")
    p.add_argument("--steps", type=at.integer(0, 100_000), default=S.steps, help=f"optimisation steps (default {S.steps})")
    p.add_argument("--lr", type=at.real(least=0.0, most=100.0), default=S.lr, help=f"peak learning rate (default {S.lr})")
    p.add_argument("--noise", type=at.real(least=0.0, most=100.0), default=S.noise,
                   help=f"initial latent noise, decaying to 0 at 75%% of the steps (default {S.noise})")
    p.add_argument("--starts", type=at.integer(1, 1024), default=S.starts,
                   help=f"random latents tried for the start, best kept (default {S.starts})")
    p.add_argument("--seed", type=at.seed, default=0, help="seed of the starts and the noise (default 0)")
    p.add_argument("--w-structure", type=at.real(least=0.0, most=1e6), default=S.w_structure,
                   help=f"weight of the multi-scale SSIM term (default {S.w_structure}; pixel MSE has weight 1)")
    p.add_argument("--w-feature", type=at.real(least=0.0, most=1e6), default=S.w_feature,
                   help=f"weight of the discriminator feature term, used when the model folder holds D "
                        f"(export --with-training) (default {S.w_feature})")
    p.add_argument("--no-discriminator", action="store_true", help="do not use the folder's D even if it has one")
    p.add_argument("--truncation", metavar="PSI", type=at.truncation, default=None,
                   help="keep the latents inside [-PSI, PSI] (starts drawn truncated; default: off)")
    p.add_argument("--video", metavar="FILE", default=None,
                   help="also write the optimisation as DIR/FILE (.mp4 or .gif), targets above reconstructions")
    p.add_argument("--snapshot-every", type=at.count, default=5, help="steps between video frames (default 5)")


def _folder_of(model: str) -> Path | None:
    """The saved model folder behind MODEL (a path or a registered local name), to look for its D."""
    from progan_zoo.zoo import records as Fo
    from progan_zoo.zoo.registry import resolve

    p = Path(model).expanduser()
    if p.is_dir():
        return p if Fo.is_model_folder(p) else None
    try:
        entry = resolve(model)
    except Exception:  # noqa: BLE001 - hf-hub refs and unknown names: no local D to look for
        return None
    loc = Path(str(entry.location))
    return loc if entry.kind in ("folder", "official") and Fo.is_model_folder(loc) else None


def run_project(args: argparse.Namespace) -> int:
    from progan_zoo.errors import UsageError

    from . import project as P

    if args.video:
        from .video import check_suffix

        check_suffix(args.video)
    settings = P.ProjectionSettings(steps=args.steps, lr=args.lr, noise=args.noise, starts=args.starts,
                                    w_structure=args.w_structure, w_feature=args.w_feature,
                                    truncation=args.truncation, seed=args.seed).check()
    G = _load(args)
    targets, names = P.read_images(args.images, G.resolution, G.image_channels)
    if len(set(names)) != len(names):
        raise UsageError("two input images share a file name (without suffix); rename one, outputs are named by it")
    folder = None if args.no_discriminator else _folder_of(args.model)
    D = P.load_discriminator(folder, G) if folder is not None else None
    result = P.project(G, targets, settings, D=D, snapshot_every=args.snapshot_every if args.video else 0)
    scores = P.write_outputs(args.out, G, targets, names, result, settings, video=args.video)
    feature = "with D's features" if D is not None else "no D in the model folder: pixel + structure loss only"
    print(f"wrote {args.out}: {len(names)} latent(s), reconstructions, grid.png, scores.json"
          + (f", {args.video}" if args.video else "") + f"; mean PSNR {scores['mean_psnr']:.2f} dB, "
          f"SSIM {scores['mean_ssim']:.3f} ({args.steps} steps, {feature})")
    return 0
