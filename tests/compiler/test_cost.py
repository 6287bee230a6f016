"""The cost model (compiler/cost.py) against torch's own counts on the tiny specs.

Tolerances, as docs/spec.md states them:
* FLOPs: torch.utils.flop_counter.FlopCounterMode on the forward passes and on a whole D step
  (WGAN-GP double backward included) and G step, every stage, stabilizing and fading: within 0.1 %.
* Activations kept by autograd (saved_tensors_hooks, one forward of G and of D): within 20 %.
* Peak memory per image of a training step: the slope of torch's CPU allocator peak
  (torch.profiler, profile_memory) between two minibatches, within 20 % at 8x8 and above; the
  slope of the process's peak RSS (subprocess + getrusage, marked slow) within -20 % / +80 %
  (glibc keeps freed blocks, so RSS runs above what tensors hold: +33 % measured).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from progan_zoo.cli import main
from progan_zoo.compiler import compile_spec, load_spec
from progan_zoo.compiler.cost import CostModelError, op_cost, rate_from_images, spec_cost
from progan_zoo.compiler.graph import to_graph
from progan_zoo.compiler.ops import OPS
from progan_zoo.nn.flops import count_flops
from progan_zoo.train.losses import gradient_penalty, make_loss

from .conftest import REPO, SPECS, TINY


def _steps(compiled, stage: int, alpha: float, n: int):
    G, D = compiled.G, compiled.D
    loss = make_loss(compiled.spec.training.loss)
    res = G.resolutions[stage]
    torch.manual_seed(0)
    z, reals = torch.randn(n, G.z_dim), torch.randn(n, G.image_channels, res, res)

    def d_step():  # as the trainer's d_step: fakes without a graph, the loss, backward
        with torch.no_grad():
            fakes = G(z, stage, alpha)
        loss.d_loss(lambda x: D(x, stage, alpha), reals, fakes, torch.rand(n))[0].backward()

    def g_step():  # as the trainer's g_step: D frozen
        D.requires_grad_(False)
        loss.g_loss(lambda x: D(x, stage, alpha), G(z, stage, alpha))[0].backward()
        D.requires_grad_(True)

    return z, reals, d_step, g_step


FUSED = REPO / "tests" / "fixtures" / "specs" / "tiny_fused_16.yaml"


@pytest.mark.parametrize("path", [*TINY, FUSED], ids=lambda p: p.stem)
def test_flops_match_torch_flop_counter(path) -> None:
    compiled = compile_spec(path)
    G, D = compiled.G, compiled.D
    cost = spec_cost(compiled.graph, compiled.spec)
    n = 4
    assert len(cost.stages) == 2 * G.num_stages - 1
    for c in cost.stages:
        alpha = 0.5 if c.fading else 1.0
        z, reals, d_step, g_step = _steps(compiled, c.stage, alpha, n)
        assert count_flops(lambda: G(z, c.stage, alpha)) / n == pytest.approx(c.g_forward_flops, rel=1e-3), c.label
        assert count_flops(lambda: D(reals, c.stage, alpha)) / n == pytest.approx(c.d_forward_flops, rel=1e-3), c.label
        assert count_flops(d_step) / n == pytest.approx(c.d_step_flops, rel=1e-3), c.label
        assert count_flops(g_step) / n == pytest.approx(c.g_step_flops, rel=1e-3), c.label
        assert c.train_flops_per_image == c.d_step_flops + c.g_step_flops


def _saved_bytes(fn) -> int:
    """Bytes autograd keeps for backward (each storage once, parameters included)."""
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


@pytest.mark.parametrize("path", [*TINY, FUSED], ids=lambda p: p.stem)
def test_saved_activations_match_autograd(path) -> None:
    """Per image: the slope between two minibatches (the weights and their scaled copies cancel)."""
    compiled = compile_spec(path)
    G, D = compiled.G, compiled.D
    small, large = 4, 12
    for c in spec_cost(compiled.graph, compiled.spec).stages:
        alpha = 0.5 if c.fading else 1.0
        per_image = {}
        for n in (small, large):
            z, reals, _, _ = _steps(compiled, c.stage, alpha, n)
            d = _saved_bytes(lambda: D(reals, c.stage, alpha))
            pen = _saved_bytes(lambda: gradient_penalty(lambda x: D(x, c.stage, alpha), reals, reals,
                                                        torch.rand(n, 1, 1, 1))) - d
            per_image[n] = (_saved_bytes(lambda: G(z, c.stage, alpha)), d, pen)
        g, d, pen = ((b - a) / (large - small) for a, b in zip(per_image[small], per_image[large]))
        assert g == pytest.approx(c.g_activation_bytes, rel=0.2), c.label
        assert d == pytest.approx(c.d_activation_bytes, rel=0.2), c.label
        assert pen == pytest.approx(c.penalty_graph_bytes, rel=0.2), c.label


_STEPS = r"""
import json, sys, torch
torch.set_num_threads(1)
from progan_zoo.compiler import compile_spec
from progan_zoo.train.losses import make_loss

