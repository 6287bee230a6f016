"""Install the package the ways a new user would, and run it (slow: pip builds and installs).

- The README's first command, exactly as written plus a short ``--kimg``, in a fresh venv without
  system site-packages (torch and the rest come from pip's cache or index).
- A non-editable ``pip install .`` (a real wheel): ``progan-zoo train mnist-32`` from another directory.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO, make_venv, venv_env

pytestmark = pytest.mark.slow


def readme_first_command() -> str:
    """The first line of the README's first code block, without its comment."""
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    return block.splitlines()[0].split("#")[0].strip()


def test_readme_names_the_demo_command():
    cmd = readme_first_command()
    assert cmd.startswith("pip install -e . && progan-zoo train specs/mnist_32.yaml"), cmd


def test_readme_first_command_in_a_fresh_venv(source_copy: Path, tmp_path: Path):
    bin_dir = make_venv(tmp_path / "venv")
    cmd = readme_first_command() + " --kimg 0.3 --no-progress"
    proc = subprocess.run(["bash", "-c", cmd], cwd=source_copy, env=venv_env(bin_dir), capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    run = source_copy / "runs" / "mnist-demo"
    assert (run / "samples" / "latest.png").is_file() and (run / "log.jsonl").is_file()
    # Nothing beyond the base install came along (the demo data ships in the package).
    probe = subprocess.run([str(bin_dir / "python"), "-c", "import mlxtend"], capture_output=True)
    assert probe.returncode != 0


def test_wheel_install_trains_a_shipped_spec_by_name(source_copy: Path, tmp_path: Path):
    bin_dir = make_venv(tmp_path / "venv", system_site_packages=True)
    env = venv_env(bin_dir)
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    str(source_copy)], check=True, env=env, capture_output=True, timeout=900)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(bin_dir / "python"), "-c", "import progan_zoo.specs as s; print(s.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), where    # the wheel's copy, not the checkout
    exe = str(bin_dir / "progan-zoo")
    listing = subprocess.run([exe, "specs"], cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert "mnist-32" in listing.stdout and "celebahq-1024" in listing.stdout
    subprocess.run([exe, "compile", "celebahq-1024", "--stop-after", "validate"], cwd=elsewhere, env=env,
                   capture_output=True, check=True)
    proc = subprocess.run([exe, "train", "mnist-32", "--kimg", "1", "--out", "run", "--no-progress"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (elsewhere / "run" / "samples" / "latest.png").is_file()
    bad = subprocess.run([exe, "train", "no-such-spec"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "mnist-32" in bad.stderr
