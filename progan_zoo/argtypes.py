"""Argument types of the ``progan-zoo`` subcommands: every number is checked where it is parsed.

Each is an argparse ``type=``: a bad value ends in argparse's one line (``argument --kimg: 'nan':
expected a finite number > 0``) and exit status 2, before anything is read or written. NaN and the
infinities are refused everywhere; counts have an upper bound where a larger one would only exhaust
memory or time (the bound is in the message). Whether a resolution is one the model holds is known
only once the model is read: ``power_of_two`` checks the form, the loader checks the model.

No torch here: ``progan-zoo --help`` imports the parsers.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path

SEED_MAX = 2**32 - 1            # numpy's and torch's seeds are unsigned; 32 bits is what every one of them takes
INT_MAX = 2**31 - 1


def _fail(text: str, expected: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{text!r}: expected {expected}")


def integer(least: int, most: int = INT_MAX, what: str = "") -> Callable[[str], int]:
    """An integer in ``[least, most]``; ``what`` names the range in the message (default: the bounds)."""
    expected = what or (f"an integer from {least} to {most}" if most != INT_MAX else
                        "a positive integer" if least == 1 else f"an integer >= {least}")

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise _fail(text, expected) from None
        if not least <= value <= most:
            raise _fail(text, expected)
        return value

    parse.__name__ = "integer"
    return parse


def real(above: float = 0.0, most: float = 1e9, least: float | None = None) -> Callable[[str], float]:
    """A finite number in ``(above, most]``, or ``[least, most]`` (NaN and the infinities refused)."""
    expected = (f"a number from {least:g} to {most:g}" if least is not None else
                f"a finite number > {above:g}" + (f" and <= {most:g}" if most < 1e9 else ""))

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _fail(text, expected) from None
        low_ok = value >= least if least is not None else value > above
        if not (math.isfinite(value) and low_ok and value <= most):
            raise _fail(text, expected)
        return value

    parse.__name__ = "number"
    return parse


def truncation(text: str) -> float:
    """``--truncation PSI``: a number > 0, or ``inf`` (no truncation); NaN refused."""
    try:
        value = float(text)
    except ValueError:
        raise _fail(text, "psi > 0, e.g. 0.7 (inf: no truncation)") from None
    if not value > 0:  # NaN too
        raise _fail(text, "psi > 0, e.g. 0.7 (inf: no truncation)")
    return value


def power_of_two(text: str) -> int:
    """A resolution: a power of two from 4 to 8192 (the model read later must hold it)."""
    value = integer(4, 8192, "a power of two from 4 to 8192, e.g. 64")(text)
    if value & (value - 1):
        raise _fail(text, "a power of two from 4 to 8192, e.g. 64")
    return value


def device(text: str) -> str:
    """A torch device: ``cpu``, ``cuda`` or ``cuda:N``; CUDA only where there is a GPU (torch is imported
    only to ask that)."""
    if not re.fullmatch(r"cpu|cuda(:\d{1,2})?", text):
        raise _fail(text, "cpu, cuda or cuda:N")
    if text.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: no CUDA device is available (hint: use --device cpu)")
    return text


def seed_list(text: str) -> list[int]:
    """Comma-separated seeds, e.g. ``0,1,2,3``."""
    one = integer(0, SEED_MAX)
    try:
        return [one(x) for x in text.split(",") if x.strip()]
    except argparse.ArgumentTypeError:
        raise _fail(text, f"seeds from 0 to {SEED_MAX} separated by commas, e.g. 0,1,2,3") from None


def _writable_place(text: str, p: Path) -> None:
    """The nearest existing folder above ``p`` is a folder (``notes.txt/out`` cannot be made)."""
    parent = p.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: {parent} is a file, not a folder (hint: choose another path)")


def out_dir(text: str) -> str:
    """A folder to write into: not an existing file, and makeable where it is."""
    p = Path(text)
    if not text.strip():
        raise _fail(text, "a folder name")
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: is a file, and a folder is wanted here (hint: choose another name)")
    _writable_place(text, p)
    return text


def out_file(text: str) -> str:
    """A file to write: not an existing folder, and makeable where it is."""
    p = Path(text)
    if not text.strip():
        raise _fail(text, "a file name")
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: is a folder, and a file name is wanted here (hint: e.g. {p / 'out'}.EXT)")
    _writable_place(text, p)
    return text


def names(text: str) -> list[str]:
    """Comma-separated names, e.g. ``swd,fid`` (checked against their registry by the command)."""
    return [n.strip() for n in text.split(",") if n.strip()]


seed = integer(0, SEED_MAX)
count = integer(1)                                   # a positive count with no useful upper bound (steps, ticks)
kimg = real(0.0, 1e9)                                # thousands of images: finite and > 0