def steps(path, stage, alpha):
    c = compile_spec(path)
    G, D, loss = c.G, c.D, make_loss(c.spec.training.loss)
    res = G.resolutions[stage]
    def d_step(n):  # as the trainer's d_step
        z, reals = torch.randn(n, G.z_dim), torch.randn(n, G.image_channels, res, res)
        with torch.no_grad():
            fakes = G(z, stage, alpha)
        loss.d_loss(lambda x: D(x, stage, alpha), reals, fakes, torch.rand(n))[0].backward()
    def g_step(n):  # as the trainer's g_step
        D.requires_grad_(False)
        loss.g_loss(lambda x: D(x, stage, alpha), G(torch.randn(n, G.z_dim), stage, alpha))[0].backward()
        D.requires_grad_(True)
    return G, D, d_step, g_step
"""

# torch's CPU allocator, as the profiler records it: the peak of live tensor bytes in a D step and a G step.
_PROFILE = _STEPS + r"""
from torch.profiler import ProfilerActivity, profile
small, large = 8, 40
slopes = []
for path, stage, alpha in json.loads(sys.argv[1]):
    G, D, d_step, g_step = steps(path, stage, alpha)
    peak_at = {}
    for n in (small, large):
        peaks = []
        for step in (d_step, g_step):
            G.zero_grad(set_to_none=True); D.zero_grad(set_to_none=True)
            with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
                step(n)
            events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                            key=lambda e: e.start_ns())
            cur = peak = 0
            for e in events:
                cur += e.nbytes(); peak = max(peak, cur)
            peaks.append(peak)
        peak_at[n] = max(peaks)
    slopes.append((peak_at[large] - peak_at[small]) / (large - small))
print(json.dumps(slopes))
"""

# The process's peak RSS after two full iterations (Adam included) at one minibatch.
_RSS = _STEPS + r"""
import resource
G, D, d_step, g_step = steps(sys.argv[1], int(sys.argv[2]), 1.0)
n = int(sys.argv[3])
opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
for _ in range(2):
    d_step(n); opt_D.step(); opt_D.zero_grad(set_to_none=True)
    g_step(n); opt_G.step(); opt_G.zero_grad(set_to_none=True)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _run(code: str, *args: object) -> str:
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          timeout=600, env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_activation_memory_matches_cpu_allocator_peak() -> None:
    """Per image: the slope of the allocator's peak between minibatches 8 and 40, within 20 %."""
    cases = [(TINY[0], 2, False), (TINY[0], 2, True), (TINY[1], 1, False)]
    slopes = json.loads(_run(_PROFILE, json.dumps([(str(p), s, 0.5 if f else 1.0) for p, s, f in cases])))
    for (path, stage, fading), slope in zip(cases, slopes):
        spec = load_spec(path)
        c = next(s for s in spec_cost(to_graph(spec), spec).stages if s.stage == stage and s.fading == fading)
        assert slope == pytest.approx(c.activation_bytes_per_image, rel=0.2), (path.stem, c.label)


@pytest.mark.slow
def test_activation_memory_against_peak_rss() -> None:
    """The measure an author has on any machine: the process's peak RSS, two minibatches apart.
    glibc keeps freed blocks for reuse, so RSS runs above the tensors' peak (measured: +33 %)."""
    spec = load_spec(TINY[0])
    c = next(s for s in spec_cost(to_graph(spec), spec).stages if s.stage == 2 and not s.fading)
    small, large = 16, 528
    slope = (int(_run(_RSS, TINY[0], 2, large)) - int(_run(_RSS, TINY[0], 2, small))) / (large - small)
    assert 0.8 * c.activation_bytes_per_image <= slope <= 1.8 * c.activation_bytes_per_image


