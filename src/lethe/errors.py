"""Errors that tell the user what went wrong and where.

Every error lethe raises on purpose is a `LetheError`; the CLI prints its message without a
traceback and exits with status 2. The `where` parts (file, line, field) are kept separately
so that callers (the HTTP API, the UI) can show them in their own shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Where:
    """A place in an input: a file, and optionally a line, a byte offset and a field."""

    path: str | Path | None = None
    line: int | None = None
    offset: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(str(self.path))
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.offset is not None:
            parts.append(f"byte {self.offset}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)


class LetheError(Exception):
    """An error with a message meant for the user, and optionally where it happened."""

    def __init__(self, message: str, where: Where | None = None):
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where and str(where) else message)


class InputError(LetheError):
    """Bad input: a malformed file, a missing field, an unknown name."""


class NotFoundError(LetheError):
    """A named thing (document, version, request, collection) does not exist."""


class ConflictError(LetheError):
    """The request contradicts the ledger's state (e.g. serving a tainted version)."""


class CancelledError(LetheError):
    """A long job was cancelled by its user."""
