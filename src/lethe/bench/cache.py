"""Benchmark caching keyed by a hash of everything that determines a result.

A key is the SHA-256 of canonical JSON of the *whole* configuration of a stage: the data
files' hashes, the preset, every hyperparameter, the keys of the stages it builds on and the
code version (a hash of the source of the packages that compute it). A cached result lives in
a directory named after its key and holds the full key material beside the result; a lookup
recomputes the key and reads only that directory, then checks the stored material and any
artefact hashes again. So a changed input can never hit an old result: stale results are
never served, and every stage reports whether it was `cached` or `computed`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import lethe

CODE_PACKAGES = ("bench", "data", "eval", "model", "report", "train", "unlearn")
"""Subpackages of lethe whose source is part of a benchmark's code version (its plots included)."""


def canonical(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): equal values give equal text."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def config_hash(value: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of `value`."""
    return hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_sha256(paths: list[Path], root: Path | None = None) -> dict[str, str]:
    """{name relative to `root`: sha256} of files, in sorted order."""
    return {str(p.relative_to(root) if root else p): file_sha256(p) for p in sorted(paths)}


@lru_cache(maxsize=4)
def code_version(packages: tuple[str, ...] = CODE_PACKAGES) -> str:
    """`<lethe version>+<12 hex>`: a hash of the Python source of `packages` (paths and bytes).

    Any edit to the code that computes a benchmark changes it, whether or not it is committed.
    """
    root = Path(lethe.__file__).parent
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes())
    return f"{lethe.__version__}+{digest.hexdigest()[:12]}"


@dataclass
class CacheHit:
    """A cached stage result and where it is."""

    key: str
    record: dict[str, Any]
    directory: Path


class StageCache:
    """Results of benchmark stages under `root/<stage>-<key[:16]>/` (`key.json`, `record.json`)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def directory(self, stage: str, key: str) -> Path:
        return self.root / f"{stage}-{key[:16]}"

    def lookup(self, stage: str, material: dict[str, Any]) -> CacheHit | None:
        """The stored record for exactly this key material, or None (absent, or not matching)."""
        key = config_hash(material)
        directory = self.directory(stage, key)
        try:
            stored = json.loads((directory / "key.json").read_text(encoding="utf-8"))
            record = json.loads((directory / "record.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if stored.get("key") != key or config_hash(stored.get("material")) != key:
            return None
        for artefact, digest in (record.get("artefacts") or {}).items():
            path = Path(artefact)
            if not path.exists() or _artefact_hash(path) != digest:
                return None  # weights changed or vanished: recompute rather than trust
        return CacheHit(key, record, directory)

    def store(
        self, stage: str, material: dict[str, Any], record: dict[str, Any], artefacts: list[str | Path] = ()
    ) -> CacheHit:
        """Record a result; `artefacts` (files or model directories) are hashed and re-checked
        on every lookup."""
        key = config_hash(material)
        directory = self.directory(stage, key)
        directory.mkdir(parents=True, exist_ok=True)
        record = {
            **record,
            "artefacts": {str(Path(a)): _artefact_hash(Path(a)) for a in artefacts},
            "stored_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _write_json(directory / "record.json", record)
        _write_json(directory / "key.json", {"key": key, "stage": stage, "material": material})
        return CacheHit(key, record, directory)


def _artefact_hash(path: Path) -> str:
    if path.is_dir():
        from lethe.model.io import weights_sha256

        return weights_sha256(path)
    return file_sha256(path)


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)
