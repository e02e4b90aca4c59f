"""Documents, their revisions, collections and erasure (bulk ingest is in `ingest.py`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from sqlalchemy import Text, cast, delete, func, or_, select
from sqlalchemy.orm import Session

from lethe.errors import InputError, NotFoundError
from lethe.ledger import repository
from lethe.ledger.schema import Collection, CollectionMember, Document, Source, TokenImpact, utcnow


class DocumentsMixin:
    # -- sources and collections ---------------------------------------------------------------

    def create_collection(self, name: str, document_ids: Sequence[int], description: str | None = None) -> int:
        """Create (or extend) a named collection; returns how many documents joined it."""
        with self.transaction() as s:
            collection = repository.collection(s, name, description)
            added = repository.add_members(s, collection, document_ids)
            repository.record_event(s, "collection.extended", "collection", collection.id, name=name, added=added)
            return added

    def collections(self) -> list[tuple[Collection, int]]:
        with self.reading() as s:
            counts = (
                select(Collection, func.count(CollectionMember.document_id))
                .outerjoin(CollectionMember, CollectionMember.collection_id == Collection.id)
                .group_by(Collection.id)
                .order_by(Collection.name)
            )
            return [(c, n) for c, n in s.execute(counts)]

    def collection_ids(self, name: str) -> list[int]:
        """Document ids of a collection, in the order they joined it."""
        with self.reading() as s:
            collection = s.scalar(select(Collection).where(Collection.name == name))
            if collection is None:
                raise NotFoundError(unknown_collection(name, list(s.scalars(select(Collection.name)))))
            return list(
                s.scalars(
                    select(CollectionMember.document_id)
                    .where(CollectionMember.collection_id == collection.id)
                    .order_by(CollectionMember.position)
                )
            )

    # -- reading -------------------------------------------------------------------------------

    def document(self, ref: int | str) -> Document:
        """A document by integer id or by stable key (`source:external_id`, newest revision)."""
        with self.reading() as s:
            if isinstance(ref, int) or str(ref).isdigit():
                doc = s.get(Document, int(ref))
            else:
                doc = s.scalar(select(Document).where(Document.key == ref).order_by(Document.revision.desc()).limit(1))
            if doc is None:
                raise NotFoundError(f"no document {ref!r}")
            return doc

    def documents(self, ids: Sequence[int]) -> list[Document]:
        """Documents by id, in the order asked."""
        found: dict[int, Document] = {}
        with self.reading() as s:
            for i in range(0, len(ids), 500):
                for doc in s.scalars(select(Document).where(Document.id.in_(ids[i : i + 500]))):
                    found[doc.id] = doc
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError(f"no documents with ids {missing[:10]}")
        return [found[i] for i in ids]

    def revisions(self, doc_id: int) -> list[Document]:
        """Every revision sharing the document's stable key, oldest first."""
        key = self.document(doc_id).key
        with self.reading() as s:
            return list(s.scalars(select(Document).where(Document.key == key).order_by(Document.revision)))

    def list_documents(
        self,
        *,
        collection: str | None = None,
        kind: str | None = None,
        source: str | None = None,
        include_old_revisions: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Document]:
        query = select(Document)
        if collection:
            query = (
                query.join(CollectionMember, CollectionMember.document_id == Document.id)
                .join(Collection, Collection.id == CollectionMember.collection_id)
                .where(Collection.name == collection)
            )
        if kind:
            query = query.where(Document.kind == kind)
        if source:
            query = query.join(Source, Source.id == Document.source_id).where(Source.name == source)
        if not include_old_revisions:
            query = query.where(Document.is_current.is_(True))
        with self.reading() as s:
            return list(s.scalars(query.order_by(Document.id).offset(offset).limit(limit)))

    def count_documents(self) -> dict[str, int]:
        with self.reading() as s:
            rows = s.execute(select(Document.kind, func.count()).group_by(Document.kind))
            return dict(rows.all())

    def search(self, text: str, *, limit: int = 50, collection: str | None = None) -> list[Document]:
        """Current, unerased documents whose title, content or structured data (e.g. TOFU's
        paraphrased and perturbed answers) contains `text` (any case)."""
        if not text.strip():
            raise InputError("search text is empty")
        query = select(Document).where(
            Document.is_current.is_(True),
            Document.forgotten_at.is_(None),
            or_(
                Document.title.icontains(text, autoescape=True),
                Document.content.icontains(text, autoescape=True),
                cast(Document.data, Text).icontains(text, autoescape=True),
            ),
        )
        if collection:
            query = query.where(Document.id.in_(self.collection_ids(collection)))
        with self.reading() as s:
            return list(s.scalars(query.order_by(Document.id).limit(limit)))

    def redaction_successors(self, removed: Sequence[int]) -> dict[int, int]:
        """{revision: the revision a forget request's mention redaction made from it} for the given
        ids that have one (`meta.redaction_of`); exact replay trains on the redacted one instead."""
        ids = sorted(set(removed))
        found: dict[int, int] = {}
        with self.reading() as s:
            for i in range(0, len(ids), 500):
                rows = s.execute(
                    select(Document.id, Document.parent_id, Document.meta)
                    .where(Document.parent_id.in_(ids[i : i + 500]))
                    .order_by(Document.id)
                )
                for new_id, parent_id, meta in rows:
                    if (meta or {}).get("redaction_of") == parent_id:
                        found[parent_id] = new_id
        return found

    def sources(self) -> list[Source]:
        with self.reading() as s:
            return list(s.scalars(select(Source).order_by(Source.id)))

    # -- erasure -------------------------------------------------------------------------------

    def erase(self, document_ids: Sequence[int], *, reason: str, request_id: int | None = None) -> int:
        """Replace every field of documents (all given revisions) with tombstones, in one transaction.

        The tombstone keeps the content hash and size, a hash of each other erased field, when,
        why and which request (`tombstone_documents`). A forget request erases through
        `lethe.forget.erasure`, which also redacts what quotes the documents.
        """
        with self.transaction() as s:
            erased = tombstone_documents(s, document_ids, reason=reason, request_id=request_id)
            repository.record_event(
                s,
                "documents.erased",
                "forget_request",
                request_id,
                count=len(erased),
                reason=reason,
                document_ids=[d.id for d in erased][:1000],
            )
        return len(erased)


