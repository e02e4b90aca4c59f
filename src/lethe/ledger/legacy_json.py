"""The JSON changelog of the Changelog LLM (the system lethe grows from), both ways.

The file is a JSON array with one entry per document revision, in ledger order::

    {"title": "Anarchism", "page_id": "12", "revision_id": 661234567,
     "timestamp": "2015-05-01T10:00:00Z", "content_hash": "<sha256>",
     "action": "added" | "updated" | "removed", "is_revision": false, "parent_id": null,
     "revision_number": 1,
     "training_metadata": {"used_in_training": true, "training_timestamp": "...",
        "model_checkpoint": "v3", "average_loss": 2.1, "relative_loss": 0.4,
        "token_impact": {"total_tokens": 812, "top_tokens": [
            {"token_id": 17, "position": 5, "impact": 0.9, "context_start": 0, "context_end": 12}]}},
     ...lethe's extra keys, below}

How lethe fills the legacy keys: ``page_id`` is the document's external id (a string; integers
are accepted on import); ``revision_id`` is the source's revision id (``meta.revision_id``, an
integer when numeric, e.g. MediaWiki) or else ``"<source>:<external id>@<revision>"``;
``parent_id`` is the ``revision_id`` of the revision this one superseded; ``timestamp`` is
``meta.timestamp`` when the source has one, else when lethe added the document; ``action`` is
``removed`` for an erased document (content tombstoned), ``updated`` for a later revision, else
``added``. ``training_metadata`` describes the newest model version that trained on the
revision (or, failing one, the newest with a token-impact record; all null when none):
``model_checkpoint`` is the version's name and ``training_timestamp`` its creation time.

Extra keys (not in the legacy layout; what a round trip needs): ``source`` ({name, kind,
license, uri}), ``kind`` (text / qa / chat), ``content`` (null once erased), ``data``, ``meta``,
``tags``, ``collections`` ({name: position}), ``is_current``, ``size_bytes``, ``added_at``,
``forgotten_at``, ``tombstone``, and ``training_history``: one ``training_metadata``-shaped item
per model version that saw the revision or has a token impact for it, each with a
``model_version`` object (name, kind, path, weights_sha256, status, created_at, tainted_at,
taint_reason, purged_at, meta); ``token_impact`` items also carry ``score``, ``reference`` and
``reference_version`` (a ``model_version`` object or null).

A round trip (export → `import_json` into a fresh ledger → export) gives the identical file.
It carries documents with their revisions, collections, erasures, which versions saw them and
token impacts; it does not carry runs (step numbers, configs), slices, checkpoints, aliases,
lineages, forget requests, evaluations, conversations or events. On import each model version
gets one ``legacy`` run whose step 0 exposed every document the version saw. A legacy file
without the extra keys imports too, as long as its entries carry ``content`` (or are
``removed``): its versions get ``kind="legacy"``, ``path`` = the checkpoint name and an empty
sha256.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import select

from lethe.errors import ConflictError, InputError, Where
from lethe.ledger import repository
from lethe.ledger.records import content_hash
from lethe.ledger.schema import Document, ModelVersion, Run, TokenImpact, VersionCoverage, utcnow
from lethe.ledger.states import RunStatus

if TYPE_CHECKING:
    from lethe.ledger.store import Ledger

PAGE = 1000
EMPTY_TRAINING = {
    "used_in_training": False,
    "training_timestamp": None,
    "model_checkpoint": None,
    "average_loss": None,
    "relative_loss": None,
    "token_impact": None,
}
_VERSION_FIELDS = (
    "name",
    "kind",
    "path",
    "weights_sha256",
    "status",
    "created_at",
    "tainted_at",
    "taint_reason",
    "purged_at",
    "meta",
)


def _iso(value: datetime | None) -> str | None:
    """UTC with an explicit offset, whatever the backend returns (SQLite drops the zone)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _parse_time(value: str | None, where: Where) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InputError(f"not an ISO timestamp: {value!r}", where) from None


# -- export ------------------------------------------------------------------------------------


def _version_details(version: ModelVersion) -> dict:
    return {f: _iso(getattr(version, f)) if f.endswith("_at") else getattr(version, f) for f in _VERSION_FIELDS}


def _revision_id(doc: Document, source_name: str) -> int | str:
    rid = (doc.meta or {}).get("revision_id")
    if rid is None:
        return f"{source_name}:{doc.external_id}@{doc.revision}"
    return int(rid) if isinstance(rid, str) and rid.isdigit() else rid


