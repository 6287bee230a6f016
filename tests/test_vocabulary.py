"""The spec's words for losses and metrics (the compiler's schema, floor 3) name what floors 2 and 4
register: the schema cannot import the registries above it, so this test keeps the two lists equal."""

from __future__ import annotations

from typing import get_args

from progan_zoo.compiler.schema import Loss, MetricName
from progan_zoo.metrics import METRICS
from progan_zoo.train.losses import LOSSES


def test_every_loss_the_schema_accepts_is_registered_and_no_other():
    assert sorted(get_args(Loss.model_fields["name"].annotation)) == LOSSES.names()


def test_every_metric_a_spec_may_name_is_registered():
    missing = set(get_args(MetricName)) - set(METRICS.names())
    assert not missing, f"the schema accepts metrics nothing registers: {sorted(missing)}"
