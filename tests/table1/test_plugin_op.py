"""A third-party op from the `progan_zoo.ops` entry-point group: the worked example of docs/spec.md
(examples/progan_zoo_blur) installed as a distribution on sys.path, then compiled, shown, costed and
trained like a built-in op; a missing or broken plug-in is refused with a message that says why.

Each check runs in a fresh interpreter: entry points are read once, when the compiler is imported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "progan_zoo_blur"


def _install(site: Path, module: str = "progan_zoo_blur", target: str = "progan_zoo_blur:BLUR") -> Path:
    """What `pip install ./examples/progan_zoo_blur --target site` leaves: the package and its dist-info."""
    site.mkdir(parents=True)
    if module == "progan_zoo_blur":
        shutil.copytree(EXAMPLE / "progan_zoo_blur", site / "progan_zoo_blur")
    info = site / "progan_zoo_blur-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: progan-zoo-blur\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[progan_zoo.ops]\nblur = {target}\n")
    return site


def _spec(tmp: Path) -> Path:
    text = (REPO / "tests" / "fixtures" / "specs" / "tiny_mnist_16.yaml").read_text()
    text = text.replace("    - {resolution: 8, channels: 16}\n",
                        "    - {resolution: 8, channels: 16, layers: [upsample, blur, conv3x3, conv3x3]}\n")
    text = text.replace("    - {resolution: 16, channels: [8, 16]}\n",
                        "    - {resolution: 16, channels: [8, 16], layers: [blur, conv3x3, conv3x3, downsample]}\n")
    assert text.count("blur") == 2
    path = tmp / "tiny_blur.yaml"
    path.write_text(text)
    return path


def _run(args: list[str], site: Path | None, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(site)] if site else [])
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_plugin_op_compiles_shows_in_schema_and_trains(tmp_path: Path) -> None:
    site, spec = _install(tmp_path / "site"), _spec(tmp_path)
    out = _run(["-c", "import json, sys; from progan_zoo.cli import main; from progan_zoo.compiler.schema import "
                      f"json_schema; rc = main(['compile', {str(spec)!r}, '--cost']); "
                      "print('SCHEMA', json.dumps(json_schema())); sys.exit(rc)"], site, tmp_path)
    assert out.returncode == 0, out.stderr
    table, schema = out.stdout.split("SCHEMA")
    assert table.count("Blur 3x3") == 2  # once in G's 8x8 block, once in D's 16x16 block
    assert "plug-in ops: blur (from progan-zoo-blur)" in table
    assert schema.count('"blur"') == 2  # in the G and the D op lists, like a built-in op
    run = tmp_path / "run"
    out = _run(["-m", "progan_zoo", "train", str(spec), "--out", str(run), "--kimg", "0.016", "--tick-kimg", "0.016",
                "--grid", "4", "--no-progress", "--tensorboard", "off", "--device", "cpu"], site, tmp_path)
    assert out.returncode == 0, out.stderr
    assert (run / "log.jsonl").read_text().strip()


def test_missing_plugin_package_is_a_clear_error(tmp_path: Path) -> None:
    out = _run(["-m", "progan_zoo", "compile", str(_spec(tmp_path))], None, tmp_path)
    assert out.returncode == 2
    assert "unknown layer op 'blur'" in out.stderr and "'progan_zoo.ops' entry-point group" in out.stderr


@pytest.mark.parametrize("target, reason", [
    ("progan_zoo_gone:BLUR", "ModuleNotFoundError: No module named 'progan_zoo_gone'"),
    ("json:dumps", "is not a progan_zoo.compiler.ops.Op"),
])
def test_broken_plugin_names_its_package_and_reason(tmp_path: Path, target: str, reason: str) -> None:
    site = _install(tmp_path / "site", module="none", target=target)
    out = _run(["-m", "progan_zoo", "compile", str(_spec(tmp_path))], site, tmp_path)
    assert out.returncode == 2
    assert "'blur' comes from the package progan-zoo-blur" in out.stderr and reason in out.stderr
    if "gone" in target:  # a broken plug-in does not stop specs that do not use it
        ok = _run(["-m", "progan_zoo", "compile", str(REPO / "specs" / "mnist_32.yaml")], site, tmp_path)
        assert ok.returncode == 0, ok.stderr
