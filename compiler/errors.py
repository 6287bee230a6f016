"""The one error type the compiler raises for bad input: a single line naming file, place and fix."""

from __future__ import annotations

from progan_zoo.errors import UsageError


class SpecError(UsageError, ValueError):
    """An invalid spec: ``file:line:col: key.path: what is wrong (hint: how to fix)``."""

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,     # 1-based.
        column: int | None = None,   # 1-based.
        key_path: str = "",
        hint: str | None = None,
    ) -> None:
        self.message, self.file, self.line, self.column = message, file, line, column
        self.key_path, self.hint = key_path, hint
        super().__init__(self.format())

    @property
    def location(self) -> str:
        loc = self.file or "<spec>"
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        return loc

    def format(self) -> str:
        text = f"{self.location}: "
        if self.key_path:
            text += f"{self.key_path}: "
        text += self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return " ".join(text.split("\n"))
