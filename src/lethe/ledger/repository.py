"""The row-level steps ledger operations share, on the unit of work's session.

Every function takes the open transaction (``with ledger.transaction() as tx:``) and does
one thing to its rows: append an event, find or create a source or a collection, add
collection members, bulk-insert exposures, find a version, point an alias. The ledger's
mixins and the code outside the ledger that writes inside a transaction (erasure, the legacy
import) call these public functions, never each other's private methods, so each step is
defined once and always joins the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from lethe.errors import NotFoundError
from lethe.ledger.schema import Alias, Collection, CollectionMember, Event, ModelVersion, Source, utcnow

BATCH = 2000
"""Rows per bulk insert."""

ACTOR = "actor"
"""The key of `Session.info` holding who acts in the transaction (`Ledger.actor`)."""


def dialect(tx: Session) -> str:
    """The database's dialect name (``sqlite``, ``postgresql``)."""
    return tx.get_bind().dialect.name


def record_event(
    tx: Session, kind: str, subject_type: str | None = None, subject_id: int | None = None, /, **data
) -> None:
    """Append one event to the changelog, by the transaction's actor."""
    tx.add(
        Event(
            kind=kind,
            subject_type=subject_type,
            subject_id=subject_id,
            data=data or None,
            actor=tx.info.get(ACTOR),
            ts=utcnow(),
        )
    )


def source(tx: Session, name: str, kind: str, license: str | None = None, uri: str | None = None) -> Source:
    """The source called `name`, created (with an event) when it is new."""
    row = tx.scalar(select(Source).where(Source.name == name))
    if row is None:
        row = Source(name=name, kind=kind, license=license, uri=uri)
        tx.add(row)
        tx.flush()
        record_event(tx, "source.added", "source", row.id, name=name, kind=kind, uri=uri)
    return row


def collection(tx: Session, name: str, description: str | None = None) -> Collection:
    """The collection called `name`, created (with an event) when it is new."""
    row = tx.scalar(select(Collection).where(Collection.name == name))
    if row is None:
        row = Collection(name=name, description=description)
        tx.add(row)
        tx.flush()
        record_event(tx, "collection.created", "collection", row.id, name=name)
    return row


def add_members(tx: Session, target: Collection, document_ids: Sequence[int]) -> int:
    """Append the documents not yet in `target`, in order; returns how many joined."""
    if not document_ids:
        return 0
    existing = set(tx.scalars(select(CollectionMember.document_id).where(CollectionMember.collection_id == target.id)))
    start = tx.scalar(
        select(func.coalesce(func.max(CollectionMember.position), -1)).where(
            CollectionMember.collection_id == target.id
        )
    )
    rows, seen = [], set()
    for doc_id in document_ids:
        if doc_id in existing or doc_id in seen:
            continue
        seen.add(doc_id)
        rows.append({"collection_id": target.id, "document_id": doc_id, "position": start + 1 + len(rows)})
    if dialect(tx) == "postgresql" and rows:
        raw = tx.connection().connection.driver_connection
        with (
            raw.cursor() as cursor,
            cursor.copy("COPY collection_members (collection_id, document_id, position) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row((row["collection_id"], row["document_id"], row["position"]))
        return len(rows)
    for i in range(0, len(rows), BATCH):
        tx.execute(insert(CollectionMember), rows[i : i + BATCH])
    return len(rows)


def insert_exposures(tx: Session, rows: list[tuple[int, int, int]]) -> int:
    """Bulk-insert (run id, step, document id) rows (COPY on PostgreSQL); returns how many."""
    connection = tx.connection()
    if dialect(tx) == "postgresql":
        raw = connection.connection.driver_connection
        with raw.cursor().copy("COPY exposures (run_id, step, document_id) FROM STDIN") as copy:
            # one text block per batch: ~3x faster than write_row per row
            copy.write("".join(f"{run}\t{step}\t{doc}\n" for run, step, doc in rows))
    else:
        connection.exec_driver_sql("INSERT OR IGNORE INTO exposures (run_id, step, document_id) VALUES (?, ?, ?)", rows)
    return len(rows)


def find_version(tx: Session, ref: int | str) -> ModelVersion:
    """A version by id, name (`v3`) or alias (`latest`), whatever its status."""
    version = None
    text = str(ref)
    if isinstance(ref, int) or text.isdigit():
        version = tx.get(ModelVersion, int(ref))
    if version is None:
        version = tx.scalar(select(ModelVersion).where(ModelVersion.name == text))
    if version is None:
        alias = tx.get(Alias, text)
        if alias is not None:
            version = tx.get(ModelVersion, alias.version_id)
    if version is None:
        raise NotFoundError(f"no model version {text!r} (try `lethe versions`)")
    return version


def set_alias(tx: Session, alias: str, version_id: int) -> None:
    """Point `alias` at the version (created when new), with an event."""
    row = tx.get(Alias, alias)
    if row is None:
        tx.add(Alias(name=alias, version_id=version_id, updated_at=utcnow()))
    else:
        row.version_id, row.updated_at = version_id, utcnow()
    record_event(tx, "alias.set", "model_version", version_id, alias=alias)
