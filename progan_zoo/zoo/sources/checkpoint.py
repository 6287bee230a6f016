"""Reading a training run or one of its checkpoints (layout: docs/architecture.md) as a ``Source``.

The checkpoint is found by ``progan_zoo.train.checkpoint.find_checkpoint`` (the package's one
resolver) and its state.json read by ``StateFacts``; weights are checked name by name and shape by
shape against the spec before they are read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from progan_zoo.errors import UserError
from progan_zoo.train.checkpoint import StateFacts, find_checkpoint, read_json_object

from ..records import Source
from ..weights import load_checked


def open_checkpoint(path: str | Path, checkpoint: str | None = None, with_training: bool = False) -> Source:
    """Build the generator (and optionally raw G and D) of a run's or a checkpoint's weights."""
    from progan_zoo.compiler import compile_spec

    run, ck = find_checkpoint(path, checkpoint)
    spec_file = (run / "spec.yaml") if run is not None else (ck / "spec.yaml")
    if not spec_file.is_file():
        raise UserError(f"{ck}: no spec.yaml beside this checkpoint and no run directory above it; "
                        "give the run directory instead")
    facts = StateFacts.from_dict(read_json_object(ck / "state.json"))

    def same_spec(c: Any) -> None:
        # After validation, as before: an invalid spec is reported as such, an edited valid one here.
        want, have = facts.spec_sha256, c.sha256
        if want and want != have:
            raise UserError(f"{spec_file}: sha256 {have[:16]}... differs from {ck / 'state.json'}'s spec sha256 "
                            f"{str(want)[:16]}...; the run's spec was edited after training (restore it)")

    compiled = compile_spec(spec_file, before_build=same_spec)
    G_ema, D = compiled.G, compiled.D
    load_checked(G_ema, ck / "G_ema.safetensors", spec_file)
    stage = facts.stage if facts.stage is not None else G_ema.num_stages - 1
    src = Source(kind="checkpoint", path=Path(path), compiled=compiled, spec_file=spec_file, G_ema=G_ema,
                 stage=stage, alpha=facts.alpha, images_shown=facts.images_shown, run_dir=run, checkpoint=ck,
                 run=read_json_object(run / "run.json") if run else {})
    if with_training:
        for name in ("G", "D"):
            f = ck / f"{name}.safetensors"
            if f.is_file():
                net = compiled.build_generator() if name == "G" else D
                load_checked(net, f, spec_file)
                setattr(src, name, net)
    return src
