"""The official release's networks: the paper's reported scores, kept apart from measured ones.

The registry entries themselves (file names, where to download them, and for the networks with
reported scores the architecture the official file has) live in ``registry.json`` as ``"official"``
entries; this module holds what the paper reports for them. A reported score is never an evaluation
result: it goes into ``metadata.json`` under ``reported`` (with its source), while ``progan-zoo
evaluate --record`` writes measured scores under ``evaluation``. It belongs to a file, not a name:
it is attached only when the imported file is the official network (:func:`official_check`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ARCHITECTURE_KEYS = ("format", "resolution", "image_channels", "latent_size", "g_params", "d_params")

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


def reported_for(name: str, check: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Reported scores of a registered official network, each marked reported; empty for anything else,
    and empty unless ``check`` (:func:`official_check`) says the imported file is the official network."""
    if check is None or not check.get("matched"):
        return []
    return [dict(r, kind="reported") for r in REPORTED.get(name, [])]


def expected_for(name: str) -> dict[str, Any] | None:
    """The shipped registry's statement of what the official file under ``name`` is, if it makes one."""
    registry = json.loads(Path(__file__).with_name("registry.json").read_text(encoding="utf-8"))
    entry = registry["models"].get(name) or {}
    return (entry.get("official") or {}).get("expected")


def official_check(name: str, facts: dict[str, Any]) -> dict[str, Any] | None:
    """Whether an imported file is the official network registered as ``name``.

    ``facts``: the imported network's ``format``, ``resolution``, ``image_channels``, ``latent_size``,
    ``g_params``, ``d_params`` and the file's ``sha256``. Returns None for names without reported scores;
    else the record metadata.json keeps under ``official``: the expectation, the file hash, whether it
    matched a published hash (None: none is published), what was found, ``matched`` and, when not,
    ``reason`` (one line).
    """
    if name not in REPORTED:
        return None
    expected = expected_for(name)
    found = {k: facts.get(k) for k in ARCHITECTURE_KEYS}
    record: dict[str, Any] = {"name": name, "expected": expected, "found": found, "file_sha256": facts.get("sha256"),
                              "published_sha256": (expected or {}).get("sha256"), "hash_matched": None}
    reason = None
    if expected is None:
        reason = "the registry states no architecture for it"
    else:
        for key in ARCHITECTURE_KEYS:
            if facts.get(key) != expected.get(key):
                have, want = facts.get(key), expected.get(key)
                fmt = (lambda v: f"{v:,}") if isinstance(want, int) and key.endswith("params") else str
                reason = f"its {key.replace('_', ' ')} is {fmt(have) if have is not None else 'unknown'}, the official {fmt(want)}"
                break
        if reason is None and record["published_sha256"]:
            record["hash_matched"] = facts.get("sha256") == record["published_sha256"]
            if not record["hash_matched"]:
                reason = f"its sha256 {str(facts.get('sha256'))[:12]}... is not the published {record['published_sha256'][:12]}..."
    record["matched"] = reason is None
    if reason:
        record["reason"] = f"not the official {name} network: {reason}"
    return record
