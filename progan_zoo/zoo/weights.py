"""Safetensors files, checked before a single tensor is read.

Weights are only ever read as safetensors: the format is a JSON header plus raw bytes, so reading
it cannot run code (a pickle can). Before loading we check the header's structure, so a truncated
download, a pickle renamed ``.safetensors`` or a file that is not safetensors at all is reported
as what it is, and the file's sha256 against the one the saved model's metadata records.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from progan_zoo.errors import UserError

if TYPE_CHECKING:
    import torch

# A safetensors header is small JSON; anything claiming more than this is not one.
_MAX_HEADER = 100 * 1024 * 1024

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}


class WeightsError(UserError):
    """A weights file that cannot be used: missing, truncated, not safetensors, tampered or mismatched."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _sniff(head: bytes) -> str | None:
    """Name the format of a file that is not safetensors, from its first bytes."""
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (the format torch.save writes, which holds a pickle)"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle"
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer (the real file was never downloaded; run `git lfs pull`)"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file"
    return None


def read_header(path: str | Path) -> dict[str, Any]:
    """Parse and check a safetensors header: tensor names -> {dtype, shape, data_offsets}.

    Raises WeightsError naming the file when it is missing, not safetensors (e.g. a pickle), or
    truncated. The ``__metadata__`` entry, if any, is kept under that key.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: no such weights file (export the model again with `progan-zoo export`, "
                           "or download it again)")
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(8)
        kind = _sniff(head + f.read(24))
        if kind is not None:
            raise WeightsError(f"{p}: is {kind}, not safetensors; progan-zoo never unpickles weights "
                               "(convert it once with safetensors.torch.save_file in an environment you trust, "
                               "or export the model again with `progan-zoo export`)")
        if len(head) < 8:
            raise WeightsError(f"{p}: is {size} bytes, too short to be safetensors (truncated download or copy? "
                               "fetch or export the file again)")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER or n == 0:
            raise WeightsError(f"{p}: is not a safetensors file (its first 8 bytes do not give a header length; "
                               "export the model again with `progan-zoo export`)")
        if 8 + n > size:
            raise WeightsError(f"{p}: is truncated: {size} bytes, but its header alone needs {8 + n} "
                               "(fetch or export the file again)")
        f.seek(8)
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        raise WeightsError(f"{p}: is not a safetensors file (unreadable header: {exc}); "
                           "export the model again with `progan-zoo export`") from None
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = info["data_offsets"]
            count = 1
            for d in info["shape"]:
                count *= int(d)
            width = _DTYPE_BYTES.get(info["dtype"])
        except (KeyError, TypeError, ValueError):
            raise WeightsError(f"{p}: tensor {name!r} has a malformed header entry; "
                               "export the model again with `progan-zoo export`") from None
        if width is not None and stop - start != count * width:
            raise WeightsError(f"{p}: tensor {name!r} has {stop - start} bytes for shape {info['shape']} "
                               f"{info['dtype']}; the file is corrupt (export it again)")
        end = max(end, stop)
    if 8 + n + end > size:
        raise WeightsError(f"{p}: is truncated: {size} bytes, but its tensors need {8 + n + end} "
                           "(fetch or export the file again)")
    if 8 + n + end < size:
        raise WeightsError(f"{p}: has {size - 8 - n - end} bytes after its last tensor; the file was altered "
                           "(fetch or export it again)")
    return header


def tensor_shapes(header: dict[str, Any], prefix: str = "") -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a header, keeping names under ``prefix`` (with it removed).

    With an empty prefix, names holding a ``G.`` or ``D.`` prefix (the optional raw G and D copies
    of a saved model) are left out, so what remains is the EMA generator.
    """
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if prefix:
            if name.startswith(prefix):
                out[name[len(prefix):]] = tuple(info["shape"])
        elif not name.startswith(("G.", "D.")):
            out[name] = tuple(info["shape"])
    return out


def check_sha256(path: str | Path, expected: str | None, metadata_file: str | Path) -> str:
    """Compare a file's sha256 with the one recorded in ``metadata_file``; return the actual hash."""
    actual = sha256_file(path)
    if not expected:
        raise WeightsError(f"{metadata_file}: records no weights sha256 (weights.sha256), so {Path(path).name} "
                           "cannot be verified; export the model again with `progan-zoo export`")
    if actual != expected:
        raise WeightsError(f"{path}: sha256 is {actual[:16]}..., but {Path(metadata_file).name} expects "
                           f"{expected[:16]}...; the weights were changed or corrupted (download or export "
                           "them again; never edit metadata.json to match)")
    return actual


def load_tensors(path: str | Path, prefix: str = "", device: str = "cpu") -> dict[str, "torch.Tensor"]:
    """Read tensors (see ``tensor_shapes`` for the prefix rule). Only safetensors is ever parsed."""
    from safetensors import safe_open

    out = {}
    with safe_open(str(path), framework="pt", device=device) as f:
        for name in f.keys():
            if prefix:
                if name.startswith(prefix):
                    out[name[len(prefix):]] = f.get_tensor(name)
            elif not name.startswith(("G.", "D.")):
                out[name] = f.get_tensor(name)
    return out


def save_tensors(tensors: dict[str, "torch.Tensor"], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write tensors as safetensors (contiguous CPU copies), atomically via a temporary name."""
    from safetensors.torch import save_file

    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    tmp.chmod(0o644)  # safetensors creates files owner-only; a published model is meant to be read
    tmp.replace(p)


def check_weights_match(G: "torch.nn.Module", header: dict[str, Any], weights_path: Path, spec_path: Path,
                        prefix: str = "") -> None:
    """The file's tensors must be exactly G's state_dict: same names, same shapes."""
    want = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    have = tensor_shapes(header, prefix)
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if not (missing or extra or wrong):
        return
    parts = []
    if wrong:
        k = next((w for w in wrong if w.endswith(".weight")), wrong[0])  # a weight's shape says more than a bias
        parts.append(f"{len(wrong)} tensor(s) differ in shape, e.g. {prefix}{k} is {list(have[k])} in the file but "
                     f"{list(want[k])} in the spec")
    if missing:
        parts.append(f"{len(missing)} tensor(s) the spec needs are missing, e.g. {prefix}{missing[0]}")
    if extra:
        parts.append(f"{len(extra)} tensor(s) the spec does not have, e.g. {prefix}{extra[0]}")
    raise WeightsError(f"{weights_path}: does not match {spec_path.name}: {'; '.join(parts)} (the spec and weights "
                       "come from different models; export the model again from its run)")


def load_checked(net: "torch.nn.Module", file: Path, spec_file: Path, header: dict[str, Any] | None = None) -> None:
    """Read a safetensors file into ``net`` after checking its structure (``header``: already read)
    and that its names and shapes are exactly ``net``'s."""
    header = read_header(file) if header is None else header
    check_weights_match(net, header, file, spec_file)
    net.load_state_dict(load_tensors(file), strict=True)
