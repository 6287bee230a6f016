"""pytorch_GAN_zoo PGAN checkpoints (facebookresearch/pytorch_GAN_zoo, the format of its torch.hub models).

The file is a ``torch.save`` zip of ``{'config': BaseConfig, 'netG', 'netD', 'avgG'}``. It is read with
``torch.load(weights_only=True)``, whose restricted unpickler admits tensors and plain containers; the
one class the file names, ``models.utils.config.BaseConfig``, is mapped to a plain attribute holder
defined here (its stored attributes are data, nothing is imported or called). Any other global is
refused by torch and reported as one line.

Their networks differ from the official ones in ways the spec expresses exactly:
- every equalized layer multiplies its output, bias included, by sqrt(2 / fan_in) (gain sqrt(2) for
  toRGB and the decision layer too): we fold that into the weight and bias values, which is exact
  up to float rounding, so our layers (official gains) compute the same function;
- G's first layer has one bias per output value (``dense4x4_fullbias``);
- minibatch stddev with the unbiased variance (``mbstd_gan_zoo``);
- the fade weight ``alpha`` counts the other way: their alpha 0 is the newest scale fully in.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progan_zoo.errors import UsageError

from ..records import FBZ_REPO, FORMAT_FBZ, Imported, Provenance

if TYPE_CHECKING:
    import torch

CONFIG_GLOBAL = "models.utils.config.BaseConfig"
_LOSSES = {"WGANGP": None, "Logistic": None}  # losses whose generator output is linear (no tanh)


class BaseConfigData:
    """Stand-in for pytorch_GAN_zoo's ``BaseConfig``: holds the unpickled attributes, nothing else."""


def _load(path: Path) -> dict[str, Any]:
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals([(BaseConfigData, CONFIG_GLOBAL)]):
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        # torch's wording varies between versions ("Unsupported global: GLOBAL x", "unsupported GLOBAL x whose ...").
        m = re.search(r"GLOBAL ([\w.]+)", text)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        what = f"refuses global {m.group(1)}" if m else next((ln for ln in lines if "global" in ln.lower()),
                                                               lines[0] if lines else type(exc).__name__)[:200]
        raise UsageError(f"{path}: unsafe or unreadable checkpoint: {what}; nothing in it was run (only "
                         f"pytorch_GAN_zoo PGAN checkpoints, whose one class is {CONFIG_GLOBAL}, are imported)") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, zipfile errors, ... for broken zips
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UsageError(f"{path}: is a zip but not a readable pytorch_GAN_zoo PGAN checkpoint ({first}); "
                         "download it again") from None
    if not (isinstance(obj, dict) and {"config", "netG", "netD", "avgG"} <= set(obj)):
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise UsageError(f"{path}: holds {keys}, not the {{config, netG, netD, avgG}} of a pytorch_GAN_zoo "
                         "PGAN checkpoint")
    if not isinstance(obj["config"], BaseConfigData):
        raise UsageError(f"{path}: its config is not a {CONFIG_GLOBAL}")
    return obj


def _config(path: Path, cfg: BaseConfigData) -> dict[str, Any]:
    c = dict(vars(cfg))
    need = {"depthScale0": int, "depthOtherScales": list, "latentVectorDim": int, "dimOutput": int}
    for key, typ in need.items():
        if not isinstance(c.get(key), typ):
            raise UsageError(f"{path}: config has no {key} of type {typ.__name__}; not a PGAN checkpoint")
    if c.get("categoryVectorDim", 0):
        raise UsageError(f"{path}: a conditional PGAN (categoryVectorDim {c['categoryVectorDim']}); progan-zoo's "
                         "networks are unconditional")
    loss = c.get("lossCriterion", "WGANGP")
    if loss not in _LOSSES:
        raise UsageError(f"{path}: trained with loss {loss!r}, whose generator ends in tanh; only the linear-output "
                         f"losses {', '.join(_LOSSES)} are imported")
    if not c.get("perChannelNormalization", True):
        raise UsageError(f"{path}: perChannelNormalization is off; its generator cannot run without it")
    return c


def _spec_text(name: str, source: str, sha: str, c: dict[str, Any]) -> str:
    depths = [c["depthScale0"], *c["depthOtherScales"]]
    res = 4 * 2 ** (len(depths) - 1)
    g_rows = [f"    - {{resolution: 4, channels: {depths[0]}, layers: [dense4x4_fullbias, conv3x3]}}"]
    g_rows += [f"    - {{resolution: {4 * 2 ** i}, channels: {d}}}" for i, d in enumerate(depths) if i]
    mbstd = bool(c.get("miniBatchStdDev", True))
    d_rows = [f"    - {{resolution: {4 * 2 ** i}, channels: [{depths[i]}, {depths[i - 1]}]}}"
              for i in range(len(depths) - 1, 0, -1)]
    last = "[mbstd_gan_zoo, conv3x3, dense4x4]" if mbstd else "[conv3x3, dense4x4]"
    d_rows.append(f"    - {{resolution: 4, channels: [{depths[0]}, {depths[0]}], layers: {last}}}")
    return f"""# Imported from a pytorch_GAN_zoo PGAN checkpoint: {source} (sha256 {sha}).
# Written by `progan-zoo import`; compiles to exactly its networks (their layer scaling is folded into
# the weights; G's first layer has a bias per value; minibatch stddev with the unbiased variance).
spec_version: 2
name: {name}
revision: 1
source: "pytorch_GAN_zoo PGAN checkpoint ({FBZ_REPO}), file {source}"
license: other
description: "A pytorch_GAN_zoo PGAN generator imported without unpickling code; G_ema is its avgG."

architecture:
  latent_size: {c['latentVectorDim']}
  image_channels: {c['dimOutput']}
  resolution: {res}
  options:
    equalized_lr: {str(bool(c.get('equalizedlR', True))).lower()}
    pixel_norm: true
    normalize_latent: true
    mbstd_group_size: {4 if mbstd else 0}
    lrelu_slope: {float(c.get('leakyReluLeak', 0.2))!r}
  generator:
{chr(10).join(g_rows)}
  discriminator:
{chr(10).join(d_rows)}

training:                      # pytorch_GAN_zoo's PGAN defaults, for continuing training
  total_kimg: 12000
  defaults: {{stabilize_kimg: 600, fade_kimg: 600, minibatch: 16, learning_rate: {float(c.get('learningRate', 0.001))!r}}}
  loss: {{name: wgan_gp}}

data:
  source: unknown
  resolution: {res}
  channels: {c['dimOutput']}
"""


