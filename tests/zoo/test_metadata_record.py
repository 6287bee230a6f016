"""metadata.json's typed record: the exporter's and importer's files round-trip through it byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

from progan_zoo.zoo import records as F
from progan_zoo.zoo.folder import write_metadata

SHIPPED = Path(F.__file__).parent / "models" / "mnist-32" / F.METADATA


def test_shipped_metadata_round_trips_byte_for_byte():
    text = SHIPPED.read_text(encoding="utf-8")
    assert F.ModelMetadata.from_json(text).to_json() == text


def test_exported_metadata_round_trips_and_keeps_later_keys_last(tiny_model, tmp_path):
    text = (tiny_model / F.METADATA).read_text(encoding="utf-8")
    meta = json.loads(text)
    record = F.read_metadata(tiny_model)
    assert record.to_dict() == meta and list(record.to_dict()) == list(meta) and record.to_json() == text
    assert record.provenance is None and "provenance" not in meta  # import-only keys stay out of exports
    record.extra["hub"] = {"repo": "org/tiny"}                        # a key written after export
    write_metadata(tmp_path, record)
    again = F.ModelMetadata.from_json((tmp_path / F.METADATA).read_text(encoding="utf-8"))
    assert again.extra == {"hub": {"repo": "org/tiny"}}
    assert again.to_json() == (tmp_path / F.METADATA).read_text(encoding="utf-8")
