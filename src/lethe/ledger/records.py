"""What readers hand to the ledger: one `DocumentRecord` per document revision."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from lethe.errors import InputError, Where

DOCUMENT_KINDS = ("text", "qa", "chat")


@dataclass
class DocumentRecord:
    """One document (or one revision of one) as read from a source."""

    external_id: str
    """Stable id within its source (a page id, a row key); revisions share it."""
    kind: str
    """`text` (pretraining), `qa` (question + answer) or `chat` (a list of messages)."""
    content: str
    """The canonical text: what is hashed, searched and, for `text`, trained on."""
    title: str | None = None
    data: dict | None = None
    """Structured fields: question/answer (+ paraphrased/perturbed answers), messages, ..."""
    meta: dict | None = None
    """Provenance details: url, page id, revision id, timestamp, original row number."""
    tags: list[str] = field(default_factory=list)
    collections: list[str] = field(default_factory=list)
    """Collections this record joins besides the one named at ingest (e.g. TOFU splits)."""
    where: Where | None = None
    """Where the record was read from, for error messages."""

    def __post_init__(self) -> None:
        if self.kind not in DOCUMENT_KINDS:
            raise InputError(f"unknown document kind {self.kind!r} (expected one of {DOCUMENT_KINDS})", self.where)
        if not self.external_id:
            raise InputError("document has an empty id", self.where)

    @property
    def content_hash(self) -> str:
        return content_hash(self.content)


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def qa_content(question: str, answer: str) -> str:
    """The canonical text of a QA pair (what search and hashing see)."""
    return f"Question: {question}\nAnswer: {answer}"


def chat_content(messages: list[dict]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
