"""The `mediawiki` reader: a MediaWiki XML export (``.xml`` or ``.xml.bz2``), streamed.

Each ``<page>`` is one document (external id = the page id); each of its ``<revision>``s is a
revision of that document, yielded oldest first (by timestamp, then revision id) so that the
ledger links every revision to the one it supersedes and keeps them all. A revision's
``meta`` holds ``page_id``, ``revision_id``, ``parent_revision_id``, ``timestamp``,
``contributor`` (``username`` + ``id``, or ``ip``), ``comment``, ``ns``, and ``redirect`` when
the page is one. Deleted revision text is read as an empty string.

The file is fed line by line to an `xml.etree.ElementTree.XMLPullParser` and every finished
revision and page is cleared, so memory holds one page's revisions at a time; feeding by line
(rather than `iterparse`) is what lets errors name the line. Tags are matched by local name,
whatever the export schema's namespace version.
"""

from __future__ import annotations

import bz2
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError, XMLPullParser

from lethe.data.sources import head_bytes, reader
from lethe.data.sources.limits import max_document_bytes, too_large
from lethe.errors import InputError, Where

READ_PIECE = 1 << 16
"""Bytes fed to the XML parser at most at once."""
from lethe.ledger.records import DocumentRecord


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _sniff(path: Path) -> bool:
    if not path.is_file():
        return False
    name = path.name.lower()
    if name.endswith((".xml", ".xml.bz2")):
        return True
    head = head_bytes(path, 2048)
    return head.startswith(b"<mediawiki") or (head.startswith(b"<?xml") and b"<mediawiki" in head)


def _open(path: Path):
    return bz2.open(path, "rb") if path.suffix.lower() == ".bz2" else open(path, "rb")


def _child_text(element: Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def _child(element: Element, name: str) -> Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


@reader("mediawiki", sniff=_sniff, source_kind="wiki", priority=30)
def read_mediawiki(path: Path) -> Iterator[DocumentRecord]:
    """A MediaWiki XML export (.xml, .xml.bz2): each page revision a revision of one document."""
    parser = XMLPullParser(events=("start", "end"))
    seen_pages: dict[str, int] = {}
    page_start, revision_start, revisions, pages, root = 0, 0, [], 0, None
    line_no, blank = 0, True
    limit = max_document_bytes()
    fed_in_revision = 0  # bytes fed since the current <revision> opened: the text held so far
    in_revision = False
    with _open(path) as f:
        try:
            # Bounded reads: a single line may be hundreds of MB (a bz2 bomb's <text>).
            line_no, ended = 1, False
            while raw := f.readline(READ_PIECE):
                if ended:
                    line_no += 1
                ended = raw.endswith(b"\n")
                blank = blank and not raw.strip()
                if in_revision:
                    fed_in_revision += len(raw)
                    if fed_in_revision > limit:
                        raise too_large(limit, Where(path=path, line=revision_start, field="revision.text"), "revision")
                parser.feed(raw)
                for event, element in parser.read_events():
                    name = _local(element.tag)
                    if event == "start":
                        if root is None:
                            root = element
                            if name != "mediawiki":
                                raise InputError(
                                    f"not a MediaWiki export: the root element is <{name}>",
                                    Where(path=path, line=line_no),
                                )
                        elif name == "page":
                            page_start, revisions = line_no, []
                        elif name == "revision":
                            revision_start, in_revision, fed_in_revision = line_no, True, 0
                        continue
                    if name == "revision":
                        in_revision = False
                        revisions.append(_revision(element, path, revision_start))
                        element.clear()
                    elif name == "page":
                        page_id, records = _page(element, revisions, path, page_start)
                        if page_id in seen_pages:
                            raise InputError(
                                f"page id {page_id} appears twice (first page at line {seen_pages[page_id]})",
                                Where(path=path, line=page_start, field="id"),
                            )
                        seen_pages[page_id] = page_start
                        yield from records
                        pages += 1
                        element.clear()
                        root.clear()  # drop finished pages from the tree
            parser.close()
        except ParseError as e:
            if blank:
                raise InputError(
                    "the file is empty (expected a MediaWiki XML export)", Where(path=path, line=1)
                ) from None
            line, column = e.position
            reason = str(e).split(": line ")[0]
            raise InputError(f"malformed XML: {reason} (column {column + 1})", Where(path=path, line=line)) from None
        except (OSError, EOFError) as e:  # a truncated or corrupt .bz2
            raise InputError(f"cannot read the file: {e}", Where(path=path, line=line_no)) from None
    if root is None:
        raise InputError("the file is empty (expected a MediaWiki XML export)", Where(path=path, line=1))
    if pages == 0:
        raise InputError("the export holds no <page>", Where(path=path))


def _revision(element: Element, path: Path, line: int) -> dict:
    def need(name: str) -> str:
        value = _child_text(element, name)
        if value is None or not value.strip():
            raise InputError(f"<revision> has no <{name}>", Where(path=path, line=line, field=f"revision.{name}"))
        return value.strip()

    contributor = {}
    who = _child(element, "contributor")
    if who is not None:
        for field in ("username", "id", "ip"):
            value = _child_text(who, field)
            if value is not None:
                contributor[field] = value
    parent = _child_text(element, "parentid")
    return {
        "revision_id": need("id"),
        "parent_revision_id": parent.strip() if parent else None,
        "timestamp": need("timestamp"),
        "contributor": contributor or None,
        "comment": _child_text(element, "comment"),
        "text": _child_text(element, "text") or "",
        "line": line,
    }


def _page(element: Element, revisions: list[dict], path: Path, line: int) -> tuple[str, list[DocumentRecord]]:
    page_id = (_child_text(element, "id") or "").strip()
    title = _child_text(element, "title")
    if not page_id:
        raise InputError("<page> has no <id>", Where(path=path, line=line, field="page.id"))
    if not title:
        raise InputError("<page> has no <title>", Where(path=path, line=line, field="page.title"))
    if not revisions:
        raise InputError(f"page {page_id} ({title!r}) has no <revision>", Where(path=path, line=line, field="revision"))
    redirect = _child(element, "redirect")
    ns = _child_text(element, "ns")
    revisions.sort(key=lambda r: (r["timestamp"], r["revision_id"].zfill(20)))
    records = []
    for rev in revisions:
        meta = {
            "page_id": page_id,
            "ns": ns.strip() if ns else None,
            **{k: v for k, v in rev.items() if k not in ("text", "line")},
        }
        if redirect is not None:
            meta["redirect"] = redirect.get("title")
        records.append(
            DocumentRecord(
                external_id=page_id,
                kind="text",
                content=rev["text"],
                title=title,
                meta=meta,
                where=Where(path=path, line=rev["line"]),
            )
        )
    return page_id, records
