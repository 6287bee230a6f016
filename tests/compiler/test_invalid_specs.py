"""The invalid-spec corpus: each NAME.yaml must fail with exactly the one line in NAME.expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from progan_zoo.compiler import SpecError, load, validate
from progan_zoo.errors import UsageError

CORPUS = Path(__file__).with_name("invalid")
CASES = sorted(CORPUS.glob("*.yaml"))


def test_corpus_is_complete() -> None:
    assert len(CASES) >= 20
    assert {p.stem for p in CASES} == {p.stem for p in CORPUS.glob("*.expected")}


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_invalid_spec_message(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)  # messages name the file as the user gave it
    expected = path.with_suffix(".expected").read_text().rstrip("\n")
    with pytest.raises(SpecError) as info:
        validate(load(path.name))
    message = str(info.value)
    assert "\n" not in message
    assert message == expected
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    # file:line:col, and the line is inside the file.
    err = info.value
    assert message.startswith(f"{path.name}:{err.line}:{err.column}: ")
    assert 1 <= err.line <= len(path.read_text().splitlines()) and err.column >= 1
    assert "(hint: " in message
