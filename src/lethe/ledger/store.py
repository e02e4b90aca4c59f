"""The `Ledger`: the one API through which lethe reads and writes its records.

Every write is a transaction (`with ledger.transaction() as tx:`), and every change worth
remembering appends an event to the changelog in the same transaction. Transactions nest by
joining: a domain operation opens one and every ledger method it calls writes into it, so
the operation commits as a whole (the unit of work). The class is composed
of one mixin per concept (documents, provenance, requests, conversations, jobs, tokenizers) so
that each file stays about one thing; no other module writes SQL.

Rows returned to callers are detached ORM objects (`expire_on_commit=False`): read their
columns freely, but do not rely on lazy relationships.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from lethe.errors import InputError
from lethe.ledger import migrate, repository
from lethe.ledger.base_models import BaseModelsMixin
from lethe.ledger.conversations import ConversationsMixin
from lethe.ledger.documents import DocumentsMixin
from lethe.ledger.ingest import IngestMixin
from lethe.ledger.jobs import JobsMixin
from lethe.ledger.provenance import ProvenanceMixin
from lethe.ledger.requests import RequestsMixin
from lethe.ledger.schema import Event
from lethe.ledger.tokenizers import TokenizersMixin
from lethe.ledger.tuning import TuningMixin

SQLITE_BUSY_TIMEOUT_MS = 30_000

_OPEN: ContextVar[dict[int, Session] | None] = ContextVar("lethe_open_transactions", default=None)
"""The transaction open in this context, by `id(ledger)`: what nested ledger calls join."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # deleted and overwritten content is zeroed, so an erased document leaves no bytes behind
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _json_text(value) -> str:
    """JSON columns as UTF-8 text, not `\\u` escapes: search (`instr`, `LIKE`) then sees the
    words of structured fields, and a byte scan for an erased name finds every copy."""
    return json.dumps(value, ensure_ascii=False)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    if "://" not in url:
        raise InputError(f"not a database URL: {url!r} (expected e.g. sqlite:///ledger.db)")
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, json_serializer=_json_text
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True, json_serializer=_json_text)


class Ledger(
    IngestMixin,
    DocumentsMixin,
    ProvenanceMixin,
    RequestsMixin,
    ConversationsMixin,
    JobsMixin,
    TokenizersMixin,
    BaseModelsMixin,
    TuningMixin,
):
    """The provenance ledger of one lethe workspace."""

    def __init__(self, engine: Engine, *, actor: str | None = None):
        self.engine = engine
        self.actor = actor or os.environ.get("USER")
        self.home: Path | None = None
        """The workspace home when opened through one: where the name guard's key is."""
        self.ingest_guard: Any = None
        """`(session, home) -> checker | None`: the name guard every ingest applies
        (`lethe.forget.name_guard.load_guard`, set by the layers above; the ledger cannot
        import them). Without one, a ledger whose requests guard names refuses to ingest."""
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, migrate_schema: bool = True, actor: str | None = None) -> Ledger:
        """Open the ledger at `url`, applying any pending migrations first."""
        engine = make_engine(url)
        if migrate_schema:
            migrate.upgrade(engine)
        return cls(engine, actor=actor)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """The unit of work: everything done inside is committed together, or not at all.

        One domain operation (publish a request, finish a slice, log an exchange, ingest) is
        one ``with ledger.transaction() as tx:``. Every ledger method called inside joins it
        (its reads see the writes so far, its writes commit with the rest), and functions
        outside the ledger that write rows take `tx` itself. Only the outermost block
        commits; an exception leaving it rolls everything back. The open transaction is
        per thread and per asyncio task (a context variable), never shared between them.
        """
        joined = self.open_transaction()
        if joined is not None:
            yield joined
            return
        session = self._sessions()
        session.info[repository.ACTOR] = self.actor  # who the unit of work's events name
        token = _OPEN.set({**(_OPEN.get() or {}), id(self): session})
        try:
            with session.begin():
                yield session
        finally:
            _OPEN.reset(token)
            session.close()

    def open_transaction(self) -> Session | None:
        """The transaction this thread (or task) has open on this ledger, if any."""
        return (_OPEN.get() or {}).get(id(self))

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads; inside a transaction, that transaction's (so it sees its writes)."""
        joined = self.open_transaction()
        if joined is not None:
            yield joined
            return
        session = self._sessions()
        session.info[repository.ACTOR] = self.actor
        try:
            yield session
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()

    # -- the changelog ------------------------------------------------------------------------

    def record_event(
        self, kind: str, subject_type: str | None = None, subject_id: int | None = None, /, **data
    ) -> None:
        """Append one event in its own transaction (for decisions made outside the ledger)."""
        with self.transaction() as s:
            repository.record_event(s, kind, subject_type, subject_id, **data)

    def events(
        self,
        *,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        subject_type: str | None = None,
        subject_id: int | None = None,
        limit: int = 100,
        newest_first: bool = True,
    ) -> list[Event]:
        """Events filtered by kind (a prefix: `run` matches `run.started`), time and subject."""
        query = select(Event)
        if kind:
            query = query.where((Event.kind == kind) | Event.kind.startswith(kind.rstrip(".") + "."))
        if since:
            query = query.where(Event.ts >= since)
        if until:
            query = query.where(Event.ts <= until)
        if subject_type:
            query = query.where(Event.subject_type == subject_type)
        if subject_id is not None:
            query = query.where(Event.subject_id == subject_id)
        order = Event.id.desc() if newest_first else Event.id.asc()
        with self.reading() as s:
            return list(s.scalars(query.order_by(order).limit(limit)))
