"""The `jsonl` reader: rows of a JSON array, JSON Lines, or concatenated JSON arrays.

A row becomes one document, its kind told by its fields:

* ``question`` + ``answer`` (strings) → ``qa``;
* ``messages`` (a list of ``{role, content}``) → ``chat``;
* ``text`` or ``content`` (a string) → ``text``.

Optional fields: ``title``, ``meta`` (an object), ``tags`` and ``collections`` (lists of
strings: collections the document joins besides the one named at ingest). Every other field
is kept in the document's ``data`` (e.g. a QA row's ``paraphrased_answer``).

Ids: the row's ``id`` or ``external_id`` (or the field named by ``id_field``), a string or an
integer. A row without one gets ``<file name>:<row number>`` (0-based, counted across arrays),
which is stable as long as rows are only appended to the file. Two rows with the same explicit
id in one file are an error naming both lines: within one file a repeated id is almost always a
mistake, and a new revision of a document is made by ingesting a newer file, not by a second row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lethe.data.sources import head_bytes, reader
from lethe.data.sources.json_stream import iter_rows
from lethe.errors import InputError, Where
from lethe.ledger.records import DocumentRecord, chat_content, qa_content

ID_FIELDS = ("id", "external_id")
SUFFIXES = (".json", ".jsonl", ".ndjson")
_RESERVED = {"title", "meta", "tags", "collections"}


def _sniff(path: Path) -> bool:
    if not path.is_file() or path.suffix.lower() in (".bz2", ".gz", ".xz", ".zst"):
        return False  # compressed JSON is not read (yet); never claim it
    return path.suffix.lower() in SUFFIXES or head_bytes(path, 64)[:1] in (b"[", b"{")


@reader("jsonl", sniff=_sniff, source_kind="jsonl", priority=90)
def read_json_rows(path: Path, *, id_field: str | None = None) -> Iterator[DocumentRecord]:
    """JSON array, JSON Lines or concatenated JSON arrays; rows become qa / chat / text documents."""
    seen: set[str] = set()  # explicit ids only: the one thing kept per row
    for row in iter_rows(path):
        where = Where(path=path, line=row.line)
        if not isinstance(row.value, dict):
            raise InputError(f"row {row.index} is a {type(row.value).__name__}, expected an object", where)
        external_id, field = row_id(row.value, id_field, where)
        if external_id is None:
            external_id = f"{path.name}:{row.index}"
        elif external_id in seen:
            raise _duplicate(path, external_id, row, id_field)
        else:
            seen.add(external_id)
        yield record_from_row(
            row.value,
            external_id=external_id,
            where=where,
            origin={"file": path.name, "row": row.index},
            skip=(field,) if field else (),
        )


def _duplicate(path: Path, external_id: str, row, id_field: str | None) -> InputError:
    """The error for a repeated id, naming both places (found by re-reading: errors are rare)."""
    for first in iter_rows(path):
        if isinstance(first.value, dict) and row_id(first.value, id_field, Where(path, first.line))[0] == external_id:
            break
    field = row_id(row.value, id_field, Where(path, row.line))[1]
    return InputError(
        f"duplicate id {external_id!r}: row {row.index} (line {row.line}) repeats row {first.index} "
        f"(line {first.line})",
        Where(path=path, line=row.line, field=field),
    )


def record_from_row(
    value: dict, *, external_id: str, where: Where, origin: dict | None = None, skip: tuple[str, ...] = ()
) -> DocumentRecord:
    """One document from one JSON object (see the module docstring for the fields).

    `skip` names fields (the id) left out of `data`; `origin` is kept as ``meta.origin``.
    """

    def at(field: str | None = None) -> Where:
        return Where(path=where.path, line=where.line, offset=where.offset, field=field)

    data = {k: v for k, v in value.items() if k not in _RESERVED and k not in skip}
    if "messages" in value:
        kind, content = "chat", chat_content(_messages(value["messages"], at))
    elif "question" in value or "answer" in value:
        kind = "qa"
        content = qa_content(require_string(value, "question", at), require_string(value, "answer", at))
    elif "text" in value or "content" in value:
        kind = "text"
        field = "text" if "text" in value else "content"
        content = require_string(value, field, at)
        data.pop(field)
    else:
        found = ", ".join(sorted(value)) or "none"
        raise InputError(f"a row needs question + answer, messages, or text / content (found fields: {found})", at())

    title = value.get("title")
    if title is not None and not isinstance(title, str):
        raise InputError(f"'title' must be a string, found {type(title).__name__}", at("title"))
    meta = value.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise InputError(f"'meta' must be an object, found {type(meta).__name__}", at("meta"))
    if origin:
        meta = {**(meta or {}), "origin": origin}
    return DocumentRecord(
        external_id=external_id,
        kind=kind,
        content=content,
        title=title,
        data=data or None,
        meta=meta,
        tags=_strings(value, "tags", at),
        collections=_strings(value, "collections", at),
        where=where,
    )


def row_id(value: dict, id_field: str | None, where: Where) -> tuple[str | None, str | None]:
    """The row's explicit id and the field it came from, or (None, None) when it has none."""
    fields = (id_field,) if id_field else ID_FIELDS
    for field in fields:
        raw = value.get(field)
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise InputError(
                f"an id must be a string or an integer, found {type(raw).__name__}",
                Where(where.path, where.line, field=field),
            )
        text = str(raw).strip()
        if not text:
            raise InputError("the id is empty", Where(where.path, where.line, field=field))
        return text, field
    if id_field:
        raise InputError(f"missing id field {id_field!r}", Where(where.path, where.line, field=id_field))
    return None, None


def require_string(value: dict, field: str, where) -> str:
    """`value[field]` as a string, or an `InputError` naming the field."""
    if field not in value:
        raise InputError(f"missing field {field!r}", where(field))
    text = value[field]
    if not isinstance(text, str):
        raise InputError(f"{field!r} must be a string, found {type(text).__name__}", where(field))
    return text


def _strings(value: dict, field: str, where) -> list[str]:
    items = value.get(field)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise InputError(f"{field!r} must be a list of strings", where(field))
    return list(items)


def _messages(messages: Any, where) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise InputError("'messages' must be a non-empty list of {role, content} objects", where("messages"))
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InputError("a message must be an object with role and content", where(f"messages[{i}]"))
        for key in ("role", "content"):
            if not isinstance(message.get(key), str):
                raise InputError(f"missing or non-string {key!r}", where(f"messages[{i}].{key}"))
    return messages