def test_every_op_has_a_cost_entry() -> None:
    for name in OPS.names():
        assert OPS.get(name).cost is not None, f"layer op '{name}' needs a cost (an OpCost) on its entry in compiler/ops.py"
    with pytest.raises(CostModelError, match="no entry for op 'fused_up3x3'.*OpCost.*compiler/ops.py"):
        op_cost("fused_up3x3")


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_shipped_specs_cost_and_schedule(path) -> None:
    """Parameters agree with the graph; the schedule's phases agree with the trainer's Schedule."""
    from progan_zoo.train.schedule import Schedule

    spec = load_spec(path)
    graph = to_graph(spec)
    cost = spec_cost(graph, spec)
    from progan_zoo.compiler.graph import param_count

    assert (cost.g_params, cost.d_params) == (param_count(graph, "G"), param_count(graph, "D"))
    top = [c for c in cost.stages if not c.fading][-1]
    lower_rgb = sum(a["params"] for _, a in graph.nodes(data=True)
                    if a["kind"] in ("torgb", "fromrgb") and a["stage"] < top.stage)
    assert top.g_params + top.d_params + lower_rgb == cost.g_params + cost.d_params
    assert cost.total_images == pytest.approx(spec.training.total_kimg * 1000)
    sched = Schedule(spec)
    for p in cost.phases:
        mid = sched.at((p.kimg_start + p.kimg_end) / 2)
        assert (mid.stage, mid.fading, mid.minibatch) == (p.cost.stage, p.cost.fading, p.cost.minibatch), p.cost.label
    # The model allocates nothing, so even a 1024x1024 spec costs milliseconds.
    assert all(c.memory_bytes() > c.fixed_bytes > 0 for c in cost.stages)


def test_celebahq_figures() -> None:
    """Table 2's networks: 23.1M parameters each; FLOPs grow with the resolution."""
    spec = load_spec(REPO / "specs" / "celebahq_1024.yaml")
    cost = spec_cost(to_graph(spec), spec)
    assert (cost.g_params, cost.d_params) == (23_079_115, 23_087_249)
    top = cost.stages[-1]
    assert top.label == "1024x1024" and top.minibatch == 32
    # G at 1024: sum over layers of 2 x weights x pixels, by hand for the 1024 block's two convs.
    assert top.g_forward_flops > 2 * (32 * 16 * 9 + 16 * 16 * 9) * 1024 * 1024
    flops = [c.train_flops_per_image for c in cost.stages if not c.fading]
    assert flops == sorted(flops)
    rate = rate_from_images(cost, 10.0)
    assert rate.flops_per_s == pytest.approx(10.0 * top.train_flops_per_image)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        rc = main(["compile", *argv])
    except SystemExit as exc:  # argparse: a bad number is refused where it is parsed
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_cost_table(capsys) -> None:
    rc, out, _ = run(capsys, str(REPO / "specs" / "celebahq_1024.yaml"), "--cost")
    assert rc == 0
    assert "Cost of celebahq-1024: G 23,079,115 parameters" in out
    for res in (4, 8, 64, 1024):
        assert f"\n{res}x{res} " in out
    assert "1024x1024 fade" in out and "train FLOP/img" in out and "peak memory" in out
    assert "\nTotal " in out and "12 M" in out  # 12000 kimg shown
    assert "time, 1 device" not in out


def test_cli_cost_rate_devices_and_json(capsys, tmp_path) -> None:
    spec = str(TINY[0])
    rc, out, _ = run(capsys, spec, "--cost", "--rate", "100", "--devices", "4")
    assert rc == 0 and "time, 1 device" in out and "time, 4 devices" in out and "scale linearly" in out
    rc, out, _ = run(capsys, spec, "--json", "--rate", "100", "--rate-res", "8", "--devices", "2")
    data = json.loads(out)
    assert rc == 0 and data["stage"] == "cost"
    sched = data["cost"]["schedule"]
    assert sched["seconds"] == pytest.approx(2 * sched["seconds_2_devices"])
    assert sched["seconds"] == pytest.approx(sum(p["seconds"] for p in sched["phases"]))
    eight = next(s for s in data["cost"]["stages"] if s["label"] == "8x8")
    assert data["cost"]["rate"]["flops_per_s"] == pytest.approx(100 * eight["train_flops_per_image"])
    # A run's log.jsonl: the median of the ticks at the last record's resolution.
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps({"resolution": 16, "alpha": 1.0, "images_per_s": v}) for v in (10, 30, 20)) + "\n")
    rc, out, _ = run(capsys, spec, "--json", "--rate-from", str(log))
    top = next(s for s in json.loads(out)["cost"]["stages"] if s["label"] == "16x16")
    assert rc == 0 and json.loads(out)["cost"]["rate"]["flops_per_s"] == pytest.approx(20 * top["train_flops_per_image"])
    # benchmarks/bench_train.py --json: its achieved GFLOP/s, counted with the same convention.
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"variant": "fp32", "resolution": 32, "images_per_s": 20.9, "gflops": 17.5}) + "\n")
    rc, out, _ = run(capsys, spec, "--json", "--rate-from", str(bench))
    assert rc == 0 and json.loads(out)["cost"]["rate"]["flops_per_s"] == pytest.approx(17.5e9)


