"""`progan-zoo compile`: the Table 2 printout, each --stop-after view, --json, --graph, and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from progan_zoo.cli import main
from progan_zoo.compiler.schema import json_schema_text

from .conftest import REPO, TINY

TINY_SPEC = str(TINY[0])


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    rc = main(["compile", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_compile_prints_table2_layout_with_totals(capsys) -> None:
    rc, out, _ = run(capsys, str(REPO / "specs" / "celebahq_1024.yaml"))
    assert rc == 0
    g_part, d_part = out.split("\nDiscriminator\n")
    assert "Generator" in g_part and "Layer" in g_part and "Output shape" in g_part and "Params" in g_part
    # First and last rows of Table 2, and the blocks grouped by resolution.
    assert "Latent vector" in g_part and "512 x 4 x 4" in g_part and "3 x 1024 x 1024" in g_part
    assert "\n1024x1024\n" in g_part and "\n4x4\n" in d_part
    assert "Minibatch stddev" in d_part and "513 x 4 x 4" in d_part and "Fully-connected" in d_part
    assert "23,079,115   23.1M" in g_part and "23,087,249   23.1M" in d_part
    assert "G: 23,079,115 parameters (23.1M)" in out and "D: 23,087,249 parameters (23.1M)" in out
    assert "fade" not in out
    rc, out, _ = run(capsys, TINY_SPEC, "--fade")
    assert rc == 0 and "fade: lerp(old, new, a)" in out and "fade: Downsample image" in out


def test_stop_after_each_stage(capsys) -> None:
    rc, out, _ = run(capsys, TINY_SPEC, "--stop-after", "load")
    assert rc == 0 and out.startswith(f"loaded {TINY_SPEC}:") and "architecture" in out and "6:1" in out
    rc, out, _ = run(capsys, TINY_SPEC, "--stop-after", "validate")
    assert rc == 0 and out.startswith("OK: tiny-16 rev 1\n") and "4x4 -> 16x16 (3 stages)" in out
    rc, out, _ = run(capsys, TINY_SPEC, "--stop-after", "graph")
    assert rc == 0 and out.startswith("graph tiny-16: 34 nodes (8 fade), 42 edges")
    assert "G/b8/fade" in out and "D/b16/fade_down" in out


def test_json_output(capsys) -> None:
    rc, out, _ = run(capsys, TINY_SPEC, "--json")
    data = json.loads(out)
    assert rc == 0 and data["stage"] == "build" and data["name"] == "tiny-16"
    assert data["generator"]["total"] == sum(r["params"] for r in data["generator"]["rows"])
    assert data["discriminator"]["total"] == sum(r["params"] for r in data["discriminator"]["rows"])
    for stage in ("load", "validate", "graph"):
        rc, out, _ = run(capsys, TINY_SPEC, "--json", "--stop-after", stage)
        assert rc == 0 and json.loads(out)["stage"] == stage
    rc, out, _ = run(capsys, TINY_SPEC, "--json", "--stop-after", "graph")
    graph = json.loads(out)
    roles = {e["role"] for e in graph["edges"]}
    assert roles == {"main", "old", "new"} and len(graph["nodes"]) == 34


def test_schema_flag(capsys) -> None:
    rc, out, _ = run(capsys, "--schema")
    assert rc == 0 and out == json_schema_text()


def test_graph_pictures(capsys, tmp_path: Path) -> None:
    dot = tmp_path / "g.dot"
    rc, out, _ = run(capsys, TINY_SPEC, "--stop-after", "graph", "--graph", str(dot))
    text = dot.read_text()
    assert rc == 0 and f"wrote {dot}" in out
    assert text.startswith('digraph "tiny-16"') and '"G/b8/fade_up" -> "G/b8/fade"' in text and 'label="1-a"' in text
    png = tmp_path / "g.png"
    rc, _, _ = run(capsys, TINY_SPEC, "--stop-after", "graph", "--graph", str(png))
    assert rc == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc, _, err = run(capsys, TINY_SPEC, "--graph", str(tmp_path / "g.jpg"))
    assert rc == 2 and "use one of: .dot, .gv, .png, .svg" in err
    rc, _, err = run(capsys, TINY_SPEC, "--stop-after", "validate", "--graph", str(dot))
    assert rc == 2 and "--graph needs the graph stage" in err


def test_invalid_spec_in_process(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY[0].read_text().replace("latent_size: 16", "latent_sise: 16"))
    rc, out, err = run(capsys, str(bad))
    assert rc == 2 and out == ""
    assert err == (f"progan-zoo compile: error: {bad}:8:3: architecture.latent_sise: unknown key 'latent_sise' "
                   "(hint: did you mean 'latent_size'?)\n")
    rc, _, err = run(capsys, str(tmp_path / "missing.yaml"))
    assert rc == 2 and "no such file" in err and err.count("\n") == 1


def test_invalid_spec_subprocess_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY[0].read_text().replace("{resolution: 8, channels: [16, 16]}", "{resolution: 8, channels: [32, 16]}"))
    proc = subprocess.run([sys.executable, "-m", "progan_zoo", "compile", str(bad)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"progan-zoo compile: error: {bad}:17:34: architecture.discriminator[1].channels[0]: ")
