"""Shared helpers of the ingest, legacy JSON and `lethe data` tests (``from ingest_helpers import ...``).

`open_ledger` makes a fresh SQLite ledger in tmp; tests that should also run on PostgreSQL use
conftest's parametrized `ledger` fixture instead.
"""

from __future__ import annotations

from pathlib import Path

from lethe.ledger import Ledger


def open_ledger(tmp_path: Path) -> Ledger:
    return Ledger.open(f"sqlite:///{tmp_path / 'ingest.db'}")


def write(path: Path, text: str | bytes) -> Path:
    """Write `text` (UTF-8) or raw bytes to `path` and return it."""
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path
