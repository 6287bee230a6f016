"""The official release's networks: file names, where to download them, and the paper's reported scores."""

from __future__ import annotations

from typing import Any


def reported_for(name: str) -> list[dict[str, Any]]:
    """Reported scores of a registered official network (empty for anything else)."""
    return []
