"""Shared helpers of the import conformance tests: where the official-format fixtures are, how the
official code's level of detail maps to our (stage, alpha), and a writer of synthetic official-format
pickles (the file layout of ``tfutil.Network`` state version 2) for networks the fixtures do not cover.

Fixtures: ``$PROGAN_ZOO_FIXTURES`` if set, else ``tests/fixtures/official`` inside the repository (copied
there with their README so a fresh clone runs every conformance test; nothing beside the clone is needed).
"""

from __future__ import annotations

import io
import math
import os
import pickle
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


FIXTURES = REPO / "tests" / "fixtures" / "official"


def fixtures_root() -> Path:
    """Where the official-format fixtures are: ``$PROGAN_ZOO_FIXTURES`` or the repository's own copy."""
    env = os.environ.get("PROGAN_ZOO_FIXTURES")
    return Path(env) if env else FIXTURES


def fixture_dir(*parts: str) -> Path:
    """A fixture folder; a missing one fails the test (they ship with the repository, so absence is a bug)."""
    path = fixtures_root().joinpath(*parts)
    if not path.is_dir():
        pytest.fail(f"fixture {path} is missing: tests/fixtures/official ships with the repository "
                    "(or point PROGAN_ZOO_FIXTURES at a complete copy)")
    return path


def lod_to_stage(lod: float, num_stages: int) -> tuple[int, float, int]:
    """Official lod -> (our stage, our alpha, upsampling factor of the official full-size output).

    The official G at lod L computes the block of resolution R / 2**floor(L), fades it with the one
    below by frac(L), and nearest-upsamples the result by 2**floor(L); our alpha is 1 - frac(L).
    """
    whole = int(math.floor(lod))
    return num_stages - 1 - whole, 1.0 - (lod - whole), 2 ** whole


def import_guarded(src: Path, work: Path, samples: int = 4) -> tuple[Path, Path]:
    """Import ``src``/network-tiny.pkl with the CLI into ``work``/model, in a working directory where the
    pickle's embedded code would leave its marker file if anything from it ran; asserts it did not.
    Returns (the model folder, the marker path)."""
    from progan_zoo.cli import main

    marker = work / "EXECUTED_BY_UNPICKLING"
    mp = pytest.MonkeyPatch()
    mp.chdir(work)
    mp.setenv("PROGAN_PICKLE_MARKER", str(marker))
    mp.setenv("PROGAN_ZOO_HOME", str(work / "zoo"))
    try:
        out = work / "model"
        assert main(["import", str(src / "network-tiny.pkl"), "--out", str(out), "--samples", str(samples)]) == 0
    finally:
        mp.undo()
    assert not marker.exists()
    return out, marker


# ---------------------------------------------------------------------------------------- synthetic pickles
def _nf(kw: dict[str, Any], stage: int) -> int:
    return min(int(kw["fmap_base"] / (2.0 ** (stage * kw.get("fmap_decay", 1.0)))), kw["fmap_max"])


