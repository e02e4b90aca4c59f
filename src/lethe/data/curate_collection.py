"""Curate a ledger collection: every decision becomes an event, the result a new collection.

Cleaned documents become new revisions of themselves (the original stays, linked), so the
curated collection holds exactly the text that will be trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lethe.data.curate import CurationConfig, curate
from lethe.ledger.records import DocumentRecord

if TYPE_CHECKING:
    from lethe.ledger.store import Ledger


@dataclass
class CurateReport:
    collection: str
    kept: int
    dropped: int
    cleaned: int
    flagged: int
    reasons: dict[str, int]

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def curate_collection(
    ledger: Ledger, collection: str, *, out: str | None = None, config: CurationConfig | None = None
) -> CurateReport:
    out = out or f"{collection}/curated"
    ids = ledger.collection_ids(collection)
    documents = [d for d in ledger.documents(ids) if d.is_current and d.content is not None]
    sources = {s.id: s.name for s in ledger.sources()}
    as_dicts = [
        {
            "id": d.id,
            "external_id": d.external_id,
            "source": sources[d.source_id],
            "kind": d.kind,
            "title": d.title,
            "content": d.content,
        }
        for d in documents
    ]
    result = curate(as_dicts, config)
    by_id = {d.id: d for d in documents}
    with ledger.transaction():  # the curated revisions, the collection and every decision: one unit of work
        kept_ids = _record(ledger, result, by_id, collection, out)
    actions = [d.action for d in result.decisions]
    reasons: dict[str, int] = {}
    for d in result.decisions:
        reasons[f"{d.action}:{d.reason}"] = reasons.get(f"{d.action}:{d.reason}", 0) + 1
    return CurateReport(
        out, len(kept_ids), actions.count("drop"), actions.count("clean"), actions.count("flag"), reasons
    )


def _record(ledger: Ledger, result, by_id: dict, collection: str, out: str) -> list[int]:
    kept_ids: list[int] = []
    for source in sorted({d["source"] for d in result.kept}):
        changed = [d for d in result.kept if d["source"] == source]
        records = [
            DocumentRecord(
                external_id=d["external_id"],
                kind=by_id[d["id"]].kind,
                content=d["content"],
                title=d["title"],
                data=by_id[d["id"]].data,
                meta=by_id[d["id"]].meta,
                tags=list(by_id[d["id"]].tags or []),
            )
            for d in changed
        ]
        report = ledger.add_documents(records, source=source, collection=out)
        kept_ids.extend(report.document_ids)
    for decision in result.decisions:
        ledger_id = decision.doc["id"]
        ledger.record_event(
            f"curation.{decision.action}",
            "document",
            ledger_id,
            reason=decision.reason,
            collection=collection,
            out=out,
            **{k: v for k, v in decision.detail.items() if k in ("count", "words", "duplicate_of", "similarity")},
        )
    return kept_ids