@pytest.mark.parametrize(("argv", "message"), [
    (["--rate", "0"], "argument --rate: '0': expected a finite number > 0"),
    (["--rate", "nan"], "argument --rate: 'nan': expected a finite number > 0"),
    (["--cost", "--devices", "0"], "argument --devices: '0': expected an integer from 1 to 65536"),
    (["--rate", "5", "--rate-res", "24"], "argument --rate-res: '24': expected a power of two"),
    (["--rate", "5", "--rate-res", "64"], "--rate-res 64: resolution 64 is not one of this spec's"),
    (["--rate-from", "/nonexistent/log.jsonl"], "/nonexistent/log.jsonl: cannot read the rate file"),
    (["--cost", "--stop-after", "graph"], "--cost reads the graph"),
])
def test_cli_cost_bad_arguments(capsys, argv, message) -> None:
    rc, _, err = run(capsys, str(TINY[0]), *argv)
    assert rc == 2 and message in err and err.count("\n") == 1


def test_absurd_sizes_are_refused_before_any_allocation(tmp_path, capsys) -> None:
    """The issue's case: latent_size 1e12 used to reach the allocator; now exit 2 with its position."""
    text = TINY[0].read_text().replace("latent_size: 16", "latent_size: 1000000000000")
    bad = tmp_path / "huge.yaml"
    bad.write_text(text)
    rc, _, err = run(capsys, str(bad), "--cost")
    assert rc == 2 and f"{bad}:8:16: architecture.latent_size: latent_size 1000000000000 is beyond any machine" in err
    # One image too large to hold: 8192x8192 with 64 maps in the top block.
    rows = [(4 * 2 ** i) for i in range(12)]
    g = "\n".join(f"    - {{resolution: {r}, channels: {64 if r == 8192 else 16}}}" for r in rows)
    d = "\n".join(f"    - {{resolution: {r}, channels: [16, 16]}}" for r in rows[::-1])
    spec = (f"spec_version: 1\nname: wide\nrevision: 1\nsource: test\nlicense: apache-2.0\narchitecture:\n"
            f"  latent_size: 16\n  image_channels: 3\n  resolution: 8192\n  generator:\n{g}\n  discriminator:\n{d}\n"
            "training:\n  total_kimg: 1\n  defaults: {stabilize_kimg: 1, fade_kimg: 1, minibatch: 4, learning_rate: 0.001}\n"
            "data: {source: x, resolution: 8192, channels: 3}\n")
    wide = tmp_path / "wide.yaml"
    wide.write_text(spec)
    rc, _, err = run(capsys, str(wide))
    assert rc == 2 and "architecture.generator[11].channels: the 8192x8192 generator conv3x3 layer's output for one " \
                       "image would hold 4.3e+09 values, 17.2 GB in fp32" in err


@pytest.mark.parametrize("path", SPECS + TINY, ids=lambda p: p.stem)
def test_size_check_counts_every_parameter(path) -> None:
    from progan_zoo.compiler.graph import param_count
    from progan_zoo.compiler.limits import _layer_sizes

    spec = load_spec(path)
    graph = to_graph(spec)
    assert sum(p for _, _, p, _ in _layer_sizes(spec)) == param_count(graph, "G") + param_count(graph, "D")


def test_docs_cost_section_is_fresh() -> None:
    from progan_zoo.compiler.cost_report import check_docs

    assert check_docs(), "the cost tables in docs/spec.md are stale: run `python -m progan_zoo.compiler.cost --docs`"