ERASED_FIELDS = ("title", "content", "data", "meta", "tags")
"""Every field of a document that holds its text or anything derived from it."""


def _field_hash(value) -> str | None:
    if value is None:
        return None
    raw = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def tombstone_documents(
    s: Session, document_ids: Sequence[int], *, reason: str, request_id: int | None = None
) -> list[Document]:
    """In session `s`: every field of `ERASED_FIELDS` of the documents becomes None, and the
    tombstone keeps `content_hash`, `size_bytes`, a SHA-256 per other field (`title_hash`,
    `data_hash`, `meta_hash`, `tags_hash`), when, why and which request. Their token-impact rows
    (which list their tokens) are deleted. Returns the documents erased now (not those erased
    before)."""
    now = utcnow()
    erased: list[Document] = []
    ids = list(document_ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for doc in s.scalars(select(Document).where(Document.id.in_(chunk)).order_by(Document.id)):
            if doc.forgotten_at is not None:
                continue
            doc.tombstone = {
                "content_hash": doc.content_hash,
                "size_bytes": doc.size_bytes,
                "erased_at": now.isoformat(),
                "reason": reason,
                "request_id": request_id,
                **{f"{name}_hash": _field_hash(getattr(doc, name)) for name in ERASED_FIELDS if name != "content"},
            }
            for name in ERASED_FIELDS:
                setattr(doc, name, None)
            doc.forgotten_at = now
            erased.append(doc)
        s.execute(delete(TokenImpact).where(TokenImpact.document_id.in_(chunk)))
    return erased


def unknown_collection(name: str, known: list[str]) -> str:
    """ "no collection named X", with the few names it was most likely meant to be."""
    import difflib

    if not known:
        return f"no collection named {name!r} (there are none yet: `lethe data add` or `lethe data synth`)"
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    prefix = [k for k in sorted(known) if k.startswith(name.rstrip("/") + "/")][:5]
    suggestions = list(dict.fromkeys(close + prefix))[:5] or sorted(known, key=len)[:5]
    return (
        f"no collection named {name!r}; did you mean {', '.join(suggestions)}? "
        f"(all {len(known)}: `lethe data collections`)"
    )
