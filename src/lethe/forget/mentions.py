"""Mentions: other documents that name the subject of a forget request, and what to do with each.

A forgotten person also lives in documents that are not theirs: another author's article names
them as a mentor, a TOFU-style perturbed answer borrows their name. Exact replay without the
person's own documents still trains on those, so the model keeps the name (the demo's exact
model kept a forget-set membership AUC of 0.95 until its mentions were redacted).

The subject's names are the request's `--search` text, plus every capitalised phrase (one to
three words) that the forgotten documents use and that is *concentrated* in them: it occurs in
at least two of them, and in more forgotten than retained documents (so a city every article
names is not taken for the person). A mention is a current, unerased document outside the
forget set whose title, content or any structured field contains one of those names
(`lethe.forget.distinctive.normalise`: case, accents and punctuation ignored).

Per mention the request records a decision:

* `redact` — a new revision of the document with each name replaced by `[redacted]`; it becomes
  current at publish, and the old revision is forgotten with the request (exact replay trains
  on the redacted revision in its place, `lethe.train.pipeline.replay`);
* `drop` — the whole document is forgotten with the request;
* `keep` — nothing changes; the decision and its reason are recorded.

`--mentions redact|drop|keep` sets the default (`redact` with `--search`, else `keep`), and a
JSON file `{"<document id or key>": "redact" | "drop" | {"decision": "keep", "reason": "..."}}`
decides per document.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lethe.errors import InputError, Where
from lethe.forget.distinctive import ForgottenStrings, document_texts, normalise
from lethe.ledger.records import content_hash
from lethe.ledger.schema import Document, utcnow

if TYPE_CHECKING:
    from lethe.ledger.store import Ledger

DECISIONS = ("redact", "drop", "keep")
_PHRASE = re.compile(r"[^\W\d_][^\W_]*(?:[ -][^\W\d_][^\W_]*){0,2}")


@dataclass
class Mention:
    """One document outside the forget set that names the subject, and the decision about it."""

    document_id: int
    key: str
    names: list[str]
    """The names found (normalised)."""
    fields: list[str]
    """Where: `title`, `content`, `data`."""
    decision: str = "keep"
    reason: str | None = None
    redacted_revision_id: int | None = None
    """The new revision made by `redact`."""

    def as_dict(self) -> dict:
        return asdict(self)


def _phrases(text: str) -> set[str]:
    """Normalised capitalised phrases of one to three words (every sub-phrase of a longer run)."""
    found = set()
    for run in _PHRASE.findall(unicodedata.normalize("NFC", text)):
        words = [w for w in re.split(r"[ -]", run) if w]
        capitalised = [w[0].isupper() and len(w) > 1 for w in words]
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + 3) + 1):
                if all(capitalised[i:j]) and sum(len(w) for w in words[i:j]) >= 6:
                    found.add(normalise(" ".join(words[i:j])))
    return found


def subject_names(s: Session, forget_ids: Sequence[int], *, subjects: Iterable[str] = ()) -> list[str]:
    """The subject's names: `subjects` plus the capitalised phrases concentrated in the forgotten
    documents (see the module docstring), normalised and sorted."""
    forgotten = set(forget_ids)
    in_forgotten: Counter[str] = Counter()
    for title, content, data in _texts(s, ids=forgotten):
        in_forgotten.update({p for text in document_texts(title, content, data) for p in _phrases(text)})
    candidates = {p for p, n in in_forgotten.items() if n >= 2}
    in_retained: Counter[str] = Counter()
    if candidates:
        for doc_id, title, content, data in _current(s):
            if doc_id in forgotten:
                continue
            words = f" {normalise(' '.join(document_texts(title, content, data)))} "
            in_retained.update(p for p in candidates if f" {p} " in words)
    names = {p for p in candidates if in_forgotten[p] > in_retained[p]}
    names |= {normalise(x) for x in subjects if normalise(x)}
    # a name inside a longer name is the same person's ("Nortrel" in "Cithmor Nortrel") only when
    # the shorter never occurs on its own outside the forget set: keep both, the longer first
    return sorted(names, key=lambda n: (-len(n), n))


def _texts(s: Session, *, ids: set[int]):
    ordered = sorted(ids)
    for i in range(0, len(ordered), 500):
        yield from s.execute(
            select(Document.title, Document.content, Document.data).where(Document.id.in_(ordered[i : i + 500]))
        )


def _current(s: Session):
    query = select(Document.id, Document.title, Document.content, Document.data).where(
        Document.is_current.is_(True), Document.forgotten_at.is_(None)
    )
    yield from s.execute(query.execution_options(yield_per=1000))


def find_mentions(s: Session, forget_ids: Sequence[int], names: Sequence[str]) -> list[Mention]:
    """Current, unerased documents outside `forget_ids` whose title, content or data names one of `names`."""
    strings = ForgottenStrings(subjects=list(names))
    forgotten = set(forget_ids)
    keys = dict(s.execute(select(Document.id, Document.key).where(Document.is_current.is_(True))).all())
    found = []
    for doc_id, title, content, data in _current(s):
        if doc_id in forgotten:
            continue
        fields, hit = [], set()
        for name, value in (("title", title), ("content", content), ("data", data)):
            matched = {m for text in document_texts(None, None, value) for m in strings.matches(text)}
            if matched:
                fields.append(name)
                hit |= matched
        if hit:
            found.append(Mention(doc_id, keys[doc_id], sorted(hit), fields))
    return found


# -- decisions --------------------------------------------------------------------------------


def read_choices(path: str | Path) -> dict[str, dict]:
    """A choices file: `{"<id or key>": "redact" | "drop" | "keep" | {"decision": ..., "reason": ...}}`."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read the mention choices: {error}", Where(path=path)) from None
    if not isinstance(raw, dict):
        raise InputError("mention choices must be a JSON object of document -> decision", Where(path=path))
    choices = {}
    for ref, value in raw.items():
        entry = {"decision": value} if isinstance(value, str) else value
        if not isinstance(entry, dict) or entry.get("decision") not in DECISIONS:
            raise InputError(
                f"decision for {ref!r} must be one of {', '.join(DECISIONS)}", Where(path=path, field=str(ref))
            )
        choices[str(ref)] = {"decision": entry["decision"], "reason": entry.get("reason")}
    return choices


