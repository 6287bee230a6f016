"""The one small registry type behind layer ops, losses and metrics (mmengine's idea, without its scopes).

A registry is an explicit name -> item table. Looking up a name it does not hold raises an error that
names the registry and lists the names it knows, and registering a name twice is a programming error.
It imports nothing but ``progan_zoo.errors``, so every layer (compiler, nn, metrics, train) may use it.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from progan_zoo.errors import UserError

T = TypeVar("T")


class UnknownNameError(UserError, KeyError):
    """A name no registry entry has (exit status 2: the user wrote it). Also a ``KeyError``, as a
    failed lookup in a table is."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """An explicit name -> item table whose errors name the registry and list the valid names."""

    def __init__(self, name: str, error: type[UnknownNameError] = UnknownNameError) -> None:
        self.name = name                   # What the items are, as errors say it ("loss", "metric").
        self.error = error                 # Raised for an unknown name (a subclass per registry, if any).
        self._items: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def add(self, name: str, item: T, description: str = "") -> T:
        """Register ``item`` under ``name``; ``description`` defaults to the first line of its docstring."""
        if name in self._items:
            raise ValueError(f"{self.name} registry: {name!r} is already registered")
        self._items[name] = item
        self._help[name] = description or ((getattr(item, "__doc__", None) or "").strip().splitlines() or [""])[0]
        return item

    def register(self, name: str, description: str = "") -> Callable[[T], T]:
        """Decorator: ``@METRICS.register("swd", "...")``."""
        return lambda item: self.add(name, item, description)

    def get(self, name: str) -> T:
        if name not in self._items:
            raise self.error(f"unknown {self.name} {name!r}; known: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._items)

    def items(self) -> list[T]:
        """Every item, in name order."""
        return [self._items[n] for n in self.names()]

    def describe(self, name: str) -> str:
        self.get(name)
        return self._help[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items
