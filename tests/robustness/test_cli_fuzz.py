"""A property-based fuzz of the ``progan-zoo`` command line: every subcommand, every option.

The options are read from the argument parsers themselves (``build_parser().commands``), so a flag
added tomorrow is fuzzed without anyone listing it here. Each one gets the values a new user or a
script plausibly hands over (negative, zero, huge, NaN, infinities, empty, non-numeric, unicode,
paths that do not exist, files where folders are expected, ...) on top of a small valid command, and
the command must end in exit 0 or 2, with one line on stderr after a refusal, no traceback, and no
new file or folder left behind by a refusal.

The commands run in this process (``progan_zoo.cli.main``), for real, on tiny inputs (a 4 -> 16 px
spec, a run of it, the shipped mnist-32 model, two 8x8 PNGs). Where a valid value would start long
work, that work is cut short at one named seam (``SEAMS``), after every check of the arguments has
run: the training loop (``Run.train``: the spec, data, run directory, lock and networks are all
made); the image counts of ``generate``, ``interpolate``, ``evaluate`` and ``video`` (clipped to a
few images or frames; loading, writing and the metrics' code still run); the steps and starts of
``project`` (at most 2); and ``export-onnx``'s export itself (the model is loaded, nothing written).

Cases per option: the fixed values (``NUMBERS``, or ``TEXTS`` and ``PATHS`` for one that takes text,
and its choices) plus ``PROGAN_ZOO_FUZZ_EXAMPLES`` (default 2) values drawn by hypothesis; a flag without a value: once.
``PROGAN_ZOO_FUZZ_REPORT=FILE`` appends one line per case (subcommand, option, exit status).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
from itertools import count
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from progan_zoo import argtypes as at
from progan_zoo.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "specs" / "tiny_mnist_16.yaml"
MODEL = ROOT / "progan_zoo" / "zoo" / "models" / "mnist-32"
EXAMPLES = int(os.environ.get("PROGAN_ZOO_FUZZ_EXAMPLES", "2"))

# A small valid command per subcommand, positionals apart ({w}: the workspace, {o}: a fresh folder name
# for outputs). A subcommand missing here is fuzzed on its bare name (argparse then refuses most).
BASES: dict[str, tuple[list[str], list[str]]] = {
    "compile": ([str(TINY)], []),
    "specs": ([], []),
    "train": ([str(TINY)], ["--out", "{o}/run", "--no-progress"]),
    "dataset": (["{w}/pngs", "{o}/cache"], ["--resolution", "8", "--no-progress"]),
    "evaluate": (["{w}/run"], ["--metrics", "swd", "--out", "{o}/eval.json"]),
    "export": (["{w}/run", "{o}/model"], []),
    "generate": ([str(MODEL)], ["--out", "{o}/grid.png"]),
    "interpolate": ([str(MODEL)], ["--out", "{o}/walk.gif"]),
    "import": (["{w}/official.pkl"], ["--out", "{o}/imported"]),
    "publish": ([str(MODEL)], ["--to", "{o}/registry"]),
    "models": ([], []),
    "leaderboard": ([], ["--no-hub"]),
    "plot": (["{w}/run"], ["--out", "{o}/training.png"]),
    "export-onnx": ([str(MODEL)], ["--out", "{o}/model.onnx", "--no-check"]),
    "video walk": ([str(MODEL)], ["--duration", "0.2", "--fps", "10", "--out", "{o}/walk.gif"]),
    "video slerp": ([str(MODEL)], ["--steps", "2", "--out", "{o}/slerp.gif"]),
    "video timelapse": (["{w}/run"], ["--out", "{o}/lapse.gif"]),
    "project": ([str(MODEL), "{w}/digit.png"], ["--out", "{o}/projected", "--steps", "2", "--starts", "1"]),
    # A copy: without --out (one of the fuzzed cases) migrate rewrites its file in place.
    "migrate": (["{w}/spec.yaml"], ["--out", "{o}/migrated.yaml"]),
    "fetch": (["mnist-32"], []),
}

# Fixed values: an option that converts its value (a number, a list) gets numbers at and past every
# edge and text that is none; one that takes text (a path, a name) gets odd text and paths of every kind.
# Each also gets its own default and its choices, and a few values that are valid for many (16, cpu,
# mnist-32, a name ending in .png), so the fuzz also runs past the checks.
NUMBERS = ["-1", "0", "1", "2.5", "16", "1e309", "-inf", "inf", "nan", "", "abc", "١٢", "99999999999999999999999",
           "0x10", "1,2", "-x", "cpu"]
TEXTS = ["", "-1", "ü/ñí©ødé", "a\nb", "mnist-32"]
PATHS = ["{w}/nowhere", "{w}/notes.txt", "{w}/notes.txt/inside", "{w}/empty", "{w}/run", "{o}/new.png"]

_fresh = count()


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """What a user can type to this parser: positionals and options, without --help and hidden ones
    (and without a level of sub-subcommands: those are commands of their own, ``_commands``)."""
    hidden = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
    return [a for a in parser._actions if not isinstance(a, hidden) and a.help != argparse.SUPPRESS]


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's parser by the words that reach it (``video walk`` for a mode of ``video``)."""
    out = {}
    for name, parser in build_parser().commands.items():
        modes = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        out.update({f"{name} {mode}": sub for mode, sub in modes[0].choices.items()} if modes else {name: parser})
    return out


