"""``progan-zoo import``: the official ProGAN release files and pytorch_GAN_zoo PGAN checkpoints as saved models.

Two formats are read (``sources.tf_pickle``, ``sources.fbz``), neither by running anything stored in
the file:

- the official TF release (tkarras/progressive_growing_of_gans): a pickle of ``(G, D, Gs)``
  ``tfutil.Network`` states, read by ``safe_pickle``;
- pytorch_GAN_zoo's PGAN checkpoint (``torch.save`` zip of ``{config, netG, netD, avgG}``), read
  by ``torch.load(weights_only=True)`` with its one ``BaseConfig`` class mapped to a plain
  attribute holder.

Each reader returns an ``Imported`` (a spec text and state dicts); this module writes it as a saved
model folder: ``model.safetensors`` (G_ema, plus ``G.*`` and ``D.*``), ``spec.yaml``,
``metadata.json`` with the file's provenance, the model card and a sample grid. The folder is
written under a temporary name and renamed when whole, so a failure leaves nothing behind.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from progan_zoo.errors import UsageError

from . import records as R
from .records import Imported

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
        from .sources.fbz import read_fbz

        return read_fbz(path, name, _dataset(name))
    from .sources.tf_pickle import read_tf_pickle

    return read_tf_pickle(path, data, name, _dataset(name))


def import_model(source: str | Path, out: str | Path, *, name: str | None = None, force: bool = False,
                 samples: int = 16, seed: int = 0) -> Path:
    """Turn an official release pickle or a pytorch_GAN_zoo PGAN checkpoint into a saved model folder.

    The folder is written under a temporary name beside ``out`` and renamed when whole; on any error
    nothing is left behind. Returns ``out``.
    """
    from progan_zoo.compiler import compile_spec

    from .folder import check_out, write_folder
    from .model import ZooGenerator

    source, out = Path(source), Path(out)
    check_out(out, force, "--out")
    name = name or default_name(source)
    imp = read_file(source, name)
    compiled = compile_spec(R.SPEC, text=imp.spec_text, nets="G")
    spec, G_full = compiled.spec, compiled.G
    res = G_full.resolutions[imp.stage]
    keep = lambda state: {k: v for k, v in state.items() if int(k.split(".")[0][1:]) <= res}  # noqa: E731
    G = G_full.at_stage(imp.stage)
    G.load_state_dict(keep(imp.G_ema), strict=True)
    check = official_record(name, compiled, imp.provenance)
    if check and not check["matched"]:
        print(f"progan-zoo import: no reported scores attached: {check['reason']}", file=sys.stderr)
    ds = imp.dataset
    meta = R.ModelMetadata(
        name=name,
        spec=R.spec_record(spec, compiled.sha256),
        resolution=res,
        stage=imp.stage,
        alpha=imp.alpha,
        spec_resolution=spec.architecture.resolution,
        image_channels=G.image_channels,
        z_dim=G.z_dim,
        images_shown=None,
        dataset={"name": ds, "display_name": _DATASET_NAMES.get(ds, ds), "source": ds,
                 "resolution": spec.data.resolution, "channels": spec.data.channels, **R.dataset_classes(spec)},
        license=imp.provenance.license,
        training={"imported_from": imp.provenance.source_file},
        provenance=imp.provenance.to_json(),
        official=check,
        reported=reported_scores(name, check),
        samples={"file": R.SAMPLES, "n": samples, "seed": seed},
    )
    write_folder(out, ZooGenerator(G, spec, imp.spec_text, meta, alpha=imp.alpha), ".import-tmp", samples=samples,
                 seed=seed, batch_size=4, G=imp.G, D=imp.D)
    return out


_DATASET_NAMES = {"celebahq": "CelebA-HQ", "cifar10": "CIFAR-10", "celeba": "CelebA"}


def official_record(name: str, compiled: Any, prov: R.Provenance) -> dict[str, Any] | None:
    """official.official_check for an imported network: is the file under an official name that network?"""
    from progan_zoo.compiler.graph import param_count

    from .official import official_check

    arch = compiled.spec.architecture
    return official_check(name, {"format": prov.format, "resolution": arch.resolution,
                                 "image_channels": arch.image_channels, "latent_size": arch.latent_size,
                                 "g_params": param_count(compiled.graph, "G"),
                                 "d_params": param_count(compiled.graph, "D"), "sha256": prov.sha256})


def reported_scores(name: str, check: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The paper's reported scores for an official network, marked as reported; only when ``check`` says
    the imported file is that network."""
    from .official import reported_for

    return reported_for(name, check)
