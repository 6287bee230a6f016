"""The official TF release (tkarras/progressive_growing_of_gans) as a spec and state dicts.

The file is a pickle of ``(G, D, Gs)`` ``tfutil.Network`` states, version 2 (the
``karras2018iclr-*.pkl`` files and every ``network-snapshot-*.pkl`` the official training script
writes), read by ``safe_pickle`` without running anything stored in it. From the networks' static
arguments we write a spec that compiles to exactly that network (the official ``fused_scale``
variants are the compiler's ``upconv3x3`` / ``conv3x3_down`` ops) and copy every variable into the
compiled modules, checking every name and shape.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from progan_zoo.errors import UsageError

from ..records import FORMAT_TF, OFFICIAL_LICENSE, OFFICIAL_REPO, Imported, Provenance

if TYPE_CHECKING:
    import torch
    from torch import nn

# Arguments of the official G_paper / D_paper and their defaults (networks.py); the builder
# functions ignore any other keyword (``**kwargs``), so unknown ones cannot change the network.
G_DEFAULTS: dict[str, Any] = dict(num_channels=1, resolution=32, label_size=0, fmap_base=8192, fmap_decay=1.0,
                                  fmap_max=512, latent_size=None, normalize_latents=True, use_wscale=True,
                                  use_pixelnorm=True, pixelnorm_epsilon=1e-8, use_leakyrelu=True, dtype="float32",
                                  fused_scale=True, structure=None, is_template_graph=False)
D_DEFAULTS: dict[str, Any] = dict(num_channels=1, resolution=32, label_size=0, fmap_base=8192, fmap_decay=1.0,
                                  fmap_max=512, use_wscale=True, mbstd_group_size=4, dtype="float32",
                                  fused_scale=True, structure=None, is_template_graph=False)


def _nf(kw: dict[str, Any], stage: int) -> int:
    """The official ``nf(stage)``: feature maps of a stage (stage 1 is 4x4)."""
    return min(int(kw["fmap_base"] / (2.0 ** (stage * kw["fmap_decay"]))), kw["fmap_max"])


def _kwargs(path: Path, net: str, state: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    given = state.get("static_kwargs")
    if not isinstance(given, dict):
        raise UsageError(f"{path}: network {net} has no static_kwargs dict; not an official network pickle")
    kw = dict(defaults)
    kw.update({k: v.item() if isinstance(v, np.generic) else v for k, v in given.items() if k in defaults})
    if kw["dtype"] != "float32":
        raise UsageError(f"{path}: network {net} runs in {kw['dtype']}; only float32 networks are imported")
    if not isinstance(kw["label_size"], int) or isinstance(kw["label_size"], bool) or kw["label_size"] < 0:
        raise UsageError(f"{path}: network {net} has label_size {kw['label_size']!r}, not a whole number >= 0")
    res = kw["resolution"]
    if not isinstance(res, int) or res < 4 or res & (res - 1):
        raise UsageError(f"{path}: network {net} has resolution {res!r}, not a power of two >= 4")
    return kw


def _variables(path: Path, net: str, state: dict[str, Any]) -> dict[str, np.ndarray]:
    variables = state.get("variables")
    if not isinstance(variables, list):
        raise UsageError(f"{path}: network {net} has no variables list; not an official network pickle")
    out: dict[str, np.ndarray] = {}
    for item in variables:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise UsageError(f"{path}: network {net} has a malformed variable entry")
        value = np.asarray(item[1])
        if value.dtype.kind != "f":
            raise UsageError(f"{path}: network {net} variable {item[0]} is {value.dtype}, not floating point")
        out[item[0]] = value
    return out


def _networks(path: Path, obj: Any) -> dict[str, dict[str, Any]]:
    from .safe_pickle import NetworkState

    if not (isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(n, NetworkState) for n in obj)):
        raise UsageError(f"{path}: does not hold the tuple (G, D, Gs) of networks an official ProGAN pickle holds")
    nets = dict(zip(("G", "D", "Gs"), (n.state for n in obj)))
    want = {"G": "G_paper", "D": "D_paper", "Gs": "G_paper"}
    for net, state in nets.items():
        if state.get("version") != 2:
            raise UsageError(f"{path}: network {net} has state version {state.get('version')!r}; the official "
                             "release writes version 2")
        if state.get("build_func_name") != want[net]:
            raise UsageError(f"{path}: network {net} is built by {state.get('build_func_name')!r}, not the "
                             f"official {want[net]}; only the paper's networks are imported")
    return nets


def _spec_text_tf(name: str, source: str, sha: str, gk: dict[str, Any], dk: dict[str, Any], dataset: str) -> str:
    res = gk["resolution"]
    log2 = int(math.log2(res))
    fused_g, fused_d = bool(gk["fused_scale"]), bool(dk["fused_scale"])
    group = int(dk["mbstd_group_size"])
    latent = gk["latent_size"] if gk["latent_size"] is not None else _nf(gk, 0)
    g_rows, d_rows = [], []
    # One option when G and D agree (they do in every official file); rows spell out a mixed setting.
    same = fused_g == fused_d
    for r in range(2, log2 + 1):
        layers = "" if (r == 2 or same or not fused_g) else ", layers: [upconv3x3, conv3x3]"
        g_rows.append(f"    - {{resolution: {2 ** r}, channels: {_nf(gk, r - 1)}{layers}}}")
    for r in range(log2, 1, -1):
        if r == 2:
            layers = "" if group > 1 else ", layers: [conv3x3, dense4x4]"
        else:
            layers = ", layers: [conv3x3, conv3x3_down]" if fused_d and not same else ""
        d_rows.append(f"    - {{resolution: {2 ** r}, channels: [{_nf(dk, r - 1)}, {_nf(dk, r - 2)}]{layers}}}")
    variant = ("fused_scale true (the TF default): G's up-convolutions are upconv3x3, D's down-convolutions "
               "conv3x3_down" if fused_g and fused_d else
               "fused_scale false: separate nearest upsample and average pool" if not (fused_g or fused_d) else
               f"fused_scale {fused_g} in G and {fused_d} in D")
    # Training settings: the official config.py/train.py defaults, for continuing training.
    mb = max(16, group if group > 1 else 16)
    return f"""# Imported from an official ProGAN release file: {source} (sha256 {sha}).