PARSERS = _commands()


def _cases() -> list[tuple[str, str]]:
    out = []
    for name, parser in PARSERS.items():
        for action in _options(parser):
            out.append((name, action.option_strings[0] if action.option_strings else action.dest))
    return out


CASES = _cases()


def _action(command: str, key: str) -> argparse.Action:
    parser = PARSERS[command]
    return next(a for a in _options(parser) if (a.option_strings[0] if a.option_strings else a.dest) == key)


def _arity(action: argparse.Action) -> int:
    """How many values the option takes (0: a switch)."""
    if action.nargs == 0:
        return 0
    return action.nargs if isinstance(action.nargs, int) else 1


def _takes_path(action: argparse.Action) -> bool:
    """Text, a name or a path (not a number or a list)."""
    return action.type in (None, at.out_dir, at.out_file) and not action.choices


@pytest.fixture(scope="module")
def w(tmp_path_factory) -> Path:
    """A workspace: a short real run of the tiny spec, two PNGs, an official-format pickle, bad inputs."""
    from progan_zoo.train.config import TrainConfig
    from progan_zoo.train.trainer import train

    w = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, w)
        train(TrainConfig(spec=str(TINY), out=str(w / "run"), kimg=0.064, tick_kimg=0.032, progress=False))
    (w / "notes.txt").write_text("not an image, a spec or a run")
    (w / "spec.yaml").write_text(TINY.read_text())
    (w / "empty").mkdir()
    (w / "pngs").mkdir()
    for i in range(2):
        Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)).save(w / "pngs" / f"{i}.png")
    sys.path.insert(0, str(ROOT / "tests" / "conformance"))
    from official_fixtures import official_pickle

    kw = dict(resolution=8, num_channels=3, latent_size=8, fmap_base=16, fmap_max=8)
    (w / "official.pkl").write_bytes(official_pickle(kw, dict(mbstd_group_size=4)))
    Image.fromarray(np.full((32, 32), 200, np.uint8)).save(w / "digit.png")
    (w / "cwd").mkdir()
    return w


def _isolate(mp: pytest.MonkeyPatch, w: Path) -> None:
    """No user registry, Hub cache or network; relative outputs land in the workspace."""
    mp.setenv("PROGAN_ZOO_REGISTRY", str(w / "registry.json"))
    mp.setenv("PROGAN_ZOO_HOME", str(w / "zoo"))
    mp.setenv("PROGAN_ZOO_CACHE", str(w / "cache"))
    mp.setenv("HF_HOME", str(w / "hf"))
    mp.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def seams(w, monkeypatch, one_thread):
    """Long work cut short after the arguments were checked (module docstring)."""
    from progan_zoo.metrics import evaluate as metrics_evaluate
    from progan_zoo.train.trainer import Run
    from progan_zoo.zoo import images as zoo_images
    from progan_zoo.zoo.model import ZooGenerator

    _isolate(monkeypatch, w)
    monkeypatch.chdir(w / "cwd")
    monkeypatch.setattr(Run, "train", lambda self: self.run_dir)
    from progan_zoo.tools import onnx_export, project_settings, video

    monkeypatch.setattr(onnx_export, "export", lambda G, out, *a, **k: (Path(out), None))   # checked, not written
    real_frames, real_check = video.render_frames, project_settings.ProjectionSettings.check
    monkeypatch.setattr(video, "render_frames", lambda G, z, *a, **k: real_frames(G, z[:3], *a, **k))

    def short_check(self):
        checked = real_check(self)
        checked.steps, checked.starts = min(checked.steps, 2), min(checked.starts, 2)
        return checked
    monkeypatch.setattr(project_settings.ProjectionSettings, "check", short_check)
    real_sample, real_walk, real_evaluate = ZooGenerator.sample, zoo_images.latent_walk, metrics_evaluate.evaluate
    monkeypatch.setattr(ZooGenerator, "sample", lambda self, n, *a, **k: real_sample(self, min(n, 4), *a, **k))
    monkeypatch.setattr(zoo_images, "latent_walk", lambda *a, **k: real_walk(*a, **k)[:4])
    monkeypatch.setattr(metrics_evaluate, "evaluate",
                        lambda G, metrics, num, *a, **k: real_evaluate(G, metrics, {m: min(n, 32) for m, n in num.items()},
                                                                       *a, **k))