def official_variables(net: str, kw: dict[str, Any]) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of the variables the official G_paper / D_paper creates (networks.py)."""
    log2 = int(math.log2(kw["resolution"]))
    c = kw["num_channels"]
    out: list[tuple[str, tuple[int, ...]]] = [("lod", ())]

    def wb(scope: str, shape: tuple[int, ...]) -> None:
        out.append((f"{scope}/weight", shape))
        out.append((f"{scope}/bias", (shape[-2] if "_up" in scope else shape[-1],)))

    if net == "G":
        latent = kw.get("latent_size") or _nf(kw, 0)
        out.append(("4x4/Dense/weight", (latent + kw.get("label_size", 0), _nf(kw, 1) * 16)))
        out.append(("4x4/Dense/bias", (_nf(kw, 1),)))
        wb("4x4/Conv", (3, 3, _nf(kw, 1), _nf(kw, 1)))
        wb(f"ToRGB_lod{log2 - 2}", (1, 1, _nf(kw, 1), c))
        for r in range(3, log2 + 1):
            s = 2 ** r
            if kw.get("fused_scale", True):
                wb(f"{s}x{s}/Conv0_up", (3, 3, _nf(kw, r - 1), _nf(kw, r - 2)))
            else:
                wb(f"{s}x{s}/Conv0", (3, 3, _nf(kw, r - 2), _nf(kw, r - 1)))
            wb(f"{s}x{s}/Conv1", (3, 3, _nf(kw, r - 1), _nf(kw, r - 1)))
            wb(f"ToRGB_lod{log2 - r}", (1, 1, _nf(kw, r - 1), c))
    else:
        for r in range(log2, 2, -1):
            s = 2 ** r
            wb(f"FromRGB_lod{log2 - r}", (1, 1, c, _nf(kw, r - 1)))
            wb(f"{s}x{s}/Conv0", (3, 3, _nf(kw, r - 1), _nf(kw, r - 1)))
            wb(f"{s}x{s}/Conv1_down" if kw.get("fused_scale", True) else f"{s}x{s}/Conv1",
               (3, 3, _nf(kw, r - 1), _nf(kw, r - 2)))
        wb(f"FromRGB_lod{log2 - 2}", (1, 1, c, _nf(kw, 1)))
        extra = 1 if kw.get("mbstd_group_size", 4) > 1 else 0
        wb("4x4/Conv", (3, 3, _nf(kw, 1) + extra, _nf(kw, 1)))
        wb("4x4/Dense0", (_nf(kw, 1) * 16, _nf(kw, 0)))
        wb("4x4/Dense1", (_nf(kw, 0), 1 + kw.get("label_size", 0)))
    return out


def _network_class() -> type:
    """A stand-in ``tfutil.Network`` whose pickled form is the official one (class tfutil.Network + state dict)."""
    module = types.ModuleType("tfutil")

    class Network:
        def __init__(self, state: dict[str, Any]) -> None:
            self._state = state

        def __getstate__(self) -> dict[str, Any]:
            return self._state

    Network.__module__ = "tfutil"
    Network.__qualname__ = "Network"
    module.Network = Network
    return Network


def official_pickle(g_kwargs: dict[str, Any], d_kwargs: dict[str, Any], seed: int = 0, lod: float = 0.0,
                    drop: str | None = None, reshape: str | None = None,
                    src: str = "raise SystemExit('never executed')\n", extra: Any = None,
                    protocol: int = 4) -> bytes:
    """Bytes of an official-format (G, D, Gs) pickle with seeded random variables.

    ``drop`` leaves out one variable of G; ``reshape`` gives one variable of D a wrong shape; ``extra`` is
    appended to G's variables as ("extra", value) (bad input).
    """
    rng = np.random.RandomState(seed)
    # D shares G's resolution, channels and feature maps unless told otherwise (as train.py builds them).
    d_kwargs = {k: v for k, v in g_kwargs.items() if k != "latent_size"} | d_kwargs
    Network = _network_class()
    nets = []
    for net, kw, func in (("G", g_kwargs, "G_paper"), ("D", d_kwargs, "D_paper"), ("Gs", g_kwargs, "G_paper")):
        variables = []
        for name, shape in official_variables("G" if net != "D" else "D", kw):
            if name == "lod":
                variables.append((name, np.float32(lod)))
                continue
            if net == "G" and name == drop:
                continue
            if net == "D" and name == reshape:
                shape = tuple(shape[:-1]) + (shape[-1] + 1,)
            variables.append((name, rng.standard_normal(shape).astype(np.float32) * (0.1 if len(shape) == 1 else 1.0)))
        if net == "G" and extra is not None:
            variables.append(("extra", extra))
        state = {"version": 2, "name": net, "static_kwargs": dict(kw), "build_module_src": src,
                 "build_func_name": func, "variables": variables}
        nets.append(Network(state))
    old = sys.modules.get("tfutil")
    sys.modules["tfutil"] = sys.modules.get("tfutil") or types.ModuleType("tfutil")
    sys.modules["tfutil"].Network = Network  # type: ignore[attr-defined]
    try:
        buf = io.BytesIO()
        pickle.dump(tuple(nets), buf, protocol=protocol)
        return buf.getvalue()
    finally:
        if old is None:
            del sys.modules["tfutil"]
        else:
            sys.modules["tfutil"] = old


def variable_count(net: str, kw: dict[str, Any]) -> int:
    """Trainable parameters of an official network: the sizes of all its variables but lod."""
    return sum(int(np.prod(shape)) for name, shape in official_variables(net, kw) if name != "lod")
