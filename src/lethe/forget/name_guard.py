"""The name guard: a published forget request keeps its subject's names out of later ingests.

A request with a search redacts (or drops) the other documents that name its subject
(`lethe.forget.mentions`). The next crawl would bring the name back: an upstream edit of a
redacted document is new content, so it becomes a new revision with the name in it, and a new
article that mentions the subject is a new document. Neither is the erased content, so the
content-hash suppression of `lethe.ledger.ingest` lets both in.

So the request records keyed digests of its subject names (HMAC-SHA256 under the workspace's
`keys/name-guard.key`; never the names) in its config, and once it has succeeded every ingest
checks each record's words against the digests of every succeeded request. Under `redact` the
matched names become `[redacted]` before the record is stored (it is counted as `guarded`);
under `drop` the record is skipped (counted as `suppressed`). `--mentions keep` records no
guard, and `--allow-forgotten` ingests records as given.

The digests are keyed so that the ledger alone cannot confirm a guessed name: a plain hash of
"Jane Doe" could be checked by anyone holding a list of names. The key lives with the
workspace, beside the receipt key. The ledger cannot import this module (it is a lower
layer), so the layers above install the guard on the workspaces they open (`guarded`: the CLI,
the demo, the benchmarks); a ledger that holds guards but is opened without it, or without the
key, refuses to ingest rather than let the names in. The receipt says how many digests a
request keeps and where its key is.

Matching is on normalised words (`lethe.forget.distinctive.normalise`): a name is found when
its words occur in a record as a run, whatever the case, accents or punctuation; a name glued
to another word (`Quenmarrowin`) is not found here, as no digest of the whole word matches.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lethe.errors import InputError, Where
from lethe.forget.distinctive import ForgottenStrings, document_texts, normalise
from lethe.forget.mentions import redacted_value
from lethe.ledger.schema import ForgetRequest
from lethe.ledger.states import RequestStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lethe.ledger.records import DocumentRecord

KEY_FILE = ("keys", "name-guard.key")
MODES = ("redact", "drop")
MAX_WORDS = 6
"""Longest name (in words) a guard matches; longer search texts are guarded by their first words."""


def key_path(home: str | Path) -> Path:
    return Path(home).joinpath(*KEY_FILE)


def guard_key(home: str | Path, *, create: bool = True) -> bytes | None:
    """The workspace's guard key (32 random bytes), made on first use with mode 0600."""
    path = key_path(home)
    if path.is_file():
        raw = path.read_text(encoding="ascii", errors="replace").strip()
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise InputError("the name-guard key is not 64 hex digits", Where(path=path))
        return key
    if not create:
        return None
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
    return key


def load_guard(s: Session, home: str | Path | None) -> NameGuard | None:
    """`Ledger.ingest_guard`: the guard of the ledger behind `s`."""
    return NameGuard.load(s, home)


def guarded(workspace: Any) -> Any:
    """`workspace` with the name guard installed on its ledger (now, and when it is opened)."""
    workspace.ingest_guard = load_guard
    if "ledger" in workspace.__dict__:  # already opened (a cached property)
        workspace.ledger.ingest_guard = load_guard
    return workspace


def digest(key: bytes, name: str) -> str:
    return hmac.new(key, normalise(name).encode("utf-8"), hashlib.sha256).hexdigest()


def guard_config(home: str | Path, names: Iterable[str], mode: str) -> dict | None:
    """What a request keeps in its config (`name_guard`): the mode and the names' digests; None
    when the mode guards nothing (`keep`) or there is no name."""
    words = [" ".join(normalise(n).split()[:MAX_WORDS]) for n in names]
    words = sorted({w for w in words if w})
    if mode not in MODES or not words:
        return None
    key = guard_key(home)
    return {
        "mode": mode,
        "digests": sorted({digest(key, w) for w in words}),
        "max_words": max(len(w.split()) for w in words),
        "key": "/".join(KEY_FILE),
    }


@dataclass
class Verdict:
    action: str
    """`keep` (no guarded name), `redact` (the names replaced) or `drop`."""
    request_id: int | None = None
    record: Any = None


@dataclass
class NameGuard:
    """The digests of every succeeded request's guarded names, and the key to check words with."""

    key: bytes
    digests: dict[str, tuple[int, str]]
    """digest -> (request id, mode)."""
    max_words: int

    @classmethod
    def load(cls, s: Session, home: str | Path | None) -> NameGuard | None:
        """The guard of the ledger behind `s` (None when no succeeded request guards a name)."""
        digests: dict[str, tuple[int, str]] = {}
        longest = 1
        rows = s.execute(
            select(ForgetRequest.id, ForgetRequest.config).where(ForgetRequest.status == RequestStatus.SUCCEEDED)
        )
        for request_id, config in rows:
            guard = (config or {}).get("name_guard")
            if not guard:
                continue
            longest = max(longest, int(guard.get("max_words", 1)))
            for value in guard.get("digests", []):
                mode = digests.get(value, (0, "redact"))[1]
                digests[value] = (request_id, "drop" if "drop" in (mode, guard.get("mode")) else "redact")
        if not digests:
            return None
        key = guard_key(home, create=False) if home is not None else None
        if key is None:
            where = Where(path=key_path(home)) if home is not None else None
            raise InputError(
                "this ledger guards the names of forget requests "
                f"{', '.join(str(r) for r in sorted({r for r, _ in digests.values()}))}, and their key is missing; "
                "ingest through the workspace that made them (`lethe --home ... data add`)",
                where,
            )
        return cls(key=key, digests=digests, max_words=longest)

    def matches(self, texts: Iterable[str]) -> dict[str, tuple[int, str]]:
        """{normalised name: (request id, mode)} for every guarded name in `texts`."""
        found: dict[str, tuple[int, str]] = {}
        for text in texts:
            words = normalise(text).split()
            for n in range(1, self.max_words + 1):
                for i in range(len(words) - n + 1):
                    gram = " ".join(words[i : i + n])
                    hit = self.digests.get(digest(self.key, gram))
                    if hit is not None:
                        found[gram] = hit
        return found

    def check(self, record: DocumentRecord) -> Verdict:
        found = self.matches(document_texts(record.title, record.content, record.data))
        if not found:
            return Verdict("keep", record=record)
        drop = [r for r, mode in found.values() if mode == "drop"]
        if drop:
            return Verdict("drop", request_id=min(drop))
        strings = ForgottenStrings(subjects=list(found))
        redacted = replace(
            record,
            content=strings.redact(record.content),
            title=strings.redact(record.title) if record.title else record.title,
            data=redacted_value(record.data, strings),
            meta={**(record.meta or {}), "name_guard": sorted({r for r, _ in found.values()})},
        )
        return Verdict("redact", request_id=min(r for r, _ in found.values()), record=redacted)
