"""Generated sections of the docs: the one writer of text between two marker lines.

docs/spec.md holds two sections that code writes (the spec reference from the schema, the cost
tables from the cost model); each is a ``Section`` whose body is spliced between its markers, checked
for staleness by the tests, and rewritten by its module's ``--docs`` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "spec.md"


@dataclass(frozen=True)
class Section:
    """The text between the lines ``begin`` and ``end`` of the file ``path``."""

    name: str                  # What the section holds, for errors ("cost", "reference").
    path: Path
    begin: str
    end: str

    def splice(self, text: str, body: str) -> str:
        """``text`` with this section's body replaced by ``body``."""
        if self.begin not in text or self.end not in text:
            raise ValueError(f"{self.path} lacks the {self.name} markers; add the lines\n{self.begin}\n{self.end}")
        head, rest = text.split(self.begin, 1)
        _, tail = rest.split(self.end, 1)
        return f"{head}{self.begin}\n{body}{self.end}{tail}"

    def is_current(self, body: str) -> bool:
        """True when the committed section equals ``body``."""
        if not self.path.exists():
            return False
        text = self.path.read_text()
        try:
            return self.splice(text, body) == text
        except ValueError:
            return False

    def write(self, body: str) -> None:
        """Rewrite the section in the file."""
        self.path.write_text(self.splice(self.path.read_text(), body))
