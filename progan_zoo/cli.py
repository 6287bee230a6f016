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

from progan_zoo import __version__
from progan_zoo.errors import UserError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "compile": ("progan_zoo.compiler.cli", "validate a spec, build its graph and networks, print the Table 2 layout"),
    "train": ("progan_zoo.train.cli", "train a spec progressively (CPU, one GPU, or many with torchrun)"),
    "dataset": ("progan_zoo.train.cli", "turn a folder or zip of images into a multi-resolution dataset cache"),
    "evaluate": ("progan_zoo.zoo.cli", "score a run, checkpoint or zoo model with SWD, FID, KID, MS-SSIM"),
    "export": ("progan_zoo.zoo.cli", "make a saved-model folder (safetensors + spec + card) from a run"),
    "generate": ("progan_zoo.zoo.cli", "sample a grid of images from a model"),
    "interpolate": ("progan_zoo.zoo.cli", "write a latent-walk GIF from a model"),
    "publish": ("progan_zoo.zoo.cli", "publish a model to the Hugging Face Hub or a local registry"),
    "models": ("progan_zoo.zoo.cli", "list the models the zoo knows and where they live"),
    "leaderboard": ("progan_zoo.zoo.cli", "tabulate the evaluation results of every known model"),
    "plot": ("progan_zoo.train.cli", "draw a run's training curves (log.jsonl) to a PNG, growth stages marked"),
    "specs": ("progan_zoo.compiler.cli", "list the specs shipped with the package (train or compile them by name)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="progan-zoo",
        description="Progressive Growing of GANs: specs, compiler, trainer, metrics and model zoo.",
    )
    parser.add_argument("--version", action="version", version=f"progan-zoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        mod = importlib.import_module(module)
        getattr(mod, f"add_{name}_arguments")(p)
        p.set_defaults(_handler=(module, f"run_{name}"))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module, func = args._handler
    try:
        return int(getattr(importlib.import_module(module), func)(args) or 0)
    except UserError as err:
        print(f"progan-zoo {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"progan-zoo {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
