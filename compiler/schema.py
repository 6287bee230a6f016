"""The spec format: pydantic models, the source of truth for the JSON Schema in ``spec.schema.json``.

A spec has four separate sections: ``architecture`` (the paper's layer tables, one row per
resolution), ``training`` (schedule, loss, optimizer), ``data`` and ``evaluation``. The defaults
stated here are the newest ``spec_version``'s; older versions keep theirs (defaults.py, where each
version's table is fixed and pinned by a test). Every field has a description that ends up in docs/spec.md.

Regenerate the committed schema and the reference in docs/spec.md after changing a model::

    python -m progan_zoo.compiler.schema --write --docs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from progan_zoo.metrics.registry import OFFICIAL_NUM_IMAGES

from .ops import OPS

SPEC_VERSIONS = (1, 2, 3)  # a new default needs a new version (compiler/defaults.py)
SCHEMA_PATH = Path(__file__).with_name("spec.schema.json")

# Layer op names come from the registry, so a new op is one `OPS.register` away from being usable.
GOp = Literal[tuple(OPS.names("G"))]  # type: ignore[valid-type]
DOp = Literal[tuple(OPS.names("D"))]  # type: ignore[valid-type]
MetricName = Literal["swd", "fid", "kid", "msssim"]

DEFAULT_G_FIRST = ["dense4x4", "conv3x3"]
DEFAULT_G_BLOCK = ["upsample", "conv3x3", "conv3x3"]
DEFAULT_D_BLOCK = ["conv3x3", "conv3x3", "downsample"]
DEFAULT_D_LAST = ["mbstd", "conv3x3", "dense4x4"]
# The official TF code's default, fused_scale=True (networks.py): one fused op per resolution change.
FUSED_G_BLOCK = ["upconv3x3", "conv3x3"]
FUSED_D_BLOCK = ["conv3x3", "conv3x3_down"]

Channels = Annotated[int, Field(ge=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Options(_Strict):
    """Network options of the paper, shared by G and D unless the name says otherwise."""

    equalized_lr: bool = Field(True, description="Equalized learning rate (section 4.1): N(0,1) weights scaled at run time by the He constant.")
    pixel_norm: bool = Field(True, description="Pixelwise feature normalization in G after every conv (section 4.2).")
    pixel_norm_eps: float = Field(1e-8, gt=0, description="Epsilon of the pixel norm.")
    normalize_latent: bool = Field(True, description="Pixel-normalize the latent before G's first layer.")
    mbstd_group_size: int = Field(4, ge=0, description="Minibatch-stddev group size (official TF code: 4; paper-era Theano code: the whole minibatch of 16). 0 or 1 disables the statistic; D's 4x4 row must then omit mbstd.")
    mbstd_num_features: int = Field(1, ge=1, description="Feature maps appended by minibatch stddev.")
    activation: Literal["lrelu"] = Field("lrelu", description="Hidden-layer activation.")
    g_activation: Literal["lrelu", "relu"] = Field("lrelu", description="G's hidden-layer activation: lrelu (with lrelu_slope), or relu, as the WGAN-GP baseline of Table 1 rows a-c (the Theano G_paper's use_leakyrelu=False).")
    g_output: Literal["linear", "tanh"] = Field("linear", description="G's output: linear (the paper), or tanh after the fade blend, as the baseline of Table 1 rows a-c (the Theano tanh_at_end=1.0).")
    batch_norm: bool = Field(False, description="Batch normalization in G after every conv and dense layer, before its activation and in place of its bias (Table 1 rows a-c; the Theano use_batchnorm, lasagne batch_norm: epsilon 1e-4, running averages with alpha 0.1 for evaluation).")
    layer_norm: bool = Field(False, description="Layer normalization in D after every conv and dense layer but fromRGB and the output, before its activation (Table 1 rows a-c; the Theano use_layernorm: per-sample mean and std over all features, epsilon 1e-4, one learned gain, a bias per map).")
    mbdisc_kernels: int = Field(0, ge=0, description="Minibatch discrimination (Salimans et al. 2016; Table 1 row e*, 100 kernels): number of kernels K of the mbdisc layer after D's 4x4 dense layer. 0 disables it; D's 4x4 row must then omit mbdisc.")
    mbdisc_kernel_dim: int = Field(5, ge=1, description="Minibatch discrimination: dimensions B of each kernel's projection (the improved-GAN MinibatchLayer's dim_per_kernel, 5).")
    lrelu_slope: float = Field(0.2, ge=0, lt=1, description="Leaky ReLU slope.")
    fused_scale: bool = Field(False, description="The official TF code's fused_scale (its default, True): rows without their own `layers` use [upconv3x3, conv3x3] in G (a stride-2 transposed conv built from the 3x3 kernel) and [conv3x3, conv3x3_down] in D (conv, 2x2 average pool, then bias and leaky ReLU). False: [upsample, conv3x3, conv3x3] and [conv3x3, conv3x3, downsample], where D activates before the pool (the Theano-era networks, and every spec written before this option).")
    upsample: Literal["nearest"] = Field("nearest", description="G upsampling method (nearest-neighbour 2x).")
    downsample: Literal["avgpool"] = Field("avgpool", description="D downsampling method (2x2 average pooling).")
    fade: Literal["linear"] = Field("linear", description="Fade-in blend: linear interpolation with weight alpha on the new block.")


class GRow(_Strict):
    """One generator block: its resolution, output channels and (optionally) its layers."""

    resolution: int = Field(ge=4, description="Output resolution of the block (a power of two).")
    channels: int = Field(ge=1, description="Feature maps of every layer in the block.")
    layers: list[GOp] | None = Field(None, min_length=1, description="Layer ops in order. Default: [dense4x4, conv3x3] for 4x4, [upsample, conv3x3, conv3x3] above ([upconv3x3, conv3x3] with options.fused_scale).")


class DRow(_Strict):
    """One discriminator block: its resolution, channels in and out and (optionally) its layers."""

    resolution: int = Field(ge=4, description="Input resolution of the block (a power of two).")
    channels: list[Channels] = Field(min_length=2, max_length=2, description="[in, out]: fromRGB and all but the last weighted layer output `in`; the last outputs `out` (Table 2 at 1024: [16, 32], i.e. 16 -> 16 -> 32).")
    layers: list[DOp] | None = Field(None, min_length=1, description="Layer ops in order. Default: [conv3x3, conv3x3, downsample] ([conv3x3, conv3x3_down] with options.fused_scale), and [mbstd, conv3x3, dense4x4] for 4x4 (followed by the linear output layer).")


class Architecture(_Strict):
    """The networks: latent and image sizes, shared options, and the G and D tables of Table 2."""

    latent_size: int = Field(ge=1, description="Latent vector size.")
    image_channels: int = Field(ge=1, description="Image channels (3 for RGB, 1 for greyscale).")
    resolution: int = Field(ge=4, description="Final resolution; must equal the last row and the data resolution.")
    options: Options = Field(default_factory=Options, description="Network options; defaults are the paper's.")
    generator: list[GRow] = Field(min_length=1, description="Generator table, one row per resolution, from 4x4 up (Table 2, left).")
    discriminator: list[DRow] = Field(min_length=1, description="Discriminator table, one row per resolution, from the final resolution down to 4x4 (Table 2, right).")


class PhaseDefaults(_Strict):
    """Schedule values that apply to every resolution without its own row in `schedule`."""

    stabilize_kimg: float = Field(ge=0, description="Thousands of real images a resolution trains for after its fade-in (official lod_training_kimg).")
    fade_kimg: float = Field(ge=0, description="Thousands of real images over which a new resolution fades in (official lod_transition_kimg).")
    minibatch: int = Field(ge=1, description="Global minibatch (split across ranks).")
    learning_rate: float = Field(gt=0, description="Adam learning rate of G and D.")


class PhaseRow(_Strict):
    """Overrides for one resolution; a key left out keeps the value from `defaults`."""

    resolution: int = Field(ge=4, description="The resolution this row overrides (one of the network's).")
    stabilize_kimg: float | None = Field(None, ge=0, description="Stabilize phase of this resolution, thousands of real images.")
    fade_kimg: float | None = Field(None, ge=0, description="Fade-in phase of this resolution, thousands of real images (ignored for 4x4, which does not fade in).")
    minibatch: int | None = Field(None, ge=1, description="Global minibatch at this resolution.")
    learning_rate: float | None = Field(None, gt=0, description="Adam learning rate at this resolution.")


class Loss(_Strict):
    """The GAN loss and its parameters (the paper: WGAN-GP with drift, section A.1)."""

    name: Literal["wgan_gp", "lsgan", "logistic_ns"] = Field("wgan_gp", description="wgan_gp: WGAN-GP with drift (the paper); lsgan: least squares; logistic_ns: non-saturating logistic.")
    gp_lambda: float = Field(10.0, ge=0, description="wgan_gp: gradient-penalty weight lambda.")
    gp_target: float = Field(1.0, gt=0, description="wgan_gp: gradient-norm target gamma (750 for the paper's CIFAR-10 run); the official code weights the penalty (|grad| - gamma)^2 by lambda / gamma^2.")
    drift: float = Field(0.001, ge=0, description="wgan_gp: drift term epsilon * E[D(real)^2].")
    gp_at: Literal["final", "stage"] = Field("final", description="wgan_gp: the resolution the penalised gradient is taken at. final (the official code): D sees every image nearest-upsampled to the final resolution and pools it down itself, so the norm is the stage-resolution norm divided by final/stage. stage: the gradient at the stage's own resolution (a different penalty at every stage but the last; spec_version 1's default).")


class Optimizer(_Strict):
    """Adam settings shared by G and D (the paper: beta1 0, beta2 0.99, eps 1e-8)."""

    name: Literal["adam"] = Field("adam", description="Optimizer of G and D.")
    beta1: float = Field(0.0, ge=0, lt=1, description="Adam beta1 (first-moment decay).")
    beta2: float = Field(0.99, ge=0, lt=1, description="Adam beta2 (second-moment decay).")
    eps: float = Field(1e-8, gt=0, description="Adam epsilon.")
    reset_on_growth: bool = Field(True, description="Reset the Adam state at every level-of-detail change: when a fade-in starts and when it ends (the official reset_opt_for_new_lod=True; the Theano original re-created its Adam updates at the same points). spec_version 1's default: false.")


class LRRampup(_Strict):
    """A learning-rate ramp-up at the start of training (the paper-era Theano code's rampup_kimg)."""

    kimg: float = Field(0.0, ge=0, description="Length of the ramp-up in thousands of real images (Theano train_gan: 40 by default; 0 disables).")
    shape: Literal["exp", "linear"] = Field("exp", description="exp: the Theano misc.rampup, lr * exp(-5 (1 - kimg/length)^2); linear: the TF TrainingSchedule's lrate_rampup_kimg, lr * min(kimg/length, 1).")


class Training(_Strict):
    """How the networks are trained: the level-of-detail schedule, loss, optimizer and EMA."""

    total_kimg: float = Field(gt=0, description="Length of the run in thousands of real images.")
    defaults: PhaseDefaults = Field(description="Schedule values for every resolution without its own row.")
    schedule: list[PhaseRow] = Field([], description="Per-resolution overrides of the defaults.")
    loss: Loss = Field(default_factory=Loss, description="GAN loss; default WGAN-GP with the paper's parameters.")
    optimizer: Optimizer = Field(default_factory=Optimizer, description="Optimizer; default Adam with the paper's parameters.")
    progressive: bool = Field(True, description="Progressive growing (the paper). false: every layer is present and trained at the final resolution from the first image, with no fades (Table 1 row a; the Theano lod_initial_resolution = the final resolution); defaults.stabilize_kimg and fade_kimg must then be 0.")
    d_repeats: int = Field(1, ge=1, description="D steps per G step (official D_repeats).")
    minibatch_repeats: int = Field(4, ge=1, description="Minibatches (D steps + G step) run between updates of the schedule: level of detail, minibatch, learning rate and the optimizer-reset check (official TF minibatch_repeats = 4; the Theano original: 1). spec_version 1's default: 1.")
    lr_rampup: LRRampup = Field(default_factory=LRRampup, description="Learning-rate ramp-up; default none.")
    g_ema_decay: float = Field(0.999, ge=0, lt=1, description="Decay of the generator's exponential moving average used for samples and evaluation; updated with every D step from G's weights before that iteration's G step, as the official Gs_update_op.")
    mirror_augment: bool = Field(False, description="Random horizontal flips of the real images.")


class Data(_Strict):
    """The training images."""

    source: str = Field(min_length=1, description="A dataset cache path, an image folder or zip, or a built-in name (mnist, lfw-100).")
    resolution: int = Field(ge=4, description="Image resolution the data is served at.")
    channels: int = Field(ge=1, description="Image channels.")
    crop: Literal["center", "celeba", "none"] | None = Field(None, description="How raw images become squares (`progan-zoo dataset --crop`): center = the largest centred square, then a Lanczos resize (the official create_lsun); celeba = the official create_celeba box, 128x128 centred at x=89, y=121 of the aligned 178x218 CelebA images, no resize; none = stretch. Applied to an image folder or zip and checked against a cache's manifest; unset: center for raw images, any cache.")


class Evaluation(_Strict):
    """How a trained model is scored."""

    metrics: list[MetricName] = Field(["swd"], description="Metrics the trained model is scored with.")
    num_images: Annotated[int, Field(ge=1)] | dict[MetricName, Annotated[int, Field(ge=1)]] = Field(
        {m: OFFICIAL_NUM_IMAGES[m] for m in get_args(MetricName)},
        description="Images per metric, generated and real (reals are cycled when the data set is smaller, as the official evaluation does; MS-SSIM uses num_images / 2 pairs): one number for every metric, or a mapping metric -> number whose missing metrics take the official count. Default: the official counts, swd 16384, fid 50000, kid 50000, msssim 20000 (10,000 pairs). spec_version 1's default: 10000 for every metric.")

    def count(self, metric: str) -> int:
        """Images for a registered metric: the spec's number for it (SWD's for its noise floor), else the
        official count."""
        if isinstance(self.num_images, int):
            return self.num_images
        key = "swd" if metric == "swd_noise_floor" else metric
        return int(self.num_images.get(key, OFFICIAL_NUM_IMAGES[metric]))


class Conditioning(_Strict):
    """Class-conditional networks (the official TF code's label_size > 0, its -cond configurations)."""

    label_size: int = Field(ge=1, le=2 ** 16, description="Number of classes; labels are one-hot vectors of this length.")
    class_names: list[Annotated[str, Field(min_length=1)]] | None = Field(None, min_length=1, description="One name per class, in label order (class i is class_names[i]); unset: the classes are named by their index.")
    scheme: Literal["concat_onehot"] = Field("concat_onehot", description="How labels enter the networks. concat_onehot (the official G_paper / D_paper): G reads the one-hot labels concatenated to the latent, pixel-normalised together, so its first dense layer has latent_size + label_size inputs; D's output layer has 1 + label_size outputs, the score then the label logits (an auxiliary classifier, AC-GAN).")
    cond_weight: float = Field(1.0, ge=0, description="Weight of the AC-GAN classification terms added to the GAN loss of D and G (official loss.D_wgangp_acgan / G_wgan_acgan cond_weight).")


class Spec(_Strict):
    """A progan-zoo architecture spec."""

    spec_version: Literal[1, 2, 3] = Field(description="Spec format version: it fixes what every key left out means (1: the defaults of the shipped mnist-32's time, 2: the official code's, 3: version 2 plus the keys of the paper's Table 1 rows: g_activation, g_output, batch_norm, layer_norm, mbdisc_kernels, mbdisc_kernel_dim, training.progressive); `progan-zoo migrate` moves a file to the newest with the same meaning.")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Name of the spec (lower case, digits, '.', '_', '-').")
    revision: int = Field(ge=1, description="Revision of this spec; bump it when its content changes.")
    source: str = Field(min_length=1, description="Where the numbers come from (paper table, config).")
    license: str = Field(min_length=1, description="Licence of models trained from this spec (an SPDX-like id such as apache-2.0 or cc-by-nc-4.0).")
    description: str | None = Field(None, description="Free text.")
    architecture: Architecture = Field(description="The G and D networks (the paper's Table 2).")
    training: Training = Field(description="Schedule, loss and optimizer.")
    data: Data = Field(description="Where the training images come from, their resolution and channels.")
    evaluation: Evaluation = Field(default_factory=Evaluation, description="Metrics the trained model is scored with.")
    conditioning: Conditioning | None = Field(None, description="Class conditioning of G and D; absent: unconditional networks.")

    def label_size(self) -> int:
        """Classes the networks are conditioned on (0: unconditional)."""
        return self.conditioning.label_size if self.conditioning is not None else 0

    def class_names(self) -> list[str]:
        """The class names in label order (the conditioning's names, else the indices as text); [] when
        unconditional."""
        cond = self.conditioning
        if cond is None:
            return []
        return list(cond.class_names) if cond.class_names else [str(i) for i in range(cond.label_size)]


def json_schema() -> dict:
    """The JSON Schema of spec files, generated from the pydantic models."""
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/progan-zoo/progan-zoo/spec.schema.json"
    return schema


def json_schema_text() -> str:
    """The schema as committed in ``spec.schema.json`` (sorted keys, 2-space indent)."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def load_committed_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


if __name__ == "__main__":
    # The command lives in reference.py, which documents this module (so schema.py imports nothing above it).
    from progan_zoo.compiler.reference import main as _main
    sys.exit(_main())