# Written by `progan-zoo import` from the file's static arguments; compiles to exactly its networks.
# Variant: {variant}; minibatch-stddev group {group}.
spec_version: 2
name: {name}
revision: 1
source: "official ProGAN release ({OFFICIAL_REPO}), file {source}"
license: {OFFICIAL_LICENSE}
description: "The official networks of {source}, imported without TensorFlow; G_ema is the file's Gs."

architecture:
  latent_size: {latent}
  image_channels: {gk['num_channels']}
  resolution: {res}
  options:
    equalized_lr: {str(bool(gk['use_wscale'])).lower()}
    pixel_norm: {str(bool(gk['use_pixelnorm'])).lower()}
    pixel_norm_eps: {_yaml_float(gk['pixelnorm_epsilon'])}
    normalize_latent: {str(bool(gk['normalize_latents'])).lower()}
    mbstd_group_size: {group}
    lrelu_slope: 0.2
    fused_scale: {str(fused_g and fused_d).lower()}
  generator:
{chr(10).join(g_rows)}
  discriminator:
{chr(10).join(d_rows)}

training:                      # the official train.py defaults
  total_kimg: 12000
  defaults: {{stabilize_kimg: 600, fade_kimg: 600, minibatch: {mb}, learning_rate: 0.001}}
  loss: {{name: wgan_gp, gp_lambda: 10.0, gp_target: 1.0, drift: 0.001}}
  optimizer: {{name: adam, beta1: 0.0, beta2: 0.99, eps: 1.0e-8}}
  g_ema_decay: 0.999

data:
  source: {dataset}
  resolution: {res}
  channels: {gk['num_channels']}
""" + _conditioning_text(gk["label_size"])


def _conditioning_text(label_size: int) -> str:
    """The spec's conditioning section for a conditional file (label_size > 0; the official -cond
    configurations): labels concatenated to G's latent, D's label logits after its score."""
    if not label_size:
        return ""
    return f"""
conditioning:                  # official label_size; class names are not stored in the file
  label_size: {label_size}
  scheme: concat_onehot
  cond_weight: 1.0
