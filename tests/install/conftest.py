"""Helpers for the install tests: a copy of the source tree to build from, and fresh virtual environments."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Build outputs and local state that a fresh clone does not have.
SKIP = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info", "runs", "__pycache__",
                              ".pytest_cache", "*.pyc")


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    """The project's files in a temporary folder (pip builds in the source tree; the checkout stays clean)."""
    dest = tmp_path / "src"
    shutil.copytree(REPO, dest, ignore=SKIP)
    return dest


def make_venv(where: Path, system_site_packages: bool = False) -> Path:
    """A new virtual environment from this interpreter's base Python; returns its bin/ folder."""
    cmd = [getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(where)]
    if system_site_packages:
        cmd.insert(3, "--system-site-packages")
    subprocess.run(cmd, check=True, capture_output=True)
    return where / ("Scripts" if os.name == "nt" else "bin")


def venv_env(bin_dir: Path) -> dict[str, str]:
    """The environment of an activated venv (PATH first, VIRTUAL_ENV), one thread per op."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(bin_dir.parent),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env
