"""What erasure reaches: every field of the forgotten documents, and every record quoting them.

The functions take the open session of the publishing transaction, so that erasure commits
with the rest of publish or not at all:

    with ledger.transaction() as s:
        strings = forgotten_strings(s, ids, subjects=["Jane Doe"])
        erased = erase_documents(s, ids, reason="ticket 12", request_id=7)
        talks = redact_conversations(s, strings, request_id=7)
        records = redact_records(s, strings)
    compact_storage(ledger)   # after commit: no page of the database files keeps the text

* `erase_documents`: title, content, structured data, meta and tags become a tombstone of
  SHA-256 hashes (with size, time, reason, request); token-impact rows of the documents (which
  hold their tokens) are deleted.
* `redact_conversations`: a message or conversation title that contains one of the request's
  distinctive strings (`lethe.forget.distinctive`) is replaced, whole, by a redaction notice
  that keeps a hash of the original.
* `redact_records`: every string of the ledger's other records (events — the changelog —,
  jobs, forget requests' audits, reasons and errors, runs, evaluations, version metadata,
  lineages) that contains one becomes `[redacted]`.
* `compact_storage`: SQLite deletes with `secure_delete` on (set on every connection by
  `lethe.ledger.store`), so freed space is zeroed; after commit the WAL is checkpointed with
  TRUNCATE, so neither `ledger.db` nor `ledger.db-wal` keeps an old page. On PostgreSQL an
  UPDATE leaves the old row version as a dead tuple until VACUUM; `VACUUM FULL` of the tables
  erasure touched rewrites them without those tuples. What PostgreSQL cannot promise: its WAL
  segments (and any base backup, archive or replica) keep the old pages until they are recycled,
  and the files VACUUM FULL replaced are unlinked, not overwritten.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from lethe.forget.distinctive import (
    PLACEHOLDER,
    ForgottenStrings,
    distinctive_strings,
    document_texts,
)
from lethe.forget.mentions import activate_redactions
from lethe.ledger import repository
from lethe.ledger.documents import tombstone_documents
from lethe.ledger.schema import (
    Conversation,
    Document,
    Evaluation,
    Event,
    ForgetRequest,
    Job,
    Lineage,
    Message,
    ModelVersion,
    Run,
)

if TYPE_CHECKING:
    from lethe.ledger.store import Ledger
    from lethe.workspace import Workspace

TOUCHED_TABLES = (
    "documents",
    "token_impacts",
    "conversations",
    "messages",
    "events",
    "jobs",
    "forget_requests",
    "runs",
    "evaluations",
    "model_versions",
    "lineages",
)
"""The tables erasure writes (what PostgreSQL's VACUUM FULL rewrites)."""


def _chunks(ids: Sequence[int], size: int = 500) -> Iterator[list[int]]:
    ids = list(ids)
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


# -- the strings -------------------------------------------------------------------------------


def forgotten_strings(s: Session, document_ids: Sequence[int], *, subjects: Iterable[str] = ()) -> ForgottenStrings:
    """The distinctive strings of documents `document_ids` (read before they are erased) against
    every other current, unerased document."""
    forgotten = set(document_ids)
    texts: list[str] = []
    for chunk in _chunks(sorted(forgotten)):
        for title, content, data in s.execute(
            select(Document.title, Document.content, Document.data).where(Document.id.in_(chunk))
        ):
            texts.extend(document_texts(title, content, data))

    def retained() -> Iterator[str]:
        query = select(Document.id, Document.title, Document.content, Document.data).where(
            Document.is_current.is_(True), Document.forgotten_at.is_(None)
        )
        for doc_id, title, content, data in s.execute(query.execution_options(yield_per=1000)).all():
            if doc_id not in forgotten:
                yield from document_texts(title, content, data)

    return distinctive_strings(texts, retained(), subjects=subjects)


# -- documents ---------------------------------------------------------------------------------


@dataclass
class ErasedDocument:
    id: int
    key: str
    revision: int
    content_hash: str

    def as_dict(self) -> dict:
        return {"id": self.id, "key": self.key, "revision": self.revision, "content_hash": self.content_hash}


def erase_documents(
    s: Session, document_ids: Sequence[int], *, reason: str, request_id: int | None = None
) -> list[ErasedDocument]:
    """Tombstone every field of the documents (all given revisions) and delete their token-impact
    rows (`lethe.ledger.documents.tombstone_documents`); returns what was erased now."""
    erased = tombstone_documents(s, document_ids, reason=reason, request_id=request_id)
    return [ErasedDocument(d.id, d.key, d.revision, d.content_hash) for d in erased]


# -- conversations -----------------------------------------------------------------------------


@dataclass
class RedactedConversation:
    id: int
    title: bool = False
    messages: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"conversation_id": self.id, "title_redacted": self.title, "messages_redacted": self.messages}


