"""The official release's networks: the paper's reported scores, kept apart from measured ones.

The registry entries themselves (file names, where to download them) live in ``registry.json`` as
``"official"`` entries; this module holds what the paper reports for them. A reported score is
never an evaluation result: it goes into ``metadata.json`` under ``reported`` (with its source),
while ``progan-zoo evaluate --record`` writes measured scores under ``evaluation``.
"""

from __future__ import annotations

from typing import Any

PAPER = "Karras et al., ICLR 2018 (arXiv 1710.10196)"

# name -> reported scores. Only figures the paper states for these networks; where we could not
# confirm the table number the source says so instead of guessing one.
REPORTED: dict[str, list[dict[str, Any]]] = {
    "celebahq-1024": [
        {"metric": "fid", "value": 7.30, "num_images": 50000,
         "source": f"{PAPER}: FID of the CelebA-HQ 1024x1024 network (50k images, TF Inception-v3), as "
                   "reported in the paper's results; table number not recorded here"},
    ],
    "lsun-bedroom-256": [
        {"metric": "fid", "value": 8.34, "num_images": 50000,
         "source": f"{PAPER}: FID of the LSUN bedroom 256x256 network (50k images, TF Inception-v3), as "
                   "reported in the paper's results; table number not recorded here"},
    ],
}


def reported_for(name: str) -> list[dict[str, Any]]:
    """Reported scores of a registered official network (empty for anything else), each marked reported."""
    return [dict(r, kind="reported") for r in REPORTED.get(name, [])]
