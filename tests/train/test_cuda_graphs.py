"""--cuda-graphs (issue 11, item 3): the static-step code path, run on the CPU without capture.

The static steps (graphs.py) copy inputs into fixed buffers, take the fade weight as a tensor and update
Adam from host-computed factors, which is what a CUDA graph needs; on the CPU they run eagerly. These
tests show that this path trains *bitwise* like the default loop (every weight, Adam moment and logged
loss), across a fade-in and a growth, with the lazy penalty's two step kinds, and through a resume. Bitwise
holds because every kernel sees the same float32 operands: a 0-dim float32 tensor holding alpha or Adam's
step size rounds exactly as the Python double the default passes. Capture itself is tested on CUDA
(tests/gpu/test_gpu_cuda_graphs.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from progan_zoo.cli import main
from progan_zoo.errors import UsageError
from progan_zoo.train import checkpoint as ckpt_io
from progan_zoo.train.checks import check_graphs
from progan_zoo.train.config import TrainConfig
from progan_zoo.train.dist import DistInfo
from progan_zoo.train.graphs import StaticSteps
from progan_zoo.train.trainer import train

# A variant that exercises more of the step: no Adam reset on growth (so parameters of one network carry
# different Adam step counts), a learning-rate ramp-up over the whole run, and two D steps per G step.
VARIANT = """
  optimizer: {reset_on_growth: false}
  lr_rampup: {kimg: 0.5, shape: linear}
  d_repeats: 2
"""


def _variant(tiny_spec, tmp_path):
    text = tiny_spec.read_text().replace("training:\n", "training:" + VARIANT, 1)
    path = tmp_path / "variant.yaml"
    path.write_text(text)
    return path


def _train(spec, out, steps, static, resume=None, **kw):
    train(TrainConfig(spec=None if resume else str(spec), out=str(out), resume=resume, max_steps=steps,
                      tick_kimg=0.1, progress=False, grid=4, tensorboard="off", static_steps=static, **kw))
    return ckpt_io.list_checkpoints(out)[-1]


def _assert_same_run(a, b):
    for name in ("G", "G_ema", "D", "optim"):
        ta, tb = load_file(str(a / f"{name}.safetensors")), load_file(str(b / f"{name}.safetensors"))
        assert ta.keys() == tb.keys(), name
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{name} {k}: max diff {(ta[k] - tb[k]).abs().max()}"
    sa, sb = json.loads((a / "state.json").read_text()), json.loads((b / "state.json").read_text())
    for k in ("nimg", "step", "stage", "alpha", "lod", "rng"):
        assert sa[k] == sb[k], k


def _losses(run):
    skip = {"images_per_s", "sec_per_tick", "time"}
    return [{k: v for k, v in json.loads(line).items() if k not in skip}
            for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("which", ["fixture", "variant"])
def test_static_steps_train_bitwise_like_the_default(tiny_spec, tmp_path, which):
    """60 minibatches of 8: 4x4, the 8x8 fade-in (alpha changes every group), the Adam reset, 8x8 stable."""
    spec = tiny_spec if which == "fixture" else _variant(tiny_spec, tmp_path)
    steps = 60 if which == "fixture" else 32
    ref = _train(spec, tmp_path / "default", steps, static=False, lazy_penalty=2)
    got = _train(spec, tmp_path / "static", steps, static=True, lazy_penalty=2)
    state = json.loads((got / "state.json").read_text())
    assert state["stage"] == 1 and (which == "variant" or state["alpha"] == 1.0)   # past a fade (and a growth)
    _assert_same_run(ref, got)
    assert _losses(tmp_path / "default") == _losses(tmp_path / "static")


class _StandInGraph:
    """What a CUDA graph does, on the CPU: recording runs nothing; each replay runs the recorded step
    with gradients unset first (a captured backward writes its gradients, it does not accumulate)."""

    def __init__(self, body, opt, out):
        self.body, self.opt, self.out = body, opt, out

    def replay(self):
        self.opt.zero_grad(set_to_none=True)
        res = self.body()
        self.out.resize_(res.shape).copy_(res)


class _Simulated(StaticSteps):
    """StaticSteps with capture on and the stand-in graph: the warm-up counting, the capture points, the
    replay's host-side Adam factors and the re-capture checks all run as they do on CUDA."""

    def __init__(self, nets, capture=False):
        super().__init__(nets, capture=False)
        self.capture = True

    def _record(self, body, opt):
        out = torch.empty(0)
        return _StandInGraph(body, opt, out), out


def test_simulated_capture_and_replay_train_bitwise_like_the_default(tiny_spec, tmp_path, monkeypatch):
    """The replay path (not just the eager one) trains bitwise like the default loop, and re-captures as
    documented: 60 minibatches with --lazy-penalty 2 are 28 at 4x4, 24 fading in 8x8 and 8 at 8x8 (groups
    of 4); each phase captures D with the penalty, D without it and G: 9 graphs."""
    from progan_zoo.train import runstate

    made = []
    monkeypatch.setattr(runstate, "StaticSteps", lambda nets, capture: made.append(_Simulated(nets)) or made[-1])
    ref = _train(tiny_spec, tmp_path / "default", 60, static=False, lazy_penalty=2)
    got = _train(tiny_spec, tmp_path / "static", 60, static=True, lazy_penalty=2)
    assert made[0].captures == 9
    _assert_same_run(ref, got)
    assert _losses(tmp_path / "default") == _losses(tmp_path / "static")


