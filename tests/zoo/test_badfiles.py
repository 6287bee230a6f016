"""Damaged or foreign files: each gives one clear line naming the file and the fix, and nothing is unpickled."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch

from progan_zoo import load
from progan_zoo.errors import UserError
from progan_zoo.zoo import records as F
from progan_zoo.zoo.weights import WeightsError, sha256_file

import zoocli


def _one_line(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text
    return text


def test_truncated(model_copy):
    w = model_copy / F.WEIGHTS
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError) as e:
        load(model_copy)
    msg = _one_line(e.value)
    assert str(w) in msg and "truncated" in msg and "again" in msg
    w.write_bytes(data[:5])
    with pytest.raises(WeightsError, match="too short to be safetensors"):
        load(model_copy)


def test_wrong_hash(model_copy):
    w = model_copy / F.WEIGHTS
    data = bytearray(w.read_bytes())
    data[-3] ^= 0xFF  # a flipped bit inside the last tensor: the header still parses
    w.write_bytes(bytes(data))
    with pytest.raises(WeightsError) as e:
        load(model_copy)
    msg = _one_line(e.value)
    assert str(w) in msg and "sha256" in msg and "metadata.json" in msg


class _Trap:
    """A pickle that creates a file when unpickled: proof that loading never unpickles."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_pickle_named_safetensors(model_copy, tmp_path, kind):
    w = model_copy / F.WEIGHTS
    marker = tmp_path / "unpickled"
    if kind == "pickle":
        w.write_bytes(pickle.dumps({"b4.torgb.weight": _Trap(marker)}, protocol=4))
    else:
        torch.save({"b4.torgb.weight": torch.zeros(3), "trap": _Trap(marker)}, w)
    # Even with metadata claiming this very file, it is refused before hashing or reading.
    meta = json.loads((model_copy / F.METADATA).read_text())
    meta["weights"]["sha256"] = sha256_file(w)
    (model_copy / F.METADATA).write_text(json.dumps(meta))
    with pytest.raises(WeightsError) as e:
        load(model_copy)
    msg = _one_line(e.value)
    assert str(w) in msg and "not safetensors" in msg and "never unpickles" in msg
    assert ("pickle" if kind == "pickle" else "zip archive") in msg
    assert not marker.exists()


def test_spec_edited_after_export(model_copy):
    s = model_copy / F.SPEC
    s.write_text(s.read_text().replace("license: apache-2.0", "license: mit"))
    with pytest.raises(UserError) as e:
        load(model_copy)
    msg = _one_line(e.value)
    assert str(s) in msg and "edited or replaced" in msg


def test_spec_not_matching_weights(model_copy):
    s = model_copy / F.SPEC
    s.write_text(s.read_text().replace("- {resolution: 16, channels: 8}", "- {resolution: 16, channels: 12}")
                 .replace("- {resolution: 16, channels: [8, 16]}", "- {resolution: 16, channels: [12, 16]}"))
    from progan_zoo.compiler.load import load as load_spec

    from progan_zoo.compiler.defaults import resolved_sha256
    from progan_zoo.compiler.validate import validate

    meta = json.loads((model_copy / F.METADATA).read_text())
    meta["spec"]["sha256"] = load_spec(s).sha256  # as if someone "fixed" both hashes too
    meta["spec"]["resolved_sha256"] = resolved_sha256(validate(load_spec(s)))
    (model_copy / F.METADATA).write_text(json.dumps(meta))
    with pytest.raises(WeightsError) as e:
        load(model_copy)
    msg = _one_line(e.value)
    assert str(model_copy / F.WEIGHTS) in msg and "does not match spec.yaml" in msg
    assert "b16.block.conv0.weight is [8, 16, 3, 3] in the file but [12, 16, 3, 3]" in msg


def test_spec_meaning_another_model_is_refused(model_copy):
    """The text hash "fixed" after an edit (or a spec read with other defaults): the resolved hash, the model's
    identity, no longer matches, and load says so in one line (issue 18)."""
    from progan_zoo.compiler.load import load as load_spec

    s = model_copy / F.SPEC
    s.write_text(s.read_text().replace("spec_version: 2", "spec_version: 1"))  # same text otherwise: v1's defaults
    meta = json.loads((model_copy / F.METADATA).read_text())
    meta["spec"]["sha256"] = load_spec(s).sha256
    (model_copy / F.METADATA).write_text(json.dumps(meta))
    with pytest.raises(UserError) as e:
        load(model_copy)
    msg = _one_line(e.value)
    assert str(s) in msg and "resolved sha256" in msg and "differs from metadata.json's spec.resolved_sha256" in msg


def test_tensor_missing_from_weights(model_copy):
    from safetensors.torch import load_file, save_file

    w = model_copy / F.WEIGHTS
    tensors = load_file(str(w))
    del tensors["b16.torgb.weight"]
    save_file(tensors, str(w))
    meta = json.loads((model_copy / F.METADATA).read_text())
    meta["weights"]["sha256"] = sha256_file(w)
    (model_copy / F.METADATA).write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match=r"missing, e\.g\. b16\.torgb\.weight"):
        load(model_copy)


def test_missing_and_broken_files(model_copy):
    (model_copy / F.WEIGHTS).unlink()
    with pytest.raises(WeightsError, match="no such weights file"):
        load(model_copy)
    (model_copy / F.METADATA).write_text("{not json")
    with pytest.raises(UserError, match=r"metadata.json: not valid JSON"):
        load(model_copy)
    (model_copy / F.METADATA).write_text(json.dumps({"format": "progan-zoo-model", "format_version": 99}))
    with pytest.raises(UserError, match="format_version 99 is not supported"):
        load(model_copy)
    (model_copy / F.METADATA).unlink()
    with pytest.raises(UserError, match="not a saved model folder"):
        load(model_copy)


def test_header_claims_more_than_the_file(tmp_path):
    from progan_zoo.zoo.weights import read_header

    f = tmp_path / "x.safetensors"
    header = json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    f.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(WeightsError, match="truncated: .* its tensors need"):
        read_header(f)


def test_cli_prints_one_line(model_copy, capsys):
    w = model_copy / F.WEIGHTS
    w.write_bytes(w.read_bytes()[:100])
    rc = zoocli.main(["generate", str(model_copy), "--out", str(model_copy / "g.png")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith("progan-zoo generate: error: ") and str(w) in err
    assert not (model_copy / "g.png").exists()
