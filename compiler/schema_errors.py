"""JSON Schema errors as positioned, human messages: one ``SpecError`` naming the place and the fix.

jsonschema reports every problem of a raw spec with its key path; this module picks the one to show
(an unknown key first, since a misspelt key also shows up as a missing one; then the first in the file),
turns the validator's terms into a sentence ("expected an integer, got '8'"), adds a hint (a close
match for a misspelt key or op, the field's description, how to write the wanted type) and locates it
in the YAML through ``RawSpec.position``. ``validate.py`` calls ``check_schema`` before pydantic runs.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Any

import jsonschema

from .load import RawSpec
from .ops import OPS, plugin_hint
from .schema import json_schema

_NETWORK = {"generator": "G", "discriminator": "D"}


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json_schema())


def _describe(instance: Any) -> str:
    text = repr(instance)
    return text if len(text) <= 40 else text[:37] + "..."


def _did_you_mean(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else None


def _leaf(err: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For anyOf/oneOf (optional fields are anyOf[T, null]), the sub-error that explains most."""
    while err.validator in ("anyOf", "oneOf") and err.context:
        # The `null` branch of an optional field only says "not null": never the useful error.
        useful = [e for e in err.context if not (e.validator == "type" and e.validator_value == "null")]
        if not useful:
            break
        err = max(useful, key=lambda e: len(e.absolute_path))
    return err


def _about(schema: dict[str, Any]) -> str | None:
    """The first sentence of a field's description, as a hint."""
    text = schema.get("description")
    if not text:
        return None
    first = text.split(". ")[0].rstrip(".")
    return first[0].lower() + first[1:] if first[:2] != first[:2].upper() else first


_TYPE_HINT = {"integer": "write a whole number without quotes", "number": "write a number without quotes, e.g. 0.001",
              "boolean": "write true or false", "string": "quote it to make it a string",
              "array": "write a list, e.g. [a, b]", "object": "write a mapping: indented 'key: value' lines"}
_ARTICLE = {"integer": "an integer", "number": "a number", "boolean": "true or false", "string": "a string",
            "array": "a list", "object": "a mapping", "null": "nothing"}


def _schema_message(err: jsonschema.ValidationError) -> tuple[list, str, str | None, bool]:
    """(key path, message, hint, whether the position is the value's) for one schema error."""
    err = _leaf(err)
    path = list(err.absolute_path)
    v = err.validator
    about = _about(err.schema)
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        key = sorted(set(err.instance) - set(allowed))[0]
        hint = _did_you_mean(key, allowed) or f"allowed keys here: {', '.join(allowed)}"
        return path + [key], f"unknown key '{key}'", hint, False
    if v == "required":
        missing = [k for k in err.validator_value if k not in err.instance][0]
        where = f"under '{path[-1]}'" if path and isinstance(path[-1], str) else "here"
        desc = _about(err.schema.get("properties", {}).get(missing, {}))
        return path, f"missing required key '{missing}'", f"add '{missing}: ...' {where}" + (f": {desc}" if desc else ""), False
    if v == "enum":
        choices = [str(c) for c in err.validator_value]
        hint = _did_you_mean(str(err.instance), choices) or f"use one of: {', '.join(choices)}"
        if len(path) >= 4 and path[-2] == "layers" and path[-4] in _NETWORK:
            network = path[-4]
            known = ", ".join(OPS.names(_NETWORK[network]))
            if err.instance in OPS and not _did_you_mean(str(err.instance), choices):
                other = "discriminator" if network == "generator" else "generator"
                hint = f"'{err.instance}' is a {other} op"
            elif not _did_you_mean(str(err.instance), choices):
                hint = plugin_hint(str(err.instance))
            return path, f"unknown layer op {_describe(err.instance)} for the {network}; known: {known}", hint, True
        return path, f"expected one of {', '.join(choices)}, got {_describe(err.instance)}", hint, True
    if v == "const":
        return path, f"expected {err.validator_value!r}, got {_describe(err.instance)}", about, True
    if v == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        hint = _TYPE_HINT.get(want[0])
        return (path, f"expected {' or '.join(_ARTICLE.get(w, w) for w in want)}, got {_describe(err.instance)}",
                hint + (f" ({about})" if about else "") if hint else about, True)
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[v]
        kind = "an integer" if err.schema.get("type") == "integer" else "a number"
        return path, f"expected {kind} {op} {err.validator_value}, got {_describe(err.instance)}", about, True
    if v in ("minItems", "maxItems"):
        bound = "at least" if v == "minItems" else "at most"
        hint = "write channels: [in, out]" if path and path[-1] == "channels" else about
        return path, f"expected {bound} {err.validator_value} item(s), got {len(err.instance)}", hint, True
    if v == "minLength":
        return path, "must not be empty", about, True
    if v == "pattern":
        return (path, f"{_describe(err.instance)} does not match {err.validator_value}",
                "use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", True)
    return path, err.message, about, True


def check_schema(raw: RawSpec) -> None:
    """Raise the most useful JSON Schema error of ``raw`` as a positioned SpecError (none: return)."""
    errors = list(_validator().iter_errors(raw.data))
    if not errors:
        return
    # Report unknown keys first (a misspelt key also shows up as a missing one), then the problem
    # that comes first in the file.
    candidates = []
    for err in errors:
        path, message, hint, at_value = _schema_message(err)
        line, col = raw.position(path, value=at_value)
        rank = 0 if message.startswith("unknown key") else 1
        candidates.append(((rank, line or 0, col or 0), path, message, hint, at_value))
    _, path, message, hint, at_value = min(candidates, key=lambda c: c[0])
    raise raw.error(path, message, hint, at_value=at_value)
