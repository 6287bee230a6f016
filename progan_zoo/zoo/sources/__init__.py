"""The read side of the zoo: each source returns weights and records, nothing is written here.

- ``checkpoint``: training runs and their checkpoints;
- ``folder``: saved model folders (verified before any tensor is read);
- ``tf_pickle`` (with ``safe_pickle``): the official TF release pickles, read without running them;
- ``fbz``: pytorch_GAN_zoo PGAN checkpoints.
"""

from __future__ import annotations

from pathlib import Path

from progan_zoo.errors import UsageError

from ..records import Source, is_model_folder
from .checkpoint import open_checkpoint
from .folder import open_folder, open_saved

__all__ = ["open_checkpoint", "open_folder", "open_saved", "open_source"]


def open_source(path: str | Path, checkpoint: str | None = None, with_training: bool = False) -> Source:
    """A saved model folder, a run or a checkpoint, as an export source."""
    p = Path(path)
    if is_model_folder(p):
        if checkpoint:
            raise UsageError(f"{p}: --checkpoint applies to run directories, not saved model folders")
        return open_saved(p, with_training)
    return open_checkpoint(p, checkpoint, with_training)
