"""Graceful stop on SIGINT (Ctrl-C) and SIGTERM (what cluster schedulers send before preemption).

The first signal only sets a flag: the training loop finishes its current group of minibatches,
writes a checkpoint and returns (exit status 0). A second signal raises ``KeyboardInterrupt`` at
once (the CLI exits 130); the checkpoint being written, if any, is atomic, so the previous one
stays loadable. Under torchrun every rank reports its flag in the per-group all_reduce, so all
ranks stop after the same group.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """Context manager: while inside, SIGINT/SIGTERM request a stop instead of killing the process."""

    def __init__(self, announce: bool = True) -> None:
        self.signum: int | None = None
        self.announce = announce
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # the second signal: stop now
        self.signum = signum
        if self.announce:
            print(f"\nprogan-zoo train: got {self.name}; finishing this step and writing a checkpoint "
                  "(press Ctrl-C again to stop at once, without it)", file=sys.stderr, flush=True)

    def install(self) -> None:
        # Signal handlers can only be set from the main thread (a run inside a worker thread keeps the defaults).
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handler)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            if handler is not None:  # None: a handler not set from Python, which cannot be put back
                signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self) -> "StopRequests":
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()
