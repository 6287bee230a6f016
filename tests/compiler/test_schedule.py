"""progan_zoo.train.schedule.Schedule against the official level-of-detail formula (uniform lengths)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from progan_zoo.compiler import load_spec
from progan_zoo.train.schedule import Schedule

from .conftest import REPO, TINY


def official_lod(kimg: float, train_kimg: float, trans_kimg: float, final_res: int, initial_res: int = 4) -> float:
    """TrainingSchedule of the official TF train.py, term for term."""
    phase_dur = train_kimg + trans_kimg
    phase_idx = int(np.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur
    lod = np.log2(final_res) - np.floor(np.log2(initial_res)) - phase_idx
    if trans_kimg > 0:
        lod -= max(phase_kimg - train_kimg, 0.0) / trans_kimg
    return max(float(lod), 0.0)


@pytest.mark.parametrize("path", [TINY[0], REPO / "specs" / "mnist_32.yaml", REPO / "specs" / "lsun_256.yaml",
                                  REPO / "specs" / "celeba_128.yaml", REPO / "specs" / "cifar10_32.yaml",
                                  REPO / "specs" / "celebahq_1024.yaml"], ids=lambda p: p.name)
def test_schedule_equals_official_formula(path) -> None:
    spec = load_spec(path)
    sched = Schedule(spec)
    T, F = spec.training.defaults.stabilize_kimg, spec.training.defaults.fade_kimg
    final = spec.architecture.resolution
    res = [r.resolution for r in spec.architecture.generator]
    total = spec.training.total_kimg
    # A sweep over the whole run plus every phase boundary and a hair on each side of it.
    points = list(np.linspace(0, total * 1.1, 2003))
    for k in range(1, len(res) + 1):
        for edge in (k * T + (k - 1) * F, k * (T + F)):
            points += [edge - 1e-6, edge, edge + 1e-6]
    for kimg in points:
        kimg = max(float(kimg), 0.0)
        want = official_lod(kimg, T, F, final)
        phase = sched.at(kimg)
        assert phase.lod == pytest.approx(want, abs=1e-9), kimg
        # The official run resolution: 2^(log2(final) - floor(lod)); alpha = 1 - frac(lod).
        assert phase.resolution == final // 2 ** int(math.floor(want)), kimg
        assert phase.stage == res.index(phase.resolution)
        assert phase.alpha == pytest.approx(1.0 - (want - math.floor(want)), abs=1e-9)
        assert phase.fading == (want != math.floor(want))
        rows = {r.resolution: r for r in spec.training.schedule}
        row_mb = rows[phase.resolution].minibatch if phase.resolution in rows else None
        assert phase.minibatch == (row_mb or spec.training.defaults.minibatch)


def test_schedule_starts_at_4x4_and_ends_at_full_resolution() -> None:
    spec = load_spec(REPO / "specs" / "celebahq_1024.yaml")
    sched = Schedule(spec)
    assert (sched.at(0).resolution, sched.at(0).alpha, sched.at(0).fading) == (4, 1.0, False)
    end = sched.at(spec.training.total_kimg)
    assert (end.resolution, end.lod, end.alpha) == (1024, 0.0, 1.0)
    assert sched.at(900).resolution == 8 and sched.at(900).alpha == pytest.approx(0.5)  # 600 + half of 600
