"""Reported scores belong to files, not names (issue 18): what the registry says the official files are."""

from __future__ import annotations

from pathlib import Path

import pytest

from progan_zoo.compiler import load_spec
from progan_zoo.compiler.graph import param_count, to_graph
from progan_zoo.zoo import official
from progan_zoo.zoo.records import FORMAT_FBZ, FORMAT_TF

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name,spec", [("celebahq-1024", "celebahq_1024"), ("lsun-bedroom-256", "lsun_256")])
def test_every_name_with_reported_scores_states_its_file(name: str, spec: str) -> None:
    """The expected architecture is that of the shipped spec of the same network (Table 2; the LSUN config)."""
    assert set(official.REPORTED) == {"celebahq-1024", "lsun-bedroom-256"}
    exp = official.expected_for(name)
    s = load_spec(ROOT / "specs" / f"{spec}.yaml")
    g = to_graph(s)
    assert exp["format"] == FORMAT_TF and exp["resolution"] == s.architecture.resolution
    assert (exp["image_channels"], exp["latent_size"]) == (s.architecture.image_channels, s.architecture.latent_size)
    assert (exp["g_params"], exp["d_params"]) == (param_count(g, "G"), param_count(g, "D"))


def _facts(**change):
    facts = {k: official.expected_for("celebahq-1024")[k] for k in official.ARCHITECTURE_KEYS}
    return {**facts, "sha256": "ab" * 32, **change}


def test_the_official_architecture_matches_and_anything_else_does_not() -> None:
    ok = official.official_check("celebahq-1024", _facts())
    assert ok["matched"] is True and ok["hash_matched"] is None and "reason" not in ok
    assert official.reported_for("celebahq-1024", ok)[0]["value"] == pytest.approx(7.30)
    cases = {
        "format": (_facts(format=FORMAT_FBZ), f"its format is {FORMAT_FBZ}, the official {FORMAT_TF}"),
        "G": (_facts(g_params=23_079_116), "its g params is 23,079,116, the official 23,079,115"),
        "latent": (_facts(latent_size=256), "its latent size is 256, the official 512"),
    }
    for what, (facts, why) in cases.items():
        check = official.official_check("celebahq-1024", facts)
        assert check["matched"] is False and check["reason"] == f"not the official celebahq-1024 network: {why}", what
        assert official.reported_for("celebahq-1024", check) == []
    assert official.official_check("mnist-32", _facts()) is None  # no reported scores, nothing to check
    assert official.reported_for("celebahq-1024") == []  # never by name alone
