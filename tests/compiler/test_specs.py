"""Every shipped spec compiles, and the paper-sized ones have exactly the official parameter counts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from progan_zoo.compiler import compile_spec, load_spec, param_count

from .conftest import REPO, SPECS, TINY


def test_specs_are_shipped() -> None:
    names = {p.name for p in SPECS}
    assert {"celebahq_1024.yaml", "lsun_256.yaml", "celeba_128.yaml", "cifar10_32.yaml", "mnist_32.yaml"} <= names


@pytest.mark.parametrize("path", SPECS + TINY, ids=lambda p: p.name)
def test_every_spec_compiles(path: Path) -> None:
    c = compile_spec(path)
    spec = c.spec
    res = [r.resolution for r in spec.architecture.generator]
    assert c.G.resolutions == c.D.resolutions == res
    assert res[-1] == spec.architecture.resolution == spec.data.resolution
    assert c.G.z_dim == spec.architecture.latent_size and c.G.image_channels == spec.data.channels
    # The table prints the graph's counts; the modules must agree with them.
    assert sum(p.numel() for p in c.G.parameters()) == param_count(c.graph, "G")
    assert sum(p.numel() for p in c.D.parameters()) == param_count(c.graph, "D")
    assert c.raw.text == path.read_text() and len(c.sha256) == 64
    if path.parent.name == "specs":
        assert spec.source.strip() and spec.license.strip() and spec.data.source.strip()


def closed_form(fmap_base: int, fmap_max: int, latent: int, resolution: int, channels: int = 3) -> tuple[int, int]:
    """Parameter counts of the official G_paper / D_paper from nf(s) = min(fmap_base / 2^s, fmap_max)."""
    R = int(math.log2(resolution))

    def nf(s: int) -> int:
        return min(int(fmap_base / 2.0 ** s), fmap_max)

    def conv(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k + cout

    g = latent * 16 * nf(1) + nf(1) + conv(nf(1), nf(1), 3)           # 4x4: dense ('conv 4x4') + conv 3x3
    g += sum(conv(nf(r - 2), nf(r - 1), 3) + conv(nf(r - 1), nf(r - 1), 3) for r in range(3, R + 1))
    g += sum(conv(nf(r - 1), channels, 1) for r in range(2, R + 1))   # one toRGB per resolution
    d = sum(conv(nf(r - 1), nf(r - 1), 3) + conv(nf(r - 1), nf(r - 2), 3) for r in range(3, R + 1))
    d += sum(conv(channels, nf(r - 1), 1) for r in range(2, R + 1))   # one fromRGB per resolution
    d += conv(nf(1) + 1, nf(1), 3) + nf(1) * 16 * nf(0) + nf(0) + nf(0) + 1  # mbstd, conv, dense, output
    return g, d


def test_celebahq_matches_table2_and_official_counts() -> None:
    c = compile_spec(REPO / "specs" / "celebahq_1024.yaml")
    g, d = param_count(c.graph, "G"), param_count(c.graph, "D")
    # The official TF release reports exactly these (Table 2: 23.1M each).
    assert (g, d) == (23_079_115, 23_087_249)
    assert (g, d) == closed_form(8192, 512, 512, 1024)
    assert round(g / 1e6, 1) == round(d / 1e6, 1) == 23.1


@pytest.mark.parametrize("name, fmap_base, fmap_max, latent", [
    ("celebahq_1024", 8192, 512, 512),
    ("lsun_256", 4096, 512, 512),       # paper-era config.py, section 6.4.1: G.update(fmap_base=4096)
    ("celeba_128", 2048, 512, 512),     # section 6.1: G.update(fmap_base=2048)
    ("cifar10_32", 4096, 512, 512),     # section 6.4.2: fmap_base 4096; fmap_max and latent the baseline's
])
def test_paper_specs_follow_official_nf(name: str, fmap_base: int, fmap_max: int, latent: int) -> None:
    spec = load_spec(REPO / "specs" / f"{name}.yaml")
    from progan_zoo.compiler import to_graph
    graph = to_graph(spec)
    want = closed_form(fmap_base, fmap_max, latent, spec.architecture.resolution)
    assert (param_count(graph, "G"), param_count(graph, "D")) == want


def test_paper_era_training_settings() -> None:
    """The numbers of the Theano config.py the three paper specs encode."""
    lsun, celeba, cifar = (load_spec(REPO / "specs" / f"{n}.yaml") for n in ("lsun_256", "celeba_128", "cifar10_32"))
    for spec, kimg, total, mirror in ((lsun, 800, 20000, False), (celeba, 800, 10000, True), (cifar, 400, 15000, False)):
        t = spec.training
        assert (t.defaults.stabilize_kimg, t.defaults.fade_kimg, t.total_kimg) == (kimg, kimg, total)
        assert t.defaults.minibatch == 16 and t.schedule == [] and t.mirror_augment is mirror
        assert spec.architecture.options.mbstd_group_size == 16  # mbstat_avg 'all': one group per minibatch
        assert t.minibatch_repeats == 1 and t.optimizer.reset_on_growth  # the Theano loop, see docs/training.md
    assert cifar.training.loss.gp_target == 750 and cifar.architecture.latent_size == 512
    assert lsun.training.lr_rampup.kimg == 40 and lsun.training.lr_rampup.shape == "exp"
    assert celeba.training.lr_rampup.kimg == cifar.training.lr_rampup.kimg == 0


def test_built_modules_are_float32_and_fresh() -> None:
    c = compile_spec(TINY[0])
    assert all(p.dtype == torch.float32 and p.requires_grad for p in c.G.parameters())