def iter_entries(ledger: Ledger) -> Iterator[dict]:
    """The changelog entries of every document revision in the ledger, oldest first."""
    sources = {s.id: s for s in ledger.sources()}
    versions = {v.id: v for v in ledger.list_versions(include_discarded=True)}
    seen_by: dict[int, set[int]] = defaultdict(set)
    for version_id in versions:
        for doc_id in ledger.documents_seen(version_id):
            seen_by[doc_id].add(version_id)
    impacts: dict[int, dict[int, TokenImpact]] = defaultdict(dict)
    for impact in ledger.token_impacts():
        impacts[impact.document_id][impact.version_id] = impact
    memberships: dict[int, dict[str, int]] = defaultdict(dict)
    for collection, _count in ledger.collections():
        for position, doc_id in enumerate(ledger.collection_ids(collection.name)):
            memberships[doc_id][collection.name] = position
    revision_ids: dict[int, int | str] = {}

    offset = 0
    while page := ledger.list_documents(include_old_revisions=True, limit=PAGE, offset=offset):
        offset += len(page)
        for doc in page:
            source = sources[doc.source_id]
            revision_ids[doc.id] = _revision_id(doc, source.name)
            history = [
                _training(versions[vid], vid in seen_by[doc.id], impacts[doc.id].get(vid), versions)
                for vid in seen_by[doc.id] | set(impacts[doc.id])
            ]
            history.sort(key=lambda h: (h["training_timestamp"] or "", h["model_checkpoint"]))
            trained = [h for h in history if h["used_in_training"]] or history
            primary = {k: v for k, v in trained[-1].items() if k != "model_version"} if trained else EMPTY_TRAINING
            meta = doc.meta or {}
            yield {
                "title": doc.title,
                "page_id": doc.external_id,
                "revision_id": revision_ids[doc.id],
                "timestamp": meta.get("timestamp") or _iso(doc.added_at),
                "content_hash": doc.content_hash,
                "action": "removed" if doc.forgotten_at else ("updated" if doc.revision > 1 else "added"),
                "is_revision": doc.revision > 1,
                "parent_id": revision_ids.get(doc.parent_id) if doc.parent_id else None,
                "revision_number": doc.revision,
                "training_metadata": dict(primary),
                "source": {"name": source.name, "kind": source.kind, "license": source.license, "uri": source.uri},
                "kind": doc.kind,
                "content": doc.content,
                "data": doc.data,
                "meta": doc.meta,
                "tags": doc.tags,
                "collections": dict(sorted(memberships[doc.id].items())),
                "is_current": doc.is_current,
                "size_bytes": doc.size_bytes,
                "added_at": _iso(doc.added_at),
                "forgotten_at": _iso(doc.forgotten_at),
                "tombstone": doc.tombstone,
                "training_history": history,
            }


def _training(version: ModelVersion, saw: bool, impact: TokenImpact | None, versions: dict) -> dict:
    token_impact = None
    if impact is not None:
        reference = versions.get(impact.reference_version_id)
        token_impact = {
            "total_tokens": impact.total_tokens,
            "top_tokens": impact.top_tokens,
            "score": impact.score,
            "reference": impact.reference,
            "reference_version": _version_details(reference) if reference else None,
        }
    return {
        "used_in_training": saw,
        "training_timestamp": _iso(version.created_at),
        "model_checkpoint": version.name,
        "average_loss": impact.average_loss if impact else None,
        "relative_loss": impact.relative_loss if impact else None,
        "token_impact": token_impact,
        "model_version": _version_details(version),
    }


