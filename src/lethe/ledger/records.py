"""What readers hand to the ledger: one `DocumentRecord` per document revision."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
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
        self.content = clean_text(self.content)
        self.title = clean_text(self.title) if self.title is not None else None
        self.data = clean_value(self.data)
        if self.kind not in DOCUMENT_KINDS:
            raise InputError(f"unknown document kind {self.kind!r} (expected one of {DOCUMENT_KINDS})", self.where)
        if not self.external_id:
            raise InputError("document has an empty id", self.where)

    @property
    def content_hash(self) -> str:
        return content_hash(self.content)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """`text` as the ledger stores it: NFC-normalised, without NUL or other control characters
    (tab, newline and carriage return stay). A NUL would hide what follows it from SQLite's
    `instr`/`LIKE`, so search, and therefore a forget request, would never find it."""
    if not isinstance(text, str):
        return text
    return _CONTROL.sub("", unicodedata.normalize("NFC", text))


def clean_value(value):
    """Every string inside a JSON-like value (keys too) passed through `clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    return value


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def qa_content(question: str, answer: str) -> str:
    """The canonical text of a QA pair (what search and hashing see)."""
    return f"Question: {question}\nAnswer: {answer}"


def chat_content(messages: list[dict]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
