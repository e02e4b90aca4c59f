"""What every reader refuses, and the guard that makes any failure an `InputError`.

Input files come from anywhere, so each reader bounds what one document may cost before it
holds it: a document's size (``LETHE_MAX_DOCUMENT_BYTES``, 8 MiB by default, checked while
streaming), JSON nesting depth, integer size; and refuses what the ledger could not store
faithfully: text that is not valid Unicode (lone surrogates), non-finite numbers (``NaN``,
``Infinity``, ``1e999``), duplicate keys in an object, and files reached through a symlink
that leaves the ingested directory. `guarded` wraps every registered reader so that a
failure nobody foresaw still ends as an `InputError` naming the file, never a traceback.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lethe.errors import InputError, Where

DEFAULT_MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64
"""Objects and arrays nested deeper than this in one row are refused."""
INT_LIMIT = 2**63
"""Integers must fit a signed 64-bit column."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def max_document_bytes() -> int:
    """The per-document size limit: ``LETHE_MAX_DOCUMENT_BYTES`` or 8 MiB."""
    raw = os.environ.get("LETHE_MAX_DOCUMENT_BYTES")
    if not raw:
        return DEFAULT_MAX_DOCUMENT_BYTES
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(
            f"LETHE_MAX_DOCUMENT_BYTES must be a positive integer, got {raw!r}", Where(field="LETHE_MAX_DOCUMENT_BYTES")
        )
    return int(raw)


def too_large(limit: int, where: Where, what: str = "document") -> InputError:
    return InputError(
        f"this {what} is larger than the per-document limit of {limit} bytes (LETHE_MAX_DOCUMENT_BYTES)", where
    )


class Refused(ValueError):
    """A JSON value the strict decoder will not accept (raised from its hooks)."""


def _no_constant(name: str) -> Any:
    raise Refused(f"{name} is not a number JSON allows (non-finite numbers are refused)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Refused(f"the number {text[:40]} is not finite")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not -INT_LIMIT <= int(text) < INT_LIMIT:
        raise Refused(f"the integer {text[:40]}{'…' if len(text) > 40 else ''} does not fit 64 bits")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise Refused(f"duplicate key {key!r} in one object")
        result[key] = value
    return result


def strict_decoder() -> json.JSONDecoder:
    """A JSON decoder refusing non-finite numbers, integers past 64 bits and duplicate keys."""
    return json.JSONDecoder(
        object_pairs_hook=_unique_keys,
        parse_constant=_no_constant,
        parse_float=_finite_float,
        parse_int=_bounded_int,
    )


def check_value(value: Any, where: Where) -> None:
    """Refuse nesting deeper than `MAX_DEPTH` and strings that are not valid Unicode."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            check_text(item, where, path or None)
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise InputError(
                    f"nested more than {MAX_DEPTH} levels deep", Where(where.path, where.line, field=path or None)
                )
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str):
                    check_text(key, where, path or None)
                name = (
                    f"{path}.{key}"
                    if isinstance(key, str) and path
                    else (str(key) if isinstance(key, str) else f"{path}[{key}]")
                )
                stack.append((child, depth + 1, name))


def check_text(text: str, where: Where, field: str | None = None) -> None:
    match = _SURROGATE.search(text)
    if match is not None:
        raise InputError(
            f"invalid Unicode: a lone surrogate (U+{ord(match.group()):04X}) at character {match.start()}",
            Where(where.path, where.line, where.offset, field=field or where.field),
        )


def inside(root: Path, path: Path) -> Path:
    """`path`, refusing it when it resolves (through symlinks) outside `root`."""
    resolved, base = path.resolve(), root.resolve()
    if resolved != base and base not in resolved.parents:
        raise InputError(f"a symlink leaving the ingested directory (to {resolved}) is not followed", Where(path=path))
    return path


_UNFORESEEN = (RecursionError, ValueError, UnicodeError, EOFError, OSError, OverflowError, LookupError)


def guarded(read: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """`read`, with every record's text checked and any unforeseen failure an `InputError`."""

    @functools.wraps(read)
    def guarded_read(path: Path, **options) -> Iterator:
        path = Path(path)
        last: Where | None = None
        try:
            for record in read(path, **options):
                last = record.where
                where = record.where or Where(path=path)
                check_text(record.content, where, "content")
                if record.title:
                    check_text(record.title, where, "title")
                yield record
        except InputError:
            raise
        except RecursionError:
            raise InputError("nested too deeply to read", last or Where(path=path)) from None
        except _UNFORESEEN as error:
            where = Where(path=last.path, line=last.line) if last is not None else Where(path=path)
            raise InputError(f"cannot read this input ({type(error).__name__}: {error})", where) from None

    return guarded_read
