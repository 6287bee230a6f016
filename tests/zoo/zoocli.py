"""Run the zoo's subcommands exactly as ``progan-zoo`` does (in-process, or as a script in a subprocess)."""

from __future__ import annotations

import sys

from progan_zoo.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