def decide(mentions: list[Mention], default: str, choices: Mapping[str, dict] | None = None) -> list[Mention]:
    """Give each mention its decision: the per-document choice (by id or key), else `default`."""
    if default not in DECISIONS:
        raise InputError(f"--mentions must be one of {', '.join(DECISIONS)}, got {default!r}", Where(field="mentions"))
    choices = dict(choices or {})
    known = {str(m.document_id) for m in mentions} | {m.key for m in mentions}
    unknown = sorted(set(choices) - known)
    if unknown:
        raise InputError(
            f"mention choices name documents that do not mention the subject: {', '.join(unknown[:5])}",
            Where(field="mentions"),
        )
    for mention in mentions:
        choice = choices.get(str(mention.document_id)) or choices.get(mention.key)
        if choice:
            mention.decision, mention.reason = choice["decision"], choice.get("reason")
        else:
            mention.decision = default
            mention.reason = f"default (--mentions {default})"
    return mentions


def redacted_value(value, strings: ForgottenStrings):
    """`value` (a string, or a structure of them) with every matched span redacted."""
    if isinstance(value, str):
        return strings.redact(value)
    if isinstance(value, dict):
        return {k: redacted_value(v, strings) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted_value(v, strings) for v in value]
    return value


def add_redacted_revision(s: Session, document_id: int, names: Sequence[str]) -> int:
    """A new, not yet current revision of the document with every name replaced by `[redacted]`;
    its id. `activate_redactions` makes it current when the request publishes."""
    strings = ForgottenStrings(subjects=list(names))
    old = s.get(Document, document_id)
    revision = s.scalar(select(func.max(Document.revision)).where(Document.key == old.key)) + 1
    content = strings.redact(old.content)
    new = Document(
        source_id=old.source_id,
        external_id=old.external_id,
        key=old.key,
        revision=revision,
        parent_id=old.id,
        is_current=False,
        kind=old.kind,
        title=strings.redact(old.title) if old.title else old.title,
        content=content,
        data=redacted_value(old.data, strings),
        meta={**(old.meta or {}), "redaction_of": old.id},
        tags=old.tags,
        content_hash=content_hash(content),
        size_bytes=len(content.encode("utf-8")),
        added_at=utcnow(),
    )
    s.add(new)
    s.flush()
    return new.id