def _tree(root: Path) -> set[str]:
    """Every path under ``root``, but not inside the output folders of earlier cases (``out/N``: no
    command is given those names again)."""
    found = set()
    for here, dirs, files in os.walk(root):
        rel = os.path.relpath(here, root)
        found.update(os.path.join(rel, n) for n in dirs + files)
        if rel == "out":
            dirs[:] = []
    return found


def check(w: Path, command: str, values: dict[str, list[str]]) -> None:
    """Run ``command`` on its base argv with ``values`` (option or positional -> the values typed) and
    check the contract: exit 0 or 2, no traceback, one line after a refusal, nothing new left by it."""
    out = f"{w}/out/{next(_fresh)}"
    fill = lambda s: s.replace("{w}", str(w)).replace("{o}", out)  # noqa: E731
    positionals, options = BASES.get(command, ([], []))
    positionals, options = [fill(a) for a in positionals], [fill(a) for a in options]
    order = [a.dest for a in _options(PARSERS[command]) if not a.option_strings]
    for key, typed in values.items():
        typed = [fill(v) for v in typed]
        if key.startswith("-"):
            options += [key, *typed]
        elif order.index(key) < len(positionals):
            positionals[order.index(key)] = typed[0]
        else:
            positionals.append(typed[0])
    argv = positionals + options
    before = _tree(w)
    err_buf = io.StringIO()
    with contextlib.redirect_stderr(err_buf), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main([*command.split(), *argv])
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    err = err_buf.getvalue()
    if os.environ.get("PROGAN_ZOO_FUZZ_REPORT"):  # one line per case: subcommand, option, exit status
        with open(os.environ["PROGAN_ZOO_FUZZ_REPORT"], "a") as f:
            f.write(f"{command}\t{','.join(values)}\t{rc}\n")
    shown = f"progan-zoo {command} {' '.join(map(repr, argv))}: exit {rc}\n{err}"
    assert rc in (0, 2), shown
    assert "Traceback" not in err, shown
    if rc == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"progan-zoo {command.split()[0]}") \
            and ": error: " in lines[0], shown
        new = sorted(_tree(w) - before) + ([out] if Path(out).exists() else [])
        assert not new, f"{shown}left behind: {new}"


@pytest.mark.parametrize("command,key", CASES, ids=[f"{c}:{k}" for c, k in CASES])
def test_cli_fuzz(w, seams, command, key):
    action = _action(command, key)
    arity = _arity(action)
    if arity == 0:
        check(w, command, {key: []})
        return
    fixed = (TEXTS + PATHS if _takes_path(action) else NUMBERS) + [str(c) for c in action.choices or []]
    if isinstance(action.default, (str, int, float)) and not isinstance(action.default, bool) \
            and action.default != argparse.SUPPRESS:
        fixed.append(str(action.default))
    for value in fixed:
        check(w, command, {key: [value] * arity})

    text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
    value = st.one_of(st.sampled_from(NUMBERS + TEXTS + PATHS), st.integers(-2**70, 2**70).map(str),
                      st.floats(allow_nan=True, allow_infinity=True).map(repr), text)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(value, min_size=arity, max_size=arity))
    def fuzz(typed):
        check(w, command, {key: typed})

    fuzz()


def test_every_subcommand_has_a_base():
    """A new subcommand needs a small valid command above, or its options are only fuzzed on a refusal."""
    assert set(BASES) == set(PARSERS)


def test_cases_per_option_are_reported():
    """The fuzz reaches every option of every subcommand (what the closing note of issue 23 counts)."""
    options = {c.split()[0] for c, _ in CASES}
    assert options == set(COMMANDS) and len(CASES) >= 60
