"""The options of one training run: ``TrainConfig``, one field per ``progan-zoo train`` flag.

train/cli.py fills it from the command line; tests and benchmarks make it directly. Each field's
comment states its default's meaning (None mostly means: the spec's value, or the resumed run's).
``default_tick_kimg`` is the tick length a run gets when neither the flag nor a resumed run gives one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """Options of one training run (the ``progan-zoo train`` flags)."""

    spec: str | None = None           # Spec file; None with ``resume``: the run's own spec.yaml.
    data: str | None = None           # Built-in name, cache folder, image folder or zip; None: the spec's.
    out: str | None = None            # Run directory; None: runs/<spec name>-<time> (or the resumed run's).
    kimg: float | None = None         # Length in thousands of real images; None: the spec's total_kimg.
    resume: str | None = None         # Run directory or checkpoint folder to continue from.
    init_from: str | None = None      # Saved model to fine-tune from (its opened weights come as train(parent=)).
    seed: int = 0
    device: str = "auto"              # auto | cpu | cuda
    tick_kimg: float | None = None    # Log, sample grid every tick; None: total/30 rounded, at least 1 kimg.
    snapshot_ticks: int = 5           # Checkpoint every this many ticks (and at the end).
    keep: int = 3                     # Newest checkpoints kept.
    grid: int = 64                    # Images in each sample grid.
    mirror: bool | None = None        # Mirror augmentation; None: the spec's mirror_augment.
    amp: str = "none"                 # none | bf16 (autocast of G and D, CPU or CUDA; the penalty stays fp32)
    amp_penalty: bool = False         # With --amp bf16: the penalty's double backward under autocast too.
    tf32: bool = False                # Allow TF32 matmuls and convolutions on CUDA.
    channels_last: bool = False       # NHWC memory format.
    lazy_penalty: int = 1             # The penalty every k-th D step, times k (lazy regularisation; 1: every step).
    shared_fakes: bool = False        # One G forward per minibatch, shared by the last D step and the G step.
    deterministic: bool = False       # torch.use_deterministic_algorithms(True).
    cuda_graphs: bool = False         # Capture each phase's D and G steps in CUDA graphs (CUDA only; graphs.py).
    static_steps: bool = False        # Internal (tests): the --cuda-graphs code path without capture, on any device.
    max_steps: int | None = None      # Stop after the group in which this process's G steps reach this (tests, benchmarks).
    progress: bool = True
    argv: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)   # Metrics measured during training (e.g. ["swd"]).
    metrics_ticks: int = 5            # ... every this many ticks, and at the end.
    metrics_num: int = 1000           # ... with this many generated and real images (at most the data's size).
    tensorboard: str = "auto"         # auto (when installed) | on | off: event files in the run directory.


def default_tick_kimg(total_kimg: float) -> float:
    """A thirtieth of the run, rounded, at least 1 kimg."""
    return max(1.0, round(total_kimg / 30.0))