def redaction_notice(original: str, request_id: int | None) -> str:
    """What a redacted message says instead: why, and a hash of what it said."""
    by = f" by forget request {request_id}" if request_id is not None else ""
    return f"[redacted{by}: quoted forgotten data; sha256 {hashlib.sha256(original.encode()).hexdigest()[:16]}]"


def conversations_quoting(s: Session, strings: ForgottenStrings) -> list[RedactedConversation]:
    """The conversations whose title or messages contain one of `strings` (nothing changed)."""
    found: dict[int, RedactedConversation] = {}
    if not strings:
        return []
    for conv_id, title in s.execute(select(Conversation.id, Conversation.title)):
        if strings.matches(title):
            found.setdefault(conv_id, RedactedConversation(conv_id)).title = True
    query = select(Message.id, Message.conversation_id, Message.content).order_by(Message.id)
    for message_id, conv_id, content in s.execute(query.execution_options(yield_per=1000)):
        if strings.matches(content):
            found.setdefault(conv_id, RedactedConversation(conv_id)).messages.append(message_id)
    return [found[k] for k in sorted(found)]


def redact_conversations(
    s: Session, strings: ForgottenStrings, *, request_id: int | None = None
) -> list[RedactedConversation]:
    """Replace, in place, every message and conversation title quoting `strings`."""
    hits = conversations_quoting(s, strings)
    for hit in hits:
        conversation = s.get(Conversation, hit.id)
        if hit.title:
            conversation.title = PLACEHOLDER
        for message_id in hit.messages:
            message = s.get(Message, message_id)
            message.content = redaction_notice(message.content, request_id)
            if message.stats and strings.matches_any(message.stats):
                message.stats = scrub(message.stats, strings)
    return hits


# -- every other record ------------------------------------------------------------------------


def scrub(value: Any, strings: ForgottenStrings) -> Any:
    """A JSON-like value with every string that contains one of `strings` replaced by `[redacted]`."""
    if isinstance(value, str):
        return PLACEHOLDER if strings.matches(value) else value
    if isinstance(value, dict):
        return {k: scrub(v, strings) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, strings) for v in value]
    return value


REDACTED_COLUMNS = {
    Event: ("data",),
    Job: ("params", "progress", "result", "error"),
    ForgetRequest: ("reason", "audit", "error", "config", "selector"),
    Run: ("config", "metrics", "error"),
    Evaluation: ("meta",),
    ModelVersion: ("meta", "taint_reason"),
    Lineage: ("config",),
}
"""Per table, the columns that may quote a document (free text or JSON)."""


def redact_records(s: Session, strings: ForgottenStrings) -> dict[str, int]:
    """Scrub every column of `REDACTED_COLUMNS`; rows changed per table."""
    changed: dict[str, int] = {}
    if not strings:
        return changed
    for model, columns in REDACTED_COLUMNS.items():
        count = 0
        for row in s.scalars(select(model).execution_options(yield_per=500)):
            dirty = False
            for column in columns:
                value = getattr(row, column)
                if value is not None and strings.matches_any(value):
                    # free text (a reason, an error) loses the matched words; JSON loses whole strings
                    setattr(row, column, strings.redact(value) if isinstance(value, str) else scrub(value, strings))
                    dirty = True
            count += dirty
        if count:
            changed[model.__tablename__] = count
    return changed


# -- the database files ------------------------------------------------------------------------


def compact_storage(ledger: Ledger, *, timeout: float = 30.0) -> dict:
    """After the erasing commit: leave no page of the database holding the erased text.

    SQLite: `PRAGMA wal_checkpoint(TRUNCATE)`, retried while a reader blocks it (lethe's own
    server never keeps a read transaction open between requests). PostgreSQL: `VACUUM FULL`
    of `TOUCHED_TABLES`. Returns what was done, for the receipt.
    """
    if ledger.dialect == "sqlite":
        deadline = time.monotonic() + timeout
        with ledger.engine.connect() as connection:
            while True:
                busy, log, _checkpointed = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
                if not busy or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            secure = connection.exec_driver_sql("PRAGMA secure_delete").scalar()
        return {
            "backend": "sqlite",
            "wal_checkpoint": "truncate",
            "complete": not busy,
            "frames": log,
            "secure_delete": bool(secure),
        }
    if ledger.dialect == "postgresql":
        with ledger.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f"VACUUM (FULL) {', '.join(TOUCHED_TABLES)}"))
        return {
            "backend": "postgresql",
            "vacuum_full": list(TOUCHED_TABLES),
            "not_guaranteed": "WAL segments, archives, backups and replicas keep old pages until recycled",
        }
    return {"backend": ledger.dialect, "note": "no storage compaction known for this backend"}


