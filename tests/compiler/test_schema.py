"""The committed JSON Schema and the generated docs reference are current; schema and pydantic agree."""

from __future__ import annotations

import json

import jsonschema
import pytest

from progan_zoo.compiler import load
from progan_zoo.compiler.ops import OPS
from progan_zoo.compiler.reference import DOCS_PATH, check_docs, main
from progan_zoo.compiler.schema import SCHEMA_PATH, json_schema, json_schema_text

from .conftest import SPECS, TINY

REGENERATE = "python -m progan_zoo.compiler.schema --write --docs"


def test_committed_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text() == json_schema_text(), (
        f"{SCHEMA_PATH} is stale: regenerate it with `{REGENERATE}` and commit the result")


def test_docs_reference_is_current() -> None:
    assert check_docs(), f"the reference in {DOCS_PATH} is stale: regenerate it with `{REGENERATE}`"


def test_check_flag_reports_current_files(capsys: pytest.CaptureFixture) -> None:
    assert main(["--check"]) == 0
    assert main([]) == 0 and json.loads(capsys.readouterr().out) == json_schema()


@pytest.mark.parametrize("path", SPECS + TINY, ids=lambda p: p.name)
def test_specs_pass_the_committed_schema(path) -> None:
    # What an editor or CI with only the JSON file would check.
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(load(path).data)


def test_layer_op_names_come_from_the_registry() -> None:
    defs = json_schema()["$defs"]
    g_ops = defs["GRow"]["properties"]["layers"]["anyOf"][0]["items"]["enum"]
    d_ops = defs["DRow"]["properties"]["layers"]["anyOf"][0]["items"]["enum"]
    assert g_ops == OPS.names("G") and d_ops == OPS.names("D")
    assert "mbstd" in d_ops and "mbstd" not in g_ops and "upsample" not in d_ops