"""


def _yaml_float(v: float) -> str:
    """A float YAML reads back as the same float (``1.0e-08``: PyYAML-style resolvers need the dot)."""
    text = repr(float(v))
    if "e" in text and "." not in text.split("e")[0]:
        mant, exp = text.split("e")
        text = f"{mant}.0e{exp}"
    return text


def _conv(w: np.ndarray) -> np.ndarray:
    """TF conv kernel [k, k, in, out] -> torch [out, in, k, k]; also [k, k, out, in] -> [in, out, k, k]."""
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def _map_g(tf: dict[str, np.ndarray], log2: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def put(key: str, name: str, fn=lambda a: a) -> None:
        if name in tf:
            out[key] = fn(tf[name])

    put("b4.block.dense0.weight", "4x4/Dense/weight", lambda a: np.ascontiguousarray(a.T))
    put("b4.block.dense0.bias", "4x4/Dense/bias")
    put("b4.block.conv0.weight", "4x4/Conv/weight", _conv)
    put("b4.block.conv0.bias", "4x4/Conv/bias")
    for r in range(2, log2 + 1):
        s = 2 ** r
        if r > 2:
            for conv0 in ("Conv0_up", "Conv0"):
                put(f"b{s}.block.conv0.weight", f"{s}x{s}/{conv0}/weight", _conv)
                put(f"b{s}.block.conv0.bias", f"{s}x{s}/{conv0}/bias")
            put(f"b{s}.block.conv1.weight", f"{s}x{s}/Conv1/weight", _conv)
            put(f"b{s}.block.conv1.bias", f"{s}x{s}/Conv1/bias")
        put(f"b{s}.torgb.weight", f"ToRGB_lod{log2 - r}/weight", _conv)
        put(f"b{s}.torgb.bias", f"ToRGB_lod{log2 - r}/bias")
    return out


def _map_d(tf: dict[str, np.ndarray], log2: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def put(key: str, name: str, fn=lambda a: a) -> None:
        if name in tf:
            out[key] = fn(tf[name])

    for r in range(log2, 1, -1):
        s = 2 ** r
        put(f"b{s}.fromrgb.weight", f"FromRGB_lod{log2 - r}/weight", _conv)
        put(f"b{s}.fromrgb.bias", f"FromRGB_lod{log2 - r}/bias")
        if r > 2:
            put(f"b{s}.block.conv0.weight", f"{s}x{s}/Conv0/weight", _conv)
            put(f"b{s}.block.conv0.bias", f"{s}x{s}/Conv0/bias")
            for conv1 in ("Conv1_down", "Conv1"):
                put(f"b{s}.block.conv1.weight", f"{s}x{s}/{conv1}/weight", _conv)
                put(f"b{s}.block.conv1.bias", f"{s}x{s}/{conv1}/bias")
    put("b4.block.conv0.weight", "4x4/Conv/weight", _conv)
    put("b4.block.conv0.bias", "4x4/Conv/bias")
    put("b4.block.dense0.weight", "4x4/Dense0/weight", lambda a: np.ascontiguousarray(a.T))
    put("b4.block.dense0.bias", "4x4/Dense0/bias")
    put("b4.block.out.weight", "4x4/Dense1/weight", lambda a: np.ascontiguousarray(a.T))
    put("b4.block.out.bias", "4x4/Dense1/bias")
    return out


def _fill(path: Path, net: str, module: "nn.Module", tensors: dict[str, np.ndarray],
          unused: list[str]) -> dict[str, "torch.Tensor"]:
    """Check the mapped variables against the compiled module's state dict, name by name and shape by shape."""
    import torch

    want = module.state_dict()
    missing = [k for k in want if k not in tensors]
    if missing:
        raise UsageError(f"{path}: network {net} lacks the variable for {missing[0]} "
                         f"({len(missing)} missing); the file is incomplete or not a G_paper/D_paper network")
    for k, v in want.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise UsageError(f"{path}: network {net}: the variable for {k} has shape {list(tensors[k].shape)}, "
                             f"expected {list(v.shape)} from its static arguments; the file is inconsistent")
    if unused:
        raise UsageError(f"{path}: network {net} has variable {unused[0]} that the official {net} network with "
                         f"these static arguments does not have ({len(unused)} unexpected)")
    return {k: torch.from_numpy(np.array(tensors[k], dtype=np.float32)) for k in want}


def _lod(path: Path, net: str, tf: dict[str, np.ndarray], log2: int) -> float:
    if "lod" not in tf or tf["lod"].shape != ():
        raise UsageError(f"{path}: network {net} has no scalar lod variable; not an official network pickle")
    lod = float(tf["lod"])
    if not 0.0 <= lod <= log2 - 2:
        raise UsageError(f"{path}: network {net} has lod {lod}, outside 0..{log2 - 2}")
    return lod