# -- all of it, for one request ----------------------------------------------------------------


@dataclass
class ErasureReport:
    """What erasing one request's documents did (the receipt's "where it was found")."""

    documents: list[ErasedDocument] = field(default_factory=list)
    conversations: list[RedactedConversation] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)
    strings: dict = field(default_factory=dict)
    storage: dict = field(default_factory=dict)
    mentions_redacted: int = 0
    """Redacted revisions made current (`lethe.forget.mentions`)."""

    def as_dict(self) -> dict:
        return {
            "documents": [d.as_dict() for d in self.documents],
            "conversations": [c.as_dict() for c in self.conversations],
            "records": self.records,
            "strings": self.strings,
            "storage": self.storage,
            "mentions_redacted": self.mentions_redacted,
        }


def erase_request_data(
    s: Session,
    document_ids: Sequence[int],
    *,
    reason: str,
    request_id: int | None = None,
    subjects: Iterable[str] = (),
) -> tuple[ErasureReport, ForgottenStrings]:
    """In the publishing transaction: find the documents' distinctive strings (before erasing
    them), erase the documents, redact the conversations and records quoting them."""
    request = s.get(ForgetRequest, request_id) if request_id is not None else None
    activated = activate_redactions(s, ((request.config or {}).get("mentions") or []) if request else [])
    s.flush()
    strings = forgotten_strings(s, document_ids, subjects=subjects)
    report = ErasureReport(strings=strings.summary(), mentions_redacted=activated)
    reason = strings.redact(reason)  # tombstones keep the reason, without the forgotten names
    report.documents = erase_documents(s, document_ids, reason=reason, request_id=request_id)
    report.conversations = redact_conversations(s, strings, request_id=request_id)
    s.flush()
    report.records = redact_records(s, strings)
    return report, strings


def subjects_of(selector: dict | None) -> list[str]:
    """The names a request's selector gives (its `--search` text, unless already digested)."""
    search = (selector or {}).get("search")
    return [search] if search and not str(search).startswith("sha256:") else []


def erase_for_request(ledger: Ledger, request, document_ids: Sequence[int]) -> tuple[ErasureReport, ForgottenStrings]:
    """Erase a request's documents and everything quoting them in one transaction, record what
    was done in the request's audit (`erasure`), then compact the database files. The strings
    are returned for `record_scan` (they are never stored)."""
    with ledger.transaction() as s:
        report, strings = erase_request_data(
            s,
            document_ids,
            reason=request.reason or "forget request",
            request_id=request.id,
            subjects=subjects_of(request.selector),
        )
        repository.record_event(
            s,
            "documents.erased",
            "forget_request",
            request.id,
            count=len(report.documents),
            document_ids=[d.id for d in report.documents][:1000],
            conversations_redacted=len(report.conversations),
            records_redacted=report.records,
        )
    if ledger.open_transaction() is None:  # inside a caller's unit of work it compacts after commit
        report.storage = compact_storage(ledger)
    _merge_erasure(ledger, request.id, report.as_dict())
    return report, strings


def _merge_erasure(ledger, request_id: int, values: dict) -> None:
    with ledger.transaction() as s:
        row = s.get(ForgetRequest, request_id)
        row.audit = {**(row.audit or {}), "erasure": {**(row.audit or {}).get("erasure", {}), **values}}


def compact_after_commit(ledger: Ledger, request_id: int) -> dict:
    """For an erasure made inside a caller's transaction: compact the database files once it
    committed and keep what was done in the request's audit (`erasure.storage`)."""
    storage = compact_storage(ledger)
    _merge_erasure(ledger, request_id, {"storage": storage})
    return storage


def record_tokenizer_purge(ledger: Ledger, request_id: int, removed: list[str]) -> None:
    """Keep the paths `--purge` removed with the old tokenizer in the request's audit."""
    _merge_erasure(ledger, request_id, {"tokenizer_purged": removed})


def record_scan(workspace: Workspace, request_id: int, strings: ForgottenStrings) -> dict:
    """Run the workspace scan (`lethe.forget.scan`) for a published request and keep its summary
    in the request's audit (`erasure.scan`); the database files are compacted first and after."""
    from lethe.forget.scan import scan_workspace, summarise

    ledger = workspace.ledger
    compact_storage(ledger)
    extra = []
    url = str(ledger.engine.url)
    if ledger.dialect == "sqlite" and ledger.engine.url.database:
        db = Path(ledger.engine.url.database)
        extra = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
    summary = {**summarise(scan_workspace(workspace.home, strings, extra=extra)), "database": _safe_url(url)}
    _merge_erasure(ledger, request_id, {"scan": summary})
    compact_storage(ledger)
    return summary


def _safe_url(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)
