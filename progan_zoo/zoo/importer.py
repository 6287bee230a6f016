"""``progan-zoo import``: the official ProGAN release files and pytorch_GAN_zoo PGAN checkpoints as saved models.

Two formats are read, neither by running anything stored in the file:

- the official TF release (tkarras/progressive_growing_of_gans): a pickle of ``(G, D, Gs)``
  ``tfutil.Network`` states, version 2 (the ``karras2018iclr-*.pkl`` files and every
  ``network-snapshot-*.pkl`` the official training script writes), read by ``safe_pickle``;
- pytorch_GAN_zoo's PGAN checkpoint (``torch.save`` zip of ``{config, netG, netD, avgG}``), read
  by ``torch.load(weights_only=True)`` with its one ``BaseConfig`` class mapped to a plain
  attribute holder.

From the file's static arguments we write a spec that compiles to exactly that network (the
official ``fused_scale`` variants are the compiler's ``upconv3x3`` / ``conv3x3_down`` ops), copy
every variable into the compiled modules (checking every name and shape), and write a saved
model folder: ``model.safetensors`` (G_ema from ``Gs``, plus ``G.*`` and ``D.*``), ``spec.yaml``,
``metadata.json`` with the file's provenance, the model card and a sample grid. The folder is
written under a temporary name and renamed when whole, so a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import re
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from progan_zoo.errors import UsageError

from . import folder as F

if TYPE_CHECKING:
    import torch
    from torch import nn

OFFICIAL_LICENSE = "cc-by-nc-4.0"
OFFICIAL_REPO = "https://github.com/tkarras/progressive_growing_of_gans"
FBZ_REPO = "https://github.com/facebookresearch/pytorch_GAN_zoo"
FORMAT_TF = "official-tf-progan-pickle"
FORMAT_FBZ = "pytorch-gan-zoo-pgan"

# Arguments of the official G_paper / D_paper and their defaults (networks.py); the builder
# functions ignore any other keyword (``**kwargs``), so unknown ones cannot change the network.
G_DEFAULTS: dict[str, Any] = dict(num_channels=1, resolution=32, label_size=0, fmap_base=8192, fmap_decay=1.0,
                                  fmap_max=512, latent_size=None, normalize_latents=True, use_wscale=True,
                                  use_pixelnorm=True, pixelnorm_epsilon=1e-8, use_leakyrelu=True, dtype="float32",
                                  fused_scale=True, structure=None, is_template_graph=False)
D_DEFAULTS: dict[str, Any] = dict(num_channels=1, resolution=32, label_size=0, fmap_base=8192, fmap_decay=1.0,
                                  fmap_max=512, use_wscale=True, mbstd_group_size=4, dtype="float32",
                                  fused_scale=True, structure=None, is_template_graph=False)


@dataclass(frozen=True)
class Provenance:
    """Where an imported model's weights come from (``metadata.json``'s ``provenance``)."""

    source_file: str                      # The file's name as given (no directories).
    sha256: str                           # Of the file's bytes.
    bytes: int
    format: str                           # FORMAT_TF or FORMAT_FBZ.
    origin: str                           # The project that wrote the format.
    static_kwargs: dict[str, Any] = field(default_factory=dict)   # Per network (official files).
    lod: dict[str, float] = field(default_factory=dict)           # Each network's lod variable.
    license: str = OFFICIAL_LICENSE
    executed_code: bool = False           # Always False: nothing stored in the file is run.

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Provenance":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Imported:
    """A file turned into a spec and state dicts, before anything is written."""

    spec_text: str
    G_ema: dict[str, "torch.Tensor"]
    G: dict[str, "torch.Tensor"] | None
    D: dict[str, "torch.Tensor"] | None
    stage: int                            # Highest trained stage (from the lod variable).
    alpha: float                          # Fade weight of that stage (1 - frac(lod)).
    provenance: Provenance
    dataset: str


# ---------------------------------------------------------------------------------------- sniffing
# torch.save's format before torch 1.6 (pytorch_GAN_zoo's published .pth files): a protocol-2 pickle
# whose first object is this magic number (0x1950a86a20f9469cfc6c as a 10-byte LONG1).
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


def _sniff(path: Path, head: bytes) -> str:
    if head.startswith(b"PK\x03\x04") or head.startswith(TORCH_LEGACY_MAGIC):
        return "torch"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        raise UsageError(f"{path}: is a safetensors file, not an official pickle or a pytorch_GAN_zoo checkpoint "
                         "(a saved model folder is loaded with `progan-zoo generate FOLDER` or load(), not imported)")
    raise UsageError(f"{path}: is not an official ProGAN pickle (karras2018iclr-*.pkl, network-snapshot-*.pkl) "
                     "or a pytorch_GAN_zoo PGAN checkpoint (.pt zip): its first bytes are "
                     f"{head[:8]!r}; give one of those files")


# ---------------------------------------------------------------------------------------- TF pickles
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
    if kw["label_size"]:
        raise UsageError(f"{path}: network {net} is conditional (label_size {kw['label_size']}); progan-zoo's "
                         "networks are unconditional, so it cannot be imported exactly")
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
    for key in ("resolution", "num_channels"):
        if gk[key] != dk[key]:
            raise UsageError(f"{path}: G has {key} {gk[key]} but D {dk[key]}; not one official training run")
    if not gk["use_leakyrelu"]:
        raise UsageError(f"{path}: G uses ReLU (use_leakyrelu False) while D uses leaky ReLU; the spec's one "
                         "activation option cannot express that mix")
    if gk["use_wscale"] != dk["use_wscale"]:
        raise UsageError(f"{path}: use_wscale differs between G and D; the spec's equalized_lr covers both")

    from progan_zoo.compiler.build import build_discriminator, build_generator
    from progan_zoo.compiler.graph import to_graph
    from progan_zoo.compiler.load import load_text
    from progan_zoo.compiler.validate import validate

    sha = hashlib.sha256(data).hexdigest()
    text = _spec_text_tf(name, path.name, sha, gk, dk, dataset)
    graph = to_graph(validate(load_text(text, f"<spec of {path.name}>")))
    log2 = int(math.log2(gk["resolution"]))
    states: dict[str, dict[str, "torch.Tensor"]] = {}
    lods: dict[str, float] = {}
    for net in ("G", "Gs", "D"):
        tf = _variables(path, net, nets[net])
        lods[net] = _lod(path, net, tf, log2)
        mapped = _map_g(tf, log2) if net != "D" else _map_d(tf, log2)
        module = build_generator(graph) if net != "D" else build_discriminator(graph)
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


# ---------------------------------------------------------------------------------------- pytorch_GAN_zoo
def read_fbz_checkpoint(path: Path, name: str, dataset: str) -> Imported:
    """Read a pytorch_GAN_zoo PGAN checkpoint (see ``fbz``)."""
    from .fbz import read_fbz

    return read_fbz(path, name, dataset)


# ---------------------------------------------------------------------------------------- writing
def default_name(path: Path) -> str:
    """The model name a file imports as by default (karras2018iclr-celebahq-1024x1024.pkl -> celebahq-1024)."""
    stem = path.name
    for suffix in (".pkl", ".pt", ".pth"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    stem = re.sub(r"^karras2018iclr-", "", stem.lower())
    stem = re.sub(r"-(\d+)x\1$", r"-\1", stem)
    stem = re.sub(r"[^a-z0-9._-]+", "-", stem).strip("-._")
    return stem or "imported"


def _dataset(name: str) -> str:
    m = re.match(r"^(celebahq|lsun-[a-z_]+(?=-\d)|cifar10|celeba)", name)
    return m.group(1) if m else "unknown"


def read_file(path: str | Path, name: str | None = None) -> Imported:
    """Read an importable file (format detected from its first bytes) without writing anything."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    name = name or default_name(path)
    from .registry import NAME_RE

    if not NAME_RE.match(name):
        raise UsageError(f"--name {name!r}: use lower case, digits, '.', '_', '-'")
    data = path.read_bytes()
    kind = _sniff(path, data[:16])
    if kind == "torch":
        return read_fbz_checkpoint(path, name, _dataset(name))
    return read_tf_pickle(path, data, name, _dataset(name))