def test_simulated_replay_recaptures_after_an_adam_reset(tiny_spec, tmp_path, monkeypatch):
    """Replacing Adam's state (the official reset; here without a phase change) drops the stale graph."""
    from progan_zoo.compiler import load_spec
    from progan_zoo.train import runstate
    from progan_zoo.train.optim import reset_optimizers
    from progan_zoo.train.schedule import Schedule

    made = []
    monkeypatch.setattr(runstate, "StaticSteps", lambda nets, capture: made.append(_Simulated(nets)) or made[-1])
    _train(tiny_spec, tmp_path / "run", 4, static=True)
    static = made[0]
    n = static.nets
    phase = Schedule(load_spec(tiny_spec)).at(0.0)
    g = torch.Generator().manual_seed(1)
    batch = lambda: (torch.rand(8, 1, 4, 4, generator=g) * 2 - 1, torch.randn(8, n.G.z_dim, generator=g),  # noqa: E731
                     torch.rand(8, generator=g))
    assert static.captures == 2
    static.d_step(*batch(), phase)
    reset_optimizers(n.opt_D)
    for _ in range(3):
        static.d_step(*batch(), phase)
    assert static.captures == 3
    assert all(torch.isfinite(p).all() for p in n.D.parameters())


def test_static_steps_resume_bitwise(tiny_spec, tmp_path):
    """A static run cut mid-fade and resumed (new buffers, Adam state read back) ends where one
    uninterrupted default run ends."""
    ref = _train(tiny_spec, tmp_path / "default", 40, static=False)
    _train(tiny_spec, tmp_path / "static", 32, static=True)
    got = _train(tiny_spec, tmp_path / "static", 8, static=True, resume=str(tmp_path / "static"))
    assert got.name == ref.name
    _assert_same_run(ref, got)


def test_static_adam_is_torch_adam_bitwise():
    """The update on Adam's own state with host-computed factors equals torch.optim.Adam step for step,
    with a learning rate that changes every step and parameters at different step counts."""
    torch.manual_seed(0)
    shapes = [(6, 5), (7,), (3, 3)]
    a = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    opt_a = torch.optim.Adam(a, lr=1e-3, betas=(0.0, 0.99), eps=1e-8)
    opt_b = torch.optim.Adam(b, lr=1e-3, betas=(0.0, 0.99), eps=1e-8)

    class _Nets:
        dist = DistInfo(device=torch.device("cpu"))

    steps = StaticSteps(_Nets(), capture=False)
    from progan_zoo.train.graphs import _Kind

    for it in range(12):
        active = [0, 1] if it < 4 else [0, 1, 2]   # the third parameter joins later: two step counts
        for opt in (opt_a, opt_b):
            for g in opt.param_groups:
                g["lr"] = 1e-3 * (it + 1) / 12
        grads = [torch.randn(s) for s in shapes]
        for i in range(3):
            a[i].grad = grads[i].clone() if i in active else None
            b[i].grad = grads[i].clone() if i in active else None
        opt_a.step()
        params = [b[i] for i in active]
        steps._ensure_state(opt_b, params)
        kind = _Kind(groups=steps._grouped(opt_b, params))
        assert len(kind.groups) == (2 if it >= 4 else 1)
        kind.scalars = torch.tensor(steps._host_scalars(opt_b, kind.groups))
        steps._adam(opt_b, kind)
        for pa, pb in zip(a, b):
            assert torch.equal(pa, pb)
    for pa, pb in zip(a, b):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(opt_a.state[pa][key], opt_b.state[pb][key]), key


def test_static_steps_under_bf16_autocast_match(tiny_spec, tmp_path):
    """--amp bf16 on the CPU: the static path runs the same autocast regions (cache off), same numbers."""
    ref = _train(tiny_spec, tmp_path / "default", 8, static=False, amp="bf16")
    got = _train(tiny_spec, tmp_path / "static", 8, static=True, amp="bf16")
    _assert_same_run(ref, got)


def test_cuda_graphs_flag_needs_cuda(tiny_spec, tmp_path, capsys):
    rc = main(["train", str(tiny_spec), "--out", str(tmp_path / "run"), "--device", "cpu", "--cuda-graphs",
               "--steps", "1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "--cuda-graphs needs a CUDA device" in err[0] and "cpu" in err[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("kw, world, words", [
    ({}, 2, "with 2 ranks"),
    ({"shared_fakes": True}, 1, "--shared-fakes"),
])
def test_cuda_graphs_refuses_unsupported_combinations(kw, world, words):
    with pytest.raises(UsageError, match=words):
        check_graphs(TrainConfig(cuda_graphs=True, **kw), torch.device("cuda"), world)
    check_graphs(TrainConfig(cuda_graphs=False, **kw), torch.device("cuda"), world)   # off: nothing to check
