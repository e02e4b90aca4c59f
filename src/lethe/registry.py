"""One registry type for every pluggable choice: methods, strategies, metrics, readers, ...

A `Registry[T]` maps names to things registered by a decorator, refuses a name registered
twice, and, when given a package, imports every module of that package on first lookup, so
that adding an entry is one new file and nothing else edited.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from lethe.errors import InputError, Where

T = TypeVar("T")


class Registry(Generic[T]):
    """Things of one kind found by name.

    `kind` names the entries in messages ("unlearning method"); `package` (a dotted name) is
    scanned once, on the first lookup, so every module in it registers what it defines;
    `field` is the setting that names an entry, for the `Where` of an unknown-name error.
    """

    def __init__(self, kind: str, *, plural: str | None = None, package: str | None = None, field: str | None = None):
        self.kind = kind
        self.plural = plural or kind + "s"
        self.package = package
        self.field = field
        self._entries: dict[str, T] = {}
        self._scanned = package is None

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object as `name`."""

        def decorate(entry: T) -> T:
            self.add(name, entry)
            return entry

        return decorate

    def add(self, name: str, entry: T) -> None:
        """Register `entry` as `name`; a name registered twice is a programming error."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry

    def remove(self, name: str) -> T:
        """Unregister `name` and return its entry (for entries a test registers for itself)."""
        return self._entries.pop(name)

    def _scan(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")

    def get(self, name: str) -> T:
        """The entry registered as `name`, or an `InputError` listing the known names."""
        self._scan()
        try:
            return self._entries[name]
        except KeyError:
            raise InputError(
                f"unknown {self.kind} {name!r}; known {self.plural}: {', '.join(self.names()) or 'none'}",
                Where(field=self.field) if self.field else None,
            ) from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._scan()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._scan()
        yield from sorted(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self._scan()
        return name in self._entries

    def __len__(self) -> int:
        self._scan()
        return len(self._entries)