def import_model(source: str | Path, out: str | Path, *, name: str | None = None, force: bool = False,
                 samples: int = 16, seed: int = 0) -> Path:
    """Turn an official release pickle or a pytorch_GAN_zoo PGAN checkpoint into a saved model folder.

    The folder is written under a temporary name beside ``out`` and renamed when whole; on any error
    nothing is left behind. Returns ``out``.
    """
    from progan_zoo.compiler.load import load_text
    from progan_zoo.compiler.validate import validate

    from .export import check_out, finish_folder, folder_tensors, fresh_tmp
    from .model import ZooGenerator
    from .weights import save_tensors

    source, out = Path(source), Path(out)
    check_out(out, force, "--out")
    name = name or default_name(source)
    imp = read_file(source, name)
    spec = validate(load_text(imp.spec_text, F.SPEC))
    from progan_zoo.compiler.build import build_generator
    from progan_zoo.compiler.graph import to_graph

    from .model import truncate_generator

    G_full = build_generator(to_graph(spec))
    res = G_full.resolutions[imp.stage]
    keep = lambda state: {k: v for k, v in state.items() if int(k.split(".")[0][1:]) <= res}  # noqa: E731
    G = truncate_generator(G_full, imp.stage)
    G.load_state_dict(keep(imp.G_ema), strict=True)
    tensors, contents = folder_tensors(G, res, G=imp.G, D=imp.D)

    check = official_record(name, spec, imp.provenance)
    if check and not check["matched"]:
        print(f"progan-zoo import: no reported scores attached: {check['reason']}", file=sys.stderr)

    tmp = fresh_tmp(out, ".import-tmp")
    try:
        (tmp / F.SPEC).write_bytes(imp.spec_text.encode("utf-8"))
        save_tensors(tensors, tmp / F.WEIGHTS, metadata={"format": "pt"})
        ds = imp.dataset
        meta = F.ModelMetadata(
            name=name,
            spec=F.spec_record(spec, load_text(imp.spec_text).sha256),
            resolution=res,
            stage=imp.stage,
            alpha=imp.alpha,
            spec_resolution=spec.architecture.resolution,
            image_channels=G.image_channels,
            z_dim=G.z_dim,
            images_shown=None,
            dataset={"name": ds, "display_name": _DATASET_NAMES.get(ds, ds), "source": ds,
                     "resolution": spec.data.resolution, "channels": spec.data.channels},
            license=imp.provenance.license,
            weights=F.weights_record(tmp / F.WEIGHTS, contents),
            training={"imported_from": imp.provenance.source_file},
            provenance=imp.provenance.to_json(),
            official=check,
            reported=reported_scores(name, check),
            samples={"file": F.SAMPLES, "n": samples, "seed": seed},
        ).to_dict()
        finish_folder(tmp, out, ZooGenerator(G, spec, imp.spec_text, meta, alpha=imp.alpha), meta, samples, seed,
                      batch_size=4)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


_DATASET_NAMES = {"celebahq": "CelebA-HQ", "cifar10": "CIFAR-10", "celeba": "CelebA"}


def official_record(name: str, spec: Any, prov: Provenance) -> dict[str, Any] | None:
    """official.official_check for an imported network: is the file under an official name that network?"""
    from progan_zoo.compiler.graph import param_count, to_graph

    from .official import official_check

    graph = to_graph(spec)
    arch = spec.architecture
    return official_check(name, {"format": prov.format, "resolution": arch.resolution,
                                 "image_channels": arch.image_channels, "latent_size": arch.latent_size,
                                 "g_params": param_count(graph, "G"), "d_params": param_count(graph, "D"),
                                 "sha256": prov.sha256})


def reported_scores(name: str, check: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The paper's reported scores for an official network, marked as reported; only when ``check`` says
    the imported file is that network."""
    from .official import reported_for

    return reported_for(name, check)
