"""Turn a forget request's selector into document ids: every revision of every match."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from lethe.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from lethe.ledger.store import Ledger


@dataclass
class Selector:
    """What a forget request names. At least one of the three must be given."""

    docs: list[str] = field(default_factory=list)
    """Document ids (integers) or stable keys (`source:external_id`)."""
    collection: str | None = None
    """Every document of a collection."""
    search: str | None = None
    """Every current document whose title or content contains this text."""
    search_limit: int = 10_000
    """At most this many search matches (a request that matches more is refused)."""

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, [], 10_000)}

    @classmethod
    def from_dict(cls, values: dict) -> Selector:
        return cls(**values)


def resolve(ledger: Ledger, selector: Selector) -> list[int]:
    """Document ids matched by the selector, widened to all revisions of each document.

    Raises `InputError` when the selector is empty or matches nothing, naming what was tried.
    """
    if not (selector.docs or selector.collection or selector.search):
        raise InputError("a forget request needs --docs, --collection or --search")
    matched: list[int] = []
    for ref in selector.docs:
        try:
            matched.append(ledger.document(ref).id)
        except NotFoundError:
            raise InputError(f"no document {ref!r} in the ledger (selector --docs)") from None
    if selector.collection:
        matched.extend(ledger.collection_ids(selector.collection))
    if selector.search:
        found = ledger.search(selector.search, limit=selector.search_limit + 1)
        if len(found) > selector.search_limit:
            raise InputError(
                f"--search {selector.search!r} matches more than {selector.search_limit} documents; narrow it down"
            )
        matched.extend(d.id for d in found)
    if not matched:
        tried = ", ".join(f"{k}={v!r}" for k, v in selector.as_dict().items())
        raise InputError(f"the selector ({tried}) matches no document")
    every_revision: dict[int, None] = {}
    for doc_id in dict.fromkeys(matched):
        for revision in ledger.revisions(doc_id):
            every_revision[revision.id] = None
    return sorted(every_revision)


DIGEST = "sha256:"


def _digest(text: str) -> str:
    return text if text.startswith(DIGEST) else DIGEST + hashlib.sha256(text.encode("utf-8")).hexdigest()


def redact_selector(values: dict | None) -> dict | None:
    """A selector as the ledger keeps it once its documents are erased.

    What it matched stays on record as the request's document ids; the search text and
    document keys, which may well be the person's name, become SHA-256 digests: an auditor
    holding the original text can still confirm it, the ledger no longer says it. Idempotent.
    """
    if not values:
        return values
    out = dict(values)
    if out.get("search"):
        out["search"] = _digest(str(out["search"]))
    if out.get("docs"):
        out["docs"] = [ref if str(ref).isdigit() else _digest(str(ref)) for ref in out["docs"]]
    return out
