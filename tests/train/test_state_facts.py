"""What export reads from a checkpoint's state.json: the trainer's own keys, nothing else."""

from __future__ import annotations

from progan_zoo.train.checkpoint import StateFacts


def test_trainer_state_keys():
    f = StateFacts.from_dict({"nimg": 2000, "kimg": 2.0, "stage": 2, "alpha": 0.5, "spec_sha256": "ab"})
    assert f == StateFacts(images_shown=2000, stage=2, alpha=0.5, spec_sha256="ab")


def test_one_spelling_and_defaults():
    not_recorded = StateFacts(images_shown=None, stage=None, alpha=1.0, spec_sha256=None)
    # Other names for the same facts are not guessed at: only the trainer's own keys are read.
    assert StateFacts.from_dict({"cur_nimg": 7, "images_shown": 7, "images": 7, "kimg": 1.5}) == not_recorded
    assert StateFacts.from_dict({"spec": {"sha256": "cd"}}) == not_recorded
    assert StateFacts.from_dict({"stage": "two", "nimg": True}) == not_recorded
