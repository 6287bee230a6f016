"""Run the zoo's subcommands the way ``progan-zoo`` does (its dispatch table, its error handling).

The full ``progan_zoo.cli.main`` builds every subcommand's parser, including other packages'; when
one of those is not importable, only the zoo's rows of the same table are built, so these tests
exercise exactly our ``add_<name>_arguments`` / ``run_<name>`` pairs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from progan_zoo import cli
from progan_zoo.errors import UserError

ZOO = "progan_zoo.zoo.cli"


def _parser() -> argparse.ArgumentParser:
    try:
        return cli.build_parser()
    except ImportError:
        parser = argparse.ArgumentParser(prog="progan-zoo")
        sub = parser.add_subparsers(dest="command", required=True)
        for name, (module, help_text) in cli.COMMANDS.items():
            if module != ZOO:
                continue
            p = sub.add_parser(name, help=help_text)
            getattr(importlib.import_module(module), f"add_{name}_arguments")(p)
            p.set_defaults(_handler=(module, f"run_{name}"))
        return parser


def main(argv: list[str]) -> int:
    """Like ``progan_zoo.cli.main``: user errors print one line to stderr and give their exit code."""
    args = _parser().parse_args(argv)
    module, func = args._handler
    try:
        return int(getattr(importlib.import_module(module), func)(args) or 0)
    except UserError as err:
        print(f"progan-zoo {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
