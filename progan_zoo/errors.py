"""Errors meant for users: the CLI prints them as one line, without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or state the user can fix. ``str(err)`` is the whole message: what, where, how to fix."""

    exit_code = 1


class UsageError(UserError):
    """Wrong arguments or an invalid file (exit status 2, like argparse)."""

    exit_code = 2
