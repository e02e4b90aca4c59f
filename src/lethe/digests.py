"""How lethe hashes files and weights: one SHA-256 of a file, one of a model's weights.

At the bottom of the layers (no torch, no ledger), so that the ledger's checks, model I/O,
the trainer's checkpoints and base-model imports all hash the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from lethe.errors import NotFoundError, Where

BLOCK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(directory: str | Path, files: Iterable[str] | None = None) -> str:
    """SHA-256 over the safetensors files of a directory (or the named `files`), by name in
    sorted order.

    Each file contributes its name, a NUL, its byte length and its bytes, so renaming or
    re-sharding changes the hash. The same weights saved twice hash the same.
    """
    path = Path(directory)
    weights = sorted(path / name for name in files) if files is not None else sorted(path.glob("*.safetensors"))
    if not weights or not all(w.is_file() for w in weights):
        raise NotFoundError("no safetensors weights to hash", Where(path=path))
    digest = hashlib.sha256()
    for file in weights:
        digest.update(file.name.encode() + b"\0")
        digest.update(file.stat().st_size.to_bytes(8, "little"))
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(BLOCK), b""):
                digest.update(block)
    return digest.hexdigest()
