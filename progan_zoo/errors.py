"""Errors the CLI prints as one line, without a traceback (``progan-zoo --debug`` re-raises them).

Exit status, as the README promises:

- 2: bad input the user can fix: a missing or wrong file, an unknown name, a bad flag, an invalid
  spec, a damaged or hostile file, a run directory that is taken (:class:`UserError`, :class:`UsageError`).
  A missing optional package is reported the same way: the fix (``pip install ...``) is the user's.
- 1: a failure that is not the user's input: the run diverged (non-finite loss), the disk is full,
  the network or the Hub failed (:class:`RunFailure`, and any other unexpected exception).
"""

from __future__ import annotations


class ProganZooError(Exception):
    """Base of every error the CLI reports as one line. ``str(err)`` is the whole message."""

    exit_code = 1


class UserError(ProganZooError):
    """Bad input or state the user can fix (exit status 2). ``str(err)``: what, where, how to fix."""

    exit_code = 2


class UsageError(UserError):
    """Wrong arguments or an invalid file (exit status 2, like argparse)."""

    exit_code = 2


class RunFailure(ProganZooError):
    """A failure that is not the user's input: divergence, full disk, network (exit status 1)."""

    exit_code = 1
