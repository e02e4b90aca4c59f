"""The `wikiextractor` reader: WikiExtractor output, ``<doc id url title>`` … ``</doc>``.

Accepts one output file (``wiki_00``) or a directory of them (WikiExtractor's ``AA/wiki_00``
layout, searched recursively for ``wiki_*`` files, read in name order). Each article becomes a
``text`` document: external id = the page id, ``title`` and ``meta.url`` from the tag, content
= the article body as extracted (WikiExtractor repeats the title as its first line). Files are
read line by line, so memory holds one article at a time. A page id seen twice is an error
naming both places.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

from lethe.data.sources import head_bytes, reader
from lethe.data.sources.limits import inside, max_document_bytes, too_large
from lethe.errors import InputError, Where
from lethe.ledger.records import DocumentRecord

_OPEN = re.compile(r"^<doc(\s[^>]*)?>\s*$")
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_CLOSE = "</doc>"
_FILE = re.compile(r"^wiki_\d+(\.txt)?$")


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(
        (inside(path, p) for p in path.rglob("wiki_*") if p.is_file() and _FILE.match(p.name)),
        key=lambda p: p.relative_to(path).as_posix(),
    )


def _sniff(path: Path) -> bool:
    files = _files(path) if path.is_dir() else [path]
    return bool(files) and head_bytes(files[0], 64).startswith(b"<doc ")


@reader("wikiextractor", sniff=_sniff, source_kind="wiki", priority=20)
def read_wikiextractor(path: Path) -> Iterator[DocumentRecord]:
    """WikiExtractor output (a file or a directory of wiki_NN files): one text document per article."""
    files = _files(path)
    if not files:
        raise InputError("no WikiExtractor files (wiki_NN) in this directory", Where(path=path))
    first_seen: dict[str, Where] = {}
    for file in files:
        for record in _read_file(file):
            first = first_seen.get(record.external_id)
            if first is not None:
                raise InputError(
                    f"duplicate page id {record.external_id!r} (first at {first})",
                    Where(path=file, line=record.where.line, field="id"),
                )
            first_seen[record.external_id] = record.where
            yield record


def _read_file(path: Path) -> Iterator[DocumentRecord]:
    offset, current, body, start = 0, None, [], None
    empty = True
    limit = max_document_bytes()
    size = 0
    line_no = 0
    with open(path, "rb") as f:
        while raw := f.readline(limit + 1):
            line_no += 1
            size += len(raw)
            if current is not None and size > limit:
                raise too_large(limit, Where(path=path, line=start), "article")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(
                    f"not UTF-8: byte 0x{raw[e.start]:02x} cannot be decoded",
                    Where(path=path, line=line_no, offset=offset + e.start),
                ) from None
            offset += len(raw)
            if line.strip():
                empty = False
            if current is None:
                match = _OPEN.match(line.strip())
                if match:
                    current, body, start = _attributes(match.group(1) or "", path, line_no), [], line_no
                    size = 0
                elif line.strip():
                    raise InputError("text outside a <doc …> … </doc> article", Where(path=path, line=line_no))
                continue
            if line.rstrip("\r\n") == _CLOSE:
                yield _record(current, body, Where(path=path, line=start))
                current = None
            elif _OPEN.match(line.strip()):
                raise InputError(
                    f"a new <doc> starts before the article opened at line {start} is closed",
                    Where(path=path, line=line_no),
                )
            else:
                body.append(line)
    if empty:
        raise InputError("the file is empty (expected WikiExtractor <doc> articles)", Where(path=path, line=1))
    if current is not None:
        raise InputError(
            f"the file ends inside the article opened at line {start} (missing </doc>)", Where(path=path, line=line_no)
        )


def _attributes(text: str, path: Path, line: int) -> dict[str, str]:
    attrs = {k: html.unescape(v) for k, v in _ATTR.findall(text)}
    for field in ("id", "title"):
        if not attrs.get(field, "").strip():
            raise InputError(f"<doc> has no {field!r} attribute", Where(path=path, line=line, field=field))
    return attrs


def _record(attrs: dict[str, str], body: list[str], where: Where) -> DocumentRecord:
    meta = {"page_id": attrs["id"], "file": Path(where.path).name, "line": where.line}
    if attrs.get("url"):
        meta["url"] = attrs["url"]
    return DocumentRecord(
        external_id=attrs["id"].strip(),
        kind="text",
        content="".join(body).strip("\r\n"),
        title=attrs["title"],
        meta=meta,
        where=where,
    )
