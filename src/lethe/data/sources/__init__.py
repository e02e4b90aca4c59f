"""Source readers: turn files and directories into `DocumentRecord`s, streamed.

Each reader lives in its own module of this package and registers itself by name with the
`reader` decorator in `READERS` (a `lethe.registry.Registry`, which imports every module of
this package on first lookup and refuses a name registered twice), so adding a format is one
new file. A reader is a function ``(path, **options) -> Iterator[DocumentRecord]`` that raises
`lethe.errors.InputError` (naming the file, the line or byte offset, and the field) on bad
input. It never holds the whole input in memory: the ledger ingests the records as they come.

`detect(path)` asks each reader's `sniff` in priority order (lowest first) and returns the
first name that claims the path; `read(path)` reads with the detected (or named) reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lethe.errors import InputError, Where
from lethe.ledger.records import DocumentRecord
from lethe.registry import Registry

ReadFn = Callable[..., Iterator[DocumentRecord]]
SniffFn = Callable[[Path], bool]


@dataclass(frozen=True)
class Reader:
    """A registered source format."""

    name: str
    """The name users pass as `--format`."""
    read: ReadFn
    """``(path, **options) -> Iterator[DocumentRecord]``."""
    sniff: SniffFn
    """True when the path looks like this format (cheap: a name, a few bytes)."""
    source_kind: str
    """The ledger's `sources.kind` for what this reader produces (jsonl, tofu, wiki)."""
    priority: int = 100
    """Detection order: lower is asked first, so specific formats go before generic ones."""
    description: str = ""


READERS: Registry[Reader] = Registry("source format", package=__name__, field="format")


def reader(name: str, *, sniff: SniffFn, source_kind: str, priority: int = 100) -> Callable[[ReadFn], ReadFn]:
    """Register the decorated function as the reader called `name`."""

    def register(fn: ReadFn) -> ReadFn:
        from lethe.data.sources.limits import guarded

        doc = (fn.__doc__ or "").strip().splitlines()
        READERS.add(name, Reader(name, guarded(fn), sniff, source_kind, priority, doc[0] if doc else ""))
        return fn

    return register


def readers() -> dict[str, Reader]:
    """Every registered reader, by name."""
    return dict(READERS.items())


def get_reader(name: str) -> Reader:
    """The reader called `name`, or an `InputError` naming the known ones."""
    return READERS.get(name)


def detect(path: str | Path) -> str:
    """The name of the reader for `path`, or an `InputError` saying none fits."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or directory", Where(path=path))
    for candidate in sorted(readers().values(), key=lambda r: (r.priority, r.name)):
        if candidate.sniff(path):
            return candidate.name
    what = "directory" if path.is_dir() else "file"
    raise InputError(
        f"cannot tell the format of this {what}; pass --format (one of {', '.join(readers())})",
        Where(path=path),
    )


def read(path: str | Path, reader: str | None = None, **options) -> Iterator[DocumentRecord]:
    """Stream the records of `path` with the named reader (detected when None)."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or directory", Where(path=path))
    return get_reader(reader or detect(path)).read(path, **options)


def head_bytes(path: Path, n: int = 4096) -> bytes:
    """The first `n` bytes of a file (decompressed for .bz2), with a UTF-8 BOM and blanks removed."""
    if not path.is_file():
        return b""
    opener = _bz2_open if path.suffix == ".bz2" else open
    try:
        with opener(path, "rb") as f:
            data = f.read(n)
    except (OSError, EOFError):  # unreadable or truncated: the reader will say where
        return b""
    return data.removeprefix(b"\xef\xbb\xbf").lstrip()


def _bz2_open(path: Path, mode: str):
    import bz2

    return bz2.open(path, mode)


__all__ = ["READERS", "Reader", "detect", "get_reader", "head_bytes", "read", "reader", "readers"]
