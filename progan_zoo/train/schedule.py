"""The level-of-detail schedule: resolution, fade weight, minibatch and learning rate from images shown.

The official code (``train.py``, ``TrainingSchedule``) has one stabilize length T and one fade
length F for every resolution:

    phase = T + F;  k = floor(kimg / phase);  t = kimg - k * phase
    lod = L - k - max(t - T, 0) / F,  floored at 0,  L = log2(final) - log2(4)

A spec may give every resolution its own T and F; the timeline is the same, stage by stage:
stage 0 stabilizes T_4, then stage 1 fades in over F_8 and stabilizes T_8, and so on, the last
stage fading in and then training until the end. With equal lengths this *is* the official
formula (tests compare the two). While lod is fractional the networks run at the new, larger
resolution and the newest block's weight is ``alpha = 1 - frac(lod)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from progan_zoo.compiler import Spec


@dataclass(frozen=True)
class Phase:
    """Where training stands after ``kimg`` thousand real images."""

    kimg: float
    lod: float            # Official level of detail: 0 is the final resolution.
    stage: int            # Index of the highest active resolution (0 is 4x4).
    alpha: float          # Weight of the newest block (1 when not fading).
    resolution: int       # Resolution the networks run at.
    fading: bool          # True during a fade-in.
    minibatch: int        # Global minibatch at this resolution.
    learning_rate: float


class Schedule:
    """Schedule of a spec's ``training`` section. ``at(kimg)`` gives the Phase."""

    def __init__(self, spec: Spec) -> None:
        self.resolutions = [row.resolution for row in spec.architecture.generator]
        defaults = spec.training.defaults
        rows = {row.resolution: row for row in spec.training.schedule}

        def pick(res: int, key: str):
            row = rows.get(res)
            value = getattr(row, key) if row is not None else None
            return getattr(defaults, key) if value is None else value

        self.stabilize = [float(pick(r, "stabilize_kimg")) for r in self.resolutions]
        self.fade = [float(pick(r, "fade_kimg")) for r in self.resolutions]
        self.minibatch = [int(pick(r, "minibatch")) for r in self.resolutions]
        self.learning_rate = [float(pick(r, "learning_rate")) for r in self.resolutions]
        self.total_kimg = float(spec.training.total_kimg)
        self.max_lod = len(self.resolutions) - 1
        self.rampup_kimg = float(spec.training.lr_rampup.kimg)
        self.rampup_shape = spec.training.lr_rampup.shape
        self.progressive = spec.training.progressive

    def lr_factor(self, kimg: float) -> float:
        """Learning-rate ramp-up factor after ``kimg`` thousand images: the Theano ``misc.rampup``
        (exp(-5 (1 - p)^2), p = kimg / length) or the TF ``lrate_rampup_kimg`` (min(p, 1))."""
        if self.rampup_kimg <= 0 or kimg >= self.rampup_kimg:
            return 1.0
        p = max(0.0, kimg) / self.rampup_kimg
        return p if self.rampup_shape == "linear" else math.exp(-5.0 * (1.0 - p) ** 2)

    def lod(self, kimg: float) -> float:
        """The official level of detail after ``kimg`` thousand images."""
        L = self.max_lod
        if not self.progressive:
            return 0.0  # Table 1 row (a): the final resolution from the first image (Theano lod_initial_resolution)
        if len(set(self.stabilize[:-1])) <= 1 and len(set(self.fade[1:])) <= 1:
            # Uniform lengths: the official formula, term for term.
            T, F = self.stabilize[0], (self.fade[1] if L > 0 else 0.0)
            phase_dur = T + F
            phase_idx = int(math.floor(kimg / phase_dur)) if phase_dur > 0 else 0
            phase_kimg = kimg - phase_idx * phase_dur
            lod = L - phase_idx
            if F > 0:
                lod -= max(phase_kimg - T, 0.0) / F
            return max(lod, 0.0)
        start = 0.0
        for stage in range(L + 1):
            if stage > 0:
                fade = self.fade[stage]
                if kimg < start + fade:
                    return L - (stage - 1) - (kimg - start) / fade
                start += fade
            if stage == L or kimg < start + self.stabilize[stage]:
                return float(L - stage)
            start += self.stabilize[stage]
        return 0.0

    def at(self, kimg: float) -> Phase:
        lod = self.lod(kimg)
        stage = self.max_lod - int(math.floor(lod))
        frac = lod - math.floor(lod)
        alpha = 1.0 - frac
        return Phase(kimg=kimg, lod=lod, stage=stage, alpha=alpha, resolution=self.resolutions[stage],
                     fading=frac > 0.0, minibatch=self.minibatch[stage],
                     learning_rate=self.learning_rate[stage] * self.lr_factor(kimg))

    def stage_starts(self) -> list[tuple[int, float, float]]:
        """(stage, kimg where its fade starts, kimg where it is fully in) for a timeline plot."""
        if not self.progressive:
            return [(self.max_lod, 0.0, 0.0)]
        out, start = [(0, 0.0, 0.0)], self.stabilize[0]
        for stage in range(1, self.max_lod + 1):
            out.append((stage, start, start + self.fade[stage]))
            start += self.fade[stage] + self.stabilize[stage]
        return out


def schedule_offset(stage_starts: list[tuple[int, float, float]], stage: int, alpha: float) -> float:
    """The kimg at which ``stage`` has faded in to ``alpha`` (``stage_starts``: ``Schedule.stage_starts()``,
    (stage, fade start, fully in)): where a fine-tuned model's parent stands in a spec's schedule."""
    _, start, full = stage_starts[stage]
    return start + alpha * (full - start)
