"""``progan-zoo migrate``: a spec rewritten to the newest spec_version with the same resolved form.

The defaults of each version are ``defaults``; this module rewrites a file's text (comments and layout
kept) and checks through ``compile_spec`` that the result resolves to the same model.
"""

from __future__ import annotations

import copy
import io

from .defaults import LAYER_KEYS, NEWEST, _get, defaults_table, resolve_data, resolved_text


def migrate_text(text: str, file: str = "<string>") -> str:
    """The spec text rewritten to the newest version with the same resolved form: ``spec_version`` is
    set and every value the old version took by default, where the newest differs, is written out.
    Comments and layout are kept (ruamel round trip). Raises SpecError for an invalid spec."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    from . import compile_spec

    compiled = compile_spec(file, text=text, until="validate")
    raw, before = compiled.raw, compiled.spec
    version = raw.data["spec_version"]
    if version == NEWEST:
        return text
    old, new = defaults_table(version), defaults_table(NEWEST)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    tree = yaml.load(text)
    tree["spec_version"] = NEWEST
    tree.yaml_add_eol_comment(f"migrated from {version}: its defaults that differ are written out", "spec_version")
    resolved_old = resolve_data(raw.data)
    for key in sorted(k for k in old if old[k] != new.get(k)):
        if key in LAYER_KEYS:
            network = key.split(".")[1]
            for i, row in enumerate(tree["architecture"][network]):
                if row.get("layers") is None:
                    row["layers"] = list(resolved_old["architecture"][network][i]["layers"])
            continue
        path = key.split(".")
        present, _ = _get(raw.data, path)
        if present:
            continue
        node = tree
        for part in path[:-1]:
            if part not in node or node[part] is None:
                node[part] = CommentedMap()
            node = node[part]
        node[path[-1]] = copy.deepcopy(old[key])
    buf = io.StringIO()
    yaml.dump(tree, buf)
    out = buf.getvalue()
    after = compile_spec(file, text=out, until="validate").spec
    if resolved_text(after) != resolved_text(before):  # never write a file that means something else
        raise RuntimeError(f"internal error: migrating {file} changed its resolved form")
    return out