def read_tf_pickle(path: Path, data: bytes, name: str, dataset: str) -> Imported:
    """Read an official release pickle into a spec and state dicts (no code from the file runs)."""
    from .safe_pickle import UnsafePickleError, safe_load

    try:
        obj = safe_load(data)
    except UnsafePickleError as exc:
        raise UsageError(f"{path}: unsafe pickle: {exc}; nothing in it was run (only official ProGAN "
                         "network pickles are imported)") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            UnicodeDecodeError, OverflowError, MemoryError) as exc:
        why = "truncated" if isinstance(exc, EOFError) or "truncated" in str(exc) else f"unreadable ({exc})"
        raise UsageError(f"{path}: is {why}: not a whole official ProGAN pickle; download it again") from None
    nets = _networks(path, obj)
    gk = _kwargs(path, "G", nets["G"], G_DEFAULTS)
    gsk = _kwargs(path, "Gs", nets["Gs"], G_DEFAULTS)
    dk = _kwargs(path, "D", nets["D"], D_DEFAULTS)
    if gk != gsk:
        raise UsageError(f"{path}: G and Gs have different static arguments; Gs must be a copy of G's network")
    for key in ("resolution", "num_channels", "label_size"):
        if gk[key] != dk[key]:
            raise UsageError(f"{path}: G has {key} {gk[key]} but D {dk[key]}; not one official training run")
    if not gk["use_leakyrelu"]:
        raise UsageError(f"{path}: G uses ReLU (use_leakyrelu False) while D uses leaky ReLU; the spec's one "
                         "activation option cannot express that mix")
    if gk["use_wscale"] != dk["use_wscale"]:
        raise UsageError(f"{path}: use_wscale differs between G and D; the spec's equalized_lr covers both")

    from progan_zoo.compiler import compile_spec

    sha = hashlib.sha256(data).hexdigest()
    text = _spec_text_tf(name, path.name, sha, gk, dk, dataset)
    compiled = compile_spec(f"<spec of {path.name}>", text=text, until="graph")
    log2 = int(math.log2(gk["resolution"]))
    states: dict[str, dict[str, "torch.Tensor"]] = {}
    lods: dict[str, float] = {}
    for net in ("G", "Gs", "D"):
        tf = _variables(path, net, nets[net])
        lods[net] = _lod(path, net, tf, log2)
        mapped = _map_g(tf, log2) if net != "D" else _map_d(tf, log2)
        module = compiled.build_generator() if net != "D" else compiled.build_discriminator()
        unused = sorted(set(tf) - {"lod"} - _tf_names(net, gk if net != "D" else dk, log2))
        states[net] = _fill(path, net, module, mapped, unused)
    lod = lods["Gs"]
    stage = (log2 - 2) - int(math.floor(lod))
    alpha = 1.0 - (lod - math.floor(lod))
    kwargs = {net: _plain(nets[net]["static_kwargs"]) for net in ("G", "D", "Gs")}
    prov = Provenance(source_file=path.name, sha256=sha, bytes=len(data), format=FORMAT_TF,
                      origin=f"{OFFICIAL_REPO} (tfutil.Network state version 2)", static_kwargs=kwargs,
                      lod=lods, license=OFFICIAL_LICENSE)
    return Imported(text, states["Gs"], states["G"], states["D"], stage, alpha, prov, dataset)


def _tf_names(net: str, kw: dict[str, Any], log2: int) -> set[str]:
    """Every variable name the official G_paper / D_paper creates for these arguments."""
    names: set[str] = set()

    def wb(scope: str) -> None:
        names.update({f"{scope}/weight", f"{scope}/bias"})

    if net != "D":
        wb("4x4/Dense")
        wb("4x4/Conv")
        for r in range(2, log2 + 1):
            s = 2 ** r
            if r > 2:
                wb(f"{s}x{s}/Conv0_up" if kw["fused_scale"] else f"{s}x{s}/Conv0")
                wb(f"{s}x{s}/Conv1")
            wb(f"ToRGB_lod{log2 - r}")
    else:
        for r in range(log2, 1, -1):
            s = 2 ** r
            wb(f"FromRGB_lod{log2 - r}")
            if r > 2:
                wb(f"{s}x{s}/Conv0")
                wb(f"{s}x{s}/Conv1_down" if kw["fused_scale"] else f"{s}x{s}/Conv1")
        wb("4x4/Conv")
        wb("4x4/Dense0")
        wb("4x4/Dense1")
    return names


def _plain(v: Any) -> Any:
    """JSON-able copy of static kwargs (numpy scalars become Python numbers)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return repr(v)