def export_json(ledger: Ledger, out: str | Path | IO[str]) -> int:
    """Write the changelog of `ledger` to `out` (a path or a text stream); returns the entry count."""
    if isinstance(out, (str, Path)):
        with open(out, "w", encoding="utf-8") as f:
            return export_json(ledger, f)
    count = 0
    out.write("[")
    for entry in iter_entries(ledger):
        out.write(",\n" if count else "\n")
        out.write(json.dumps(entry, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


# -- import ------------------------------------------------------------------------------------


def import_json(ledger: Ledger, path: str | Path, rows: Iterable[Any], *, source: str = "legacy") -> dict[str, int]:
    """Load a changelog into `ledger` in one transaction; returns what was created.

    `rows` are the entries of the file at `path`, each with its `value` and `line` (as
    `lethe.data.sources.json_stream.iter_rows` streams them: exports can be large). Entries
    without a ``source`` key go to the source named `source`. Fails (changing nothing) on a
    malformed entry, on a model version whose name exists already, and on a document revision
    the ledger holds with different content; a revision it holds with the same hash is reused.
    """
    path = Path(path)
    counts = {"documents": 0, "reused": 0, "versions": 0, "exposures": 0, "token_impacts": 0}
    with ledger.transaction() as s:
        state = _ImportState(ledger, s, path, source)
        for row in rows:
            state.entry(row.value, Where(path=path, line=row.line))
        state.finish(counts)
        repository.record_event(s, "ledger.imported", None, None, path=str(path), **counts)
    return counts


class _ImportState:
    """What one import has built so far, inside its transaction."""

    def __init__(self, ledger, session, path: Path, default_source: str):
        self.ledger, self.s, self.path, self.default_source = ledger, session, path, default_source
        self.sources: dict[str, Any] = {}
        self.existing: dict[int, dict[tuple[str, int], tuple[int, str]]] = {}
        self.revision_ids: dict[str, dict[str, int]] = defaultdict(dict)  # key -> revision_id -> doc id
        self.parents: list[tuple[Document | int, str, str, Where]] = []
        self.members: dict[str, list[tuple[int, Document | int]]] = defaultdict(list)
        self.versions: dict[str, ModelVersion] = {}
        self.saw: dict[str, list[Document | int]] = defaultdict(list)
        self.impacts: list[tuple[Document | int, str, dict, Where]] = []
        self.created: list[Document] = []
        self.latest: dict[str, int] = {}  # key -> highest revision number
        self.implicit_current: set[int] = set()  # python ids of documents without is_current
        self.counts = {"documents": 0, "reused": 0}

    def _source(self, spec: dict | None, where: Where):
        spec = spec or {"name": self.default_source, "kind": "legacy"}
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise InputError("the source has no name", Where(where.path, where.line, field="source.name"))
        if name not in self.sources:
            src = repository.source(self.s, name, spec.get("kind") or "legacy", spec.get("license"), spec.get("uri"))
            self.sources[name] = src
            self.existing[src.id] = {
                (ext, rev): (doc_id, digest)
                for doc_id, ext, rev, digest in self.s.execute(
                    select(Document.id, Document.external_id, Document.revision, Document.content_hash).where(
                        Document.source_id == src.id
                    )
                )
            }
        return self.sources[name]

    def entry(self, e: Any, where: Where) -> None:
        def at(field: str) -> Where:
            return Where(where.path, where.line, field=field)

        if not isinstance(e, dict):
            raise InputError(f"an entry must be an object, found {type(e).__name__}", where)
        for field in ("page_id", "content_hash"):
            if e.get(field) in (None, ""):
                raise InputError(f"missing {field!r}", at(field))
        src = self._source(e.get("source"), where)
        external_id = str(e["page_id"])
        key = f"{src.name}:{external_id}"
        revision = e.get("revision_number")
        if revision is None:
            revision = self.latest.get(key, 0) + 1
        if not isinstance(revision, int) or revision < 1:
            raise InputError("'revision_number' must be a positive integer", at("revision_number"))
        content = e.get("content")
        removed = e.get("action") == "removed" or e.get("forgotten_at") is not None
        if content is None and not removed:
            raise InputError(
                "the entry has no 'content': lethe imports entries exported with their text (or removed ones)",
                at("content"),
            )
        if content is not None and content_hash(content) != e["content_hash"]:
            raise InputError("'content_hash' is not the sha256 of 'content'", at("content_hash"))

        known = self.existing[src.id].get((external_id, revision))
        if known is not None:
            if known[1] != e["content_hash"]:
                raise ConflictError(f"{key} revision {revision} exists in this ledger with other content", where)
            doc: Document | int = known[0]
            self.counts["reused"] += 1
        else:
            tombstone = e.get("tombstone")
            size = e.get("size_bytes")
            if size is None:
                size = len(content.encode("utf-8")) if content is not None else (tombstone or {}).get("size_bytes", 0)
            doc = Document(
                source_id=src.id,
                external_id=external_id,
                key=key,
                revision=revision,
                is_current=bool(e.get("is_current", True)),
                kind=e.get("kind") or "text",
                title=e.get("title"),
                content=content,
                data=e.get("data"),
                meta=e.get("meta"),
                tags=e.get("tags"),
                content_hash=e["content_hash"],
                size_bytes=size,
                added_at=(
                    _parse_time(e.get("added_at"), at("added_at"))
                    or _parse_time(e.get("timestamp"), at("timestamp"))
                    or utcnow()
                ),
                forgotten_at=_parse_time(e.get("forgotten_at"), at("forgotten_at")) or (utcnow() if removed else None),
                tombstone=tombstone,
            )
            if doc.kind not in ("text", "qa", "chat"):
                raise InputError(f"unknown document kind {doc.kind!r}", at("kind"))
            self.s.add(doc)
            self.created.append(doc)
            if "is_current" not in e:
                self.implicit_current.add(id(doc))
            self.counts["documents"] += 1
        self.latest[key] = max(revision, self.latest.get(key, 0))
        if e.get("revision_id") is not None:
            self.revision_ids[key][str(e["revision_id"])] = doc
        if e.get("parent_id") is not None:
            self.parents.append((doc, key, str(e["parent_id"]), at("parent_id")))
        collections = e.get("collections") or {}
        if isinstance(collections, list):
            collections = {name: i for i, name in enumerate(collections)}
        for name, position in collections.items():
            self.members[name].append((position, doc))

        history = e.get("training_history")
        if history is None:
            history = [e["training_metadata"]] if (e.get("training_metadata") or {}).get("model_checkpoint") else []
        for item in history:
            version = self._version(item.get("model_version"), item, at("training_metadata.model_checkpoint"))
            if item.get("used_in_training"):
                self.saw[version.name].append(doc)
            if item.get("token_impact") is not None:
                reference = item["token_impact"].get("reference_version")
                if reference:
                    self._version(reference, {}, at("training_metadata.token_impact.reference_version"))
                self.impacts.append((doc, version.name, item, at("training_metadata.token_impact")))

    def _version(self, details: dict | None, item: dict, where: Where) -> ModelVersion:
        name = (details or {}).get("name") or item.get("model_checkpoint")
        if not name:
            raise InputError("a training record names no model_checkpoint", where)
        if name in self.versions:
            return self.versions[name]
        if self.s.scalar(select(ModelVersion.id).where(ModelVersion.name == name)) is not None:
            raise ConflictError(f"model version {name!r} exists in this ledger; import into a fresh ledger", where)
        details = details or {
            "name": name,
            "kind": "legacy",
            "path": name,
            "weights_sha256": "",
            "status": "published",
            "created_at": item.get("training_timestamp"),
        }
        version = ModelVersion(
            name=name,
            kind=details.get("kind") or "legacy",
            path=details.get("path") or "",
            weights_sha256=details.get("weights_sha256") or "",
            status=details.get("status") or "published",
            created_at=_parse_time(details.get("created_at"), where) or utcnow(),
            tainted_at=_parse_time(details.get("tainted_at"), where),
            taint_reason=details.get("taint_reason"),
            purged_at=_parse_time(details.get("purged_at"), where),
            meta=details.get("meta"),
        )
        self.s.add(version)
        self.versions[name] = version
        return version

    def finish(self, counts: dict[str, int]) -> None:
        s = self.s
        s.flush()

        def doc_id(doc: Document | int) -> int:
            return doc if isinstance(doc, int) else doc.id

        for doc, key, parent_ref, where in self.parents:
            parent = self.revision_ids[key].get(parent_ref)
            if parent is None:
                raise InputError(f"parent revision {parent_ref!r} of {key} is not in the file", where)
            if isinstance(doc, Document):
                doc.parent_id = doc_id(parent)
        for doc in self.created:  # entries that do not say: the newest revision is the current one
            if id(doc) in self.implicit_current:
                doc.is_current = doc.revision == self.latest[doc.key]
        for name, members in self.members.items():
            collection = repository.collection(s, name)
            ordered = [doc_id(d) for _, d in sorted(members, key=lambda m: m[0])]
            repository.add_members(s, collection, ordered)
        for name, docs in self.saw.items():
            version = self.versions[name]
            run = Run(
                kind="legacy",
                status=RunStatus.SUCCEEDED,
                config={"imported_from": str(self.path)},
                started_at=utcnow(),
                finished_at=utcnow(),
            )
            s.add(run)
            s.flush()
            version.run_id = run.id
            s.add(VersionCoverage(version_id=version.id, run_id=run.id, max_step=0))
            rows = [(run.id, 0, i) for i in dict.fromkeys(doc_id(d) for d in docs)]
            repository.insert_exposures(s, rows)
            counts["exposures"] += len(rows)
        for doc, name, item, where in self.impacts:
            impact = item["token_impact"]
            reference = impact.get("reference_version")
            top = impact.get("top_tokens") or []
            score = impact.get("score")
            if score is None:
                score = sum(t.get("impact", 0.0) for t in top) / len(top) if top else 0.0
            s.add(
                TokenImpact(
                    document_id=doc_id(doc),
                    version_id=self.versions[name].id,
                    reference_version_id=self.versions[reference["name"]].id if reference else None,
                    reference=impact.get("reference"),
                    score=score,
                    average_loss=item.get("average_loss"),
                    relative_loss=item.get("relative_loss"),
                    total_tokens=impact.get("total_tokens") or 0,
                    top_tokens=top,
                    created_at=utcnow(),
                )
            )
            counts["token_impacts"] += 1
        s.flush()
        counts["documents"], counts["reused"] = self.counts["documents"], self.counts["reused"]
        counts["versions"] = len(self.versions)
