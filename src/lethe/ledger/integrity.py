"""`lethe ledger check`: verify the ledger and say exactly what is wrong.

Checks, each producing `Problem`s that name the table, the row and what is off:
foreign keys and orphans, revision chains, tombstones, content hashes, run/version
consistency, model weights and tokenizers against their recorded sha256, and token-impact
completeness.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import exists, func, select, text

from lethe.digests import file_sha256, weights_sha256
from lethe.ledger.schema import (
    Checkpoint,
    Document,
    Exposure,
    ModelVersion,
    Run,
    TokenImpact,
    VersionCoverage,
)
from lethe.ledger.states import RunStatus

if TYPE_CHECKING:
    from lethe.ledger.store import Ledger

TOP_TOKEN_KEYS = ("token_id", "position", "impact")


PROBLEM, NOTICE = "problem", "notice"


@dataclass
class Problem:
    """Something the ledger says that is wrong (`problem`), or worth knowing but consistent (`notice`)."""

    check: str
    table: str
    row: str
    detail: str
    severity: str = PROBLEM

    def as_dict(self) -> dict:
        return asdict(self)


def _sqlite_foreign_keys(ledger) -> list[Problem]:
    if ledger.dialect != "sqlite":
        return []  # PostgreSQL enforces foreign keys on every write
    with ledger.engine.connect() as conn:
        rows = conn.execute(text("PRAGMA foreign_key_check")).all()
    return [
        Problem("foreign-keys", table, str(rowid), f"references a missing row in {parent}")
        for table, rowid, parent, _ in rows
    ]


def _exposures(ledger) -> list[Problem]:
    """Exposures carry no foreign keys (bulk-load speed): check their references here."""
    problems = []
    with ledger.reading() as s:
        for column, table in ((Exposure.run_id, Run), (Exposure.document_id, Document)):
            missing = s.execute(
                select(column, func.count()).where(~exists().where(table.id == column)).group_by(column).limit(20)
            ).all()
            problems += [
                Problem(
                    "orphans",
                    "exposures",
                    f"{column.key}={ref}",
                    f"{n} exposure rows reference a missing {table.__tablename__} row",
                )
                for ref, n in missing
            ]
    return problems


def _documents(ledger) -> list[Problem]:
    problems = []
    with ledger.reading() as s:
        for doc in s.execute(
            select(
                Document.id,
                Document.content,
                Document.content_hash,
                Document.forgotten_at,
                Document.tombstone,
                Document.parent_id,
                Document.revision,
            )
        ).all():
            doc_id, content, digest, forgotten_at, tombstone, parent_id, revision = doc
            if forgotten_at is None:
                if content is None:
                    problems.append(Problem("tombstones", "documents", str(doc_id), "content missing but not erased"))
                elif hashlib.sha256(content.encode("utf-8")).hexdigest() != digest:
                    problems.append(
                        Problem("content-hash", "documents", str(doc_id), "content does not match its recorded sha256")
                    )
            else:
                if content is not None:
                    problems.append(
                        Problem("tombstones", "documents", str(doc_id), "marked forgotten but still holds its content")
                    )
                if not tombstone or tombstone.get("content_hash") != digest:
                    problems.append(Problem("tombstones", "documents", str(doc_id), "tombstone missing or wrong hash"))
            if revision > 1 and parent_id is None:
                problems.append(
                    Problem("revisions", "documents", str(doc_id), f"revision {revision} has no parent revision")
                )
        current = s.execute(
            select(Document.key, func.count())
            .where(Document.is_current.is_(True))
            .group_by(Document.key)
            .having(func.count() > 1)
        ).all()
        problems += [Problem("revisions", "documents", key, f"{n} revisions marked current") for key, n in current]
    return problems


def _runs_and_versions(ledger, verify_weights: bool) -> list[Problem]:
    problems = []
    with ledger.reading() as s:
        version_ids = set(s.scalars(select(ModelVersion.id)))
        for run in s.scalars(select(Run)):
            if run.parent_version_id is not None and run.parent_version_id not in version_ids:
                problems.append(
                    Problem("orphans", "runs", str(run.id), f"parent_version_id {run.parent_version_id} does not exist")
                )
            if run.status == RunStatus.SUCCEEDED and run.finished_at is None:
                problems.append(Problem("runs", "runs", str(run.id), "succeeded without a finish time"))
        covered = set(s.scalars(select(VersionCoverage.version_id).distinct()))
        for version in s.scalars(select(ModelVersion)):
            row = f"{version.id} ({version.name})"
            if version.run_id is not None and version.id not in covered:
                problems.append(Problem("coverage", "model_versions", row, "trained by a run but has no coverage"))
            if version.purged_at is not None:
                continue
            path = Path(version.path)
            if not path.exists():
                problems.append(Problem("weights", "model_versions", row, f"directory {path} is missing"))
            elif verify_weights:
                actual = weights_sha256(path)
                if actual != version.weights_sha256:
                    problems.append(
                        Problem(
                            "weights",
                            "model_versions",
                            row,
                            f"weights sha256 {actual[:12]}… != recorded {version.weights_sha256[:12]}…",
                        )
                    )
        for ck in s.scalars(select(Checkpoint).where(Checkpoint.purged_at.is_(None))):
            if not Path(ck.path).exists():
                problems.append(Problem("checkpoints", "checkpoints", str(ck.id), f"path {ck.path} is missing"))
    return problems


def _token_impacts(ledger) -> list[Problem]:
    problems = []
    with ledger.reading() as s:
        versions = list(s.scalars(select(TokenImpact.version_id).distinct()))
        for impact in s.scalars(select(TokenImpact)):
            row = f"{impact.id} (document {impact.document_id}, version {impact.version_id})"
            if impact.total_tokens <= 0:
                problems.append(Problem("token-impacts", "token_impacts", row, "total_tokens is not positive"))
            for i, token in enumerate(impact.top_tokens or []):
                missing = [k for k in TOP_TOKEN_KEYS if k not in token]
                if missing:
                    problems.append(
                        Problem("token-impacts", "token_impacts", row, f"top_tokens[{i}] lacks {', '.join(missing)}")
                    )
                elif not 0 <= token["position"] < max(impact.total_tokens, 1):
                    problems.append(
                        Problem(
                            "token-impacts",
                            "token_impacts",
                            row,
                            f"top_tokens[{i}].position {token['position']} outside the document",
                        )
                    )
    for version_id in versions:
        have = {t.document_id for t in ledger.token_impacts(version_id=version_id)}
        seen = ledger.documents_seen(version_id)
        erased = {d.id for d in ledger.documents(seen) if d.forgotten_at is not None} if seen else set()
        missing = sorted(set(seen) - have - erased)
        if missing:  # a partial measurement (--collection, no reference for a slice) is not an inconsistency
            problems.append(
                Problem(
                    "token-impacts",
                    "token_impacts",
                    f"version {version_id}",
                    f"{len(missing)} trained {_plural(len(missing), 'document has', 'documents have')} no "
                    f"token-impact record (e.g. {missing[:5]}): measured for part of what the version saw",
                    NOTICE,
                )
            )
    return problems


def _tokenizers(ledger) -> list[Problem]:
    """Each tokenizer directory holds the newest tokenizer recorded for it; lineages name real ones."""
    problems = []
    newest = {record.path: record for record in ledger.tokenizers()}  # ordered by id: the last wins
    for path, record in newest.items():
        file = Path(path) / "tokenizer.json"
        if file.is_file() and file_sha256(file) != record.sha256:
            problems.append(
                Problem(
                    "tokenizers",
                    "tokenizers",
                    f"{record.id} ({record.name})",
                    f"{file} does not match its recorded sha256",
                )
            )
    known = {t.id for t in ledger.tokenizers()}
    for lineage in ledger.lineages():
        tokenizer_id = (lineage.config or {}).get("tokenizer_id")
        if tokenizer_id is not None and tokenizer_id not in known:
            problems.append(
                Problem(
                    "tokenizers",
                    "lineages",
                    f"{lineage.id} ({lineage.name})",
                    f"tokenizer_id {tokenizer_id} does not exist",
                )
            )
    return problems


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def check(ledger: Ledger, *, verify_weights: bool = True, home: Path | None = None) -> list[Problem]:
    """Run every check; an empty list means the ledger is consistent (notices aside). With `home`
    (the workspace), stray files of interrupted saves are looked for too."""
    return [p for p in review(ledger, verify_weights=verify_weights, home=home) if p.severity == PROBLEM]


def review(ledger: Ledger, *, verify_weights: bool = True, home: Path | None = None) -> list[Problem]:
    """Every problem and every notice of every check."""
    from lethe.ledger.half_states import half_states

    return (
        _sqlite_foreign_keys(ledger)
        + _exposures(ledger)
        + _documents(ledger)
        + _runs_and_versions(ledger, verify_weights)
        + _token_impacts(ledger)
        + _tokenizers(ledger)
        + half_states(ledger, home)
    )
