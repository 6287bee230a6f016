"""The one registry type behind layer ops, losses and metrics: lookups, errors, exit status."""

from __future__ import annotations

import pytest

from progan_zoo.errors import UserError
from progan_zoo.registry import Registry, UnknownNameError


def test_unknown_name_names_the_registry_and_lists_the_known_ones():
    reg: Registry[int] = Registry("colour")
    reg.add("red", 1)
    reg.register("blue", "a colour")(2)
    assert reg.get("red") == 1 and reg.names() == ["blue", "red"] and reg.items() == [2, 1] and "blue" in reg
    with pytest.raises(UnknownNameError) as err:
        reg.get("green")
    assert str(err.value) == "unknown colour 'green'; known: blue, red"
    assert isinstance(err.value, UserError) and isinstance(err.value, KeyError) and err.value.exit_code == 2
    with pytest.raises(ValueError, match="colour registry: 'red' is already registered"):
        reg.add("red", 3)


def test_the_three_registries_share_the_type_and_keep_their_errors():
    from progan_zoo.compiler.ops import OPS
    from progan_zoo.metrics.registry import METRICS, UnknownMetricError
    from progan_zoo.train.losses import LOSSES

    assert all(isinstance(r, Registry) for r in (OPS, LOSSES, METRICS))
    for reg, error in ((OPS, KeyError), (LOSSES, UserError), (METRICS, UnknownMetricError)):
        with pytest.raises(error, match=f"unknown {reg.name} 'nope'; known: "):
            reg.get("nope")
    assert LOSSES.get("lsgan").name == "lsgan"
    assert "upsample" in OPS.names("G") and "upsample" not in OPS.names("D")