def _convert(path: Path, net: str, module: "torch.nn.Module", src: dict[str, "torch.Tensor"],
             keymap: dict[str, str], equalized: bool) -> dict[str, "torch.Tensor"]:
    """Their (W x + b) * sqrt(2/fan_in) as our (W' * scale) x + b'."""
    import torch

    if not isinstance(src, dict) or not all(isinstance(v, torch.Tensor) for v in src.values()):
        raise UsageError(f"{path}: {net} is not a state dict of tensors")
    want = module.state_dict()
    modules = dict(module.named_modules())
    out: dict[str, torch.Tensor] = {}
    unused = set(src)
    for ours, theirs in keymap.items():
        for part in ("weight", "bias"):
            key = f"{theirs}.module.{part}"
            if key not in src:
                raise UsageError(f"{path}: {net} lacks {key} (needed for {ours}.{part}); the checkpoint is "
                                 "incomplete or not a PGAN")
            unused.discard(key)
            t = src[key].detach().to(torch.float32)
            if tuple(t.shape) != tuple(want[f"{ours}.{part}"].shape):
                raise UsageError(f"{path}: {net} {key} has shape {list(t.shape)}, expected "
                                 f"{list(want[f'{ours}.{part}'].shape)} from its config")
            w = src[f"{theirs}.module.weight"]
            s_theirs = math.sqrt(2.0 / math.prod(w.shape[1:])) if equalized else 1.0
            if part == "weight":
                s_ours = float(modules[ours].scale)
                out[f"{ours}.weight"] = (t.double() * (s_theirs / s_ours)).float()
            else:
                out[f"{ours}.bias"] = (t.double() * s_theirs).float()
    if unused:
        raise UsageError(f"{path}: {net} has {sorted(unused)[0]} that its config does not account for "
                         f"({len(unused)} unexpected)")
    missing = sorted(set(want) - set(out))
    if missing:
        raise UsageError(f"{path}: {net}: nothing maps to {missing[0]}")
    return out


def read_fbz(path: Path, name: str, dataset: str) -> Imported:
    """Read a pytorch_GAN_zoo PGAN checkpoint into a spec and state dicts."""
    from progan_zoo.compiler import compile_spec

    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    obj = _load(path)
    c = _config(path, obj["config"])
    text = _spec_text(name, path.name, sha, c)
    compiled = compile_spec(f"<spec of {path.name}>", text=text, until="graph")
    n = len(c["depthOtherScales"]) + 1
    res = [4 * 2 ** i for i in range(n)]
    g_map = {"b4.block.dense0": "formatLayer", "b4.block.conv0": "groupScale0.0"}
    d_map = {"b4.block.conv0": "groupScaleZero.0", "b4.block.dense0": "groupScaleZero.1", "b4.block.out": "decisionLayer"}
    for i, r in enumerate(res):
        g_map[f"b{r}.torgb"] = f"toRGBLayers.{i}"
        d_map[f"b{r}.fromrgb"] = f"fromRGBLayers.{i}"
        if i:
            for j in (0, 1):
                g_map[f"b{r}.block.conv{j}"] = f"scaleLayers.{i - 1}.{j}"
                d_map[f"b{r}.block.conv{j}"] = f"scaleLayers.{i - 1}.{j}"
    eq = bool(c.get("equalizedlR", True))
    G_ema = _convert(path, "avgG", compiled.build_generator(), obj["avgG"], g_map, eq)
    G = _convert(path, "netG", compiled.build_generator(), obj["netG"], g_map, eq)
    D = _convert(path, "netD", compiled.build_discriminator(), obj["netD"], d_map, eq)
    alpha_theirs = float(c.get("alpha", 0.0) or 0.0)
    plain = {k: v if isinstance(v, (int, float, str, bool, type(None), list)) else repr(v) for k, v in c.items()}
    prov = Provenance(source_file=path.name, sha256=sha, bytes=len(data), format=FORMAT_FBZ,
                      origin=f"{FBZ_REPO} (ProgressiveGAN.save)", static_kwargs={"config": plain},
                      lod={"alpha (theirs: 0 = newest scale fully in)": alpha_theirs}, license="other")
    return Imported(text, G_ema, G, D, n - 1, 1.0 - alpha_theirs, prov, dataset)