def apply_decisions(s: Session, mentions: list[Mention]) -> list[int]:
    """Make the redacted revisions; the document ids the request must forget besides its own
    (dropped documents, and the old revisions of redacted ones)."""
    extra: list[int] = []
    for mention in mentions:
        if mention.decision == "redact":
            mention.redacted_revision_id = add_redacted_revision(s, mention.document_id, mention.names)
        if mention.decision in ("redact", "drop"):
            extra.append(mention.document_id)
    return extra


def activate_redactions(s: Session, mentions: Iterable[dict]) -> int:
    """At publish: each redacted revision becomes its document's current revision."""
    count = 0
    for mention in mentions:
        new_id = mention.get("redacted_revision_id")
        if mention.get("decision") != "redact" or new_id is None:
            continue
        new = s.get(Document, new_id)
        old = s.get(Document, mention["document_id"])
        if new is None or old is None:
            continue
        old.is_current, new.is_current = False, True
        count += 1
    return count


def is_about(title: str | None, data, search: str) -> bool:
    """A search hit is the subject's own document when the search text is in its title or its
    question (`Where was Jane Doe born?`); elsewhere (an answer, an article body, a perturbed
    answer) it is a mention."""
    strings = ForgottenStrings(subjects=[search])
    question = data.get("question") if isinstance(data, dict) else None
    return bool(strings.matches(title) or strings.matches(question if isinstance(question, str) else None))


def split_search_hits(
    ledger: Ledger, document_ids: Sequence[int], *, search: str, named: Iterable[int] = ()
) -> list[int]:
    """The request's own documents among `document_ids`: those `named` by --docs/--collection and
    the search hits that are about the subject (`is_about`), with every revision of each."""
    own_keys = set()
    named = set(named)
    for doc in ledger.documents(list(document_ids)):
        if doc.id in named or is_about(doc.title, doc.data, search):
            own_keys.add(doc.key)
    return [d.id for d in ledger.documents(list(document_ids)) if d.key in own_keys]


def mentions_for_request(
    ledger: Ledger,
    document_ids: Sequence[int],
    *,
    search: str | None,
    named: Iterable[int] = (),
    mode: str | None = None,
    choices: Mapping[str, dict] | None = None,
    apply: bool = True,
) -> tuple[list[Mention], list[int], list[str]]:
    """Find and decide the mentions of a request's subject; with `apply`, make the redacted
    revisions. Returns (mentions, the ids the request forgets, the subject's names: for the
    request's name guard, never stored as they are).

    With a search, the selector's hits split into the subject's own documents and mentions
    (`split_search_hits`; `named` are the ids --docs/--collection gave, always the request's
    own). The request forgets its own documents, dropped mentions with all their revisions, and
    the revisions a redaction replaces; a kept mention stays as it is.
    """
    mode = mode or ("redact" if search else "keep")
    own = split_search_hits(ledger, document_ids, search=search, named=named) if search else list(document_ids)
    with ledger.transaction() if apply else ledger.reading() as s:
        names = subject_names(s, own, subjects=[search] if search else [])
        mentions = decide(find_mentions(s, own, names), mode, choices)
        if not apply:
            return mentions, own, names
        extra = apply_decisions(s, mentions)
    every: dict[int, None] = dict.fromkeys(own)
    for doc_id in extra:
        for revision in ledger.revisions(doc_id):
            if not (revision.meta or {}).get("redaction_of"):
                every[revision.id] = None
    return mentions, sorted(every), names


def recorded(mentions: list[Mention]) -> list[dict]:
    """The mentions as a request's config keeps them: no names, only where and what was decided."""
    return [{k: v for k, v in m.as_dict().items() if k != "names"} | {"names": len(m.names)} for m in mentions]
