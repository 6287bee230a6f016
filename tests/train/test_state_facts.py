"""What export reads from a checkpoint's state.json: a full TrainState, or the older spellings."""

from __future__ import annotations

from progan_zoo.train.checkpoint import StateFacts


def test_trainer_state_keys():
    f = StateFacts.from_dict({"nimg": 2000, "kimg": 2.0, "stage": 2, "alpha": 0.5, "spec_sha256": "ab"})
    assert f == StateFacts(images_shown=2000, stage=2, alpha=0.5, spec_sha256="ab")


def test_older_spellings_and_defaults():
    assert StateFacts.from_dict({"cur_nimg": 7, "nimg": 9}).images_shown == 7     # first spelling found wins
    assert StateFacts.from_dict({"kimg": 1.5}).images_shown == 1500
    assert StateFacts.from_dict({"spec": {"sha256": "cd"}}).spec_sha256 == "cd"
    assert StateFacts.from_dict({"stage": "two"}) == StateFacts(images_shown=None, stage=None, alpha=1.0,
                                                                 spec_sha256=None)
