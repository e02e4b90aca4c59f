"""Tokenizer erasure: after a retokenized exact replay, the old vocabulary leaves the workspace.

A BPE vocabulary is a function of its training texts, so a tokenizer trained on a forgotten
document may carry merges of its name (`lethe.train.tokenizers.tokenizer_leak` measures them).
`lethe forget --retokenize` retrains the tokenizer without the documents and replays every
slice into a new lineage. With `--purge`, `purge_old_tokenizer` then finishes the job:

* every version that uses the old tokenizer is tainted (it carries the documents through its
  vocabulary even when its weights never saw them), so `purge_tainted` deletes its weights;
* the old tokenizer's directory (`tokenizers/NAME`) and the old lineages' `spec/` (and any
  resume state) are deleted, unless a version that is still untainted uses that tokenizer.

`tokenizer_status` says, for the receipt, whether the tokenizer that now serves still carries
merges only the forgotten documents used, and which directories with the old one remain.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import update

from lethe.ledger import repository
from lethe.ledger.schema import Checkpoint, ModelVersion, utcnow

if TYPE_CHECKING:
    from lethe.ledger.store import Ledger
    from lethe.workspace import Workspace


def _inside(workspace, path: Path) -> bool:
    return workspace.home.resolve() in path.resolve().parents


def old_tokenizer_users(ledger: Ledger, tokenizer_id: int) -> tuple[list, list]:
    """(lineages whose tokenizer is `tokenizer_id`, their versions)."""
    lineages = [row for row in ledger.lineages() if (row.config or {}).get("tokenizer_id") == tokenizer_id]
    ids = {row.id for row in lineages}
    return lineages, [v for v in ledger.list_versions() if v.lineage_id in ids]


def taint_tokenizer_users(ledger: Ledger, tokenizer_id: int, *, reason: str, keep=()) -> list[ModelVersion]:
    """Taint every untainted version (and its checkpoints) of a lineage that uses `tokenizer_id`."""
    _, versions = old_tokenizer_users(ledger, tokenizer_id)
    targets = [v for v in versions if v.tainted_at is None and v.id not in set(keep)]
    if targets:
        now = utcnow()
        with ledger.transaction() as s:
            ids = [v.id for v in targets]
            s.execute(update(ModelVersion).where(ModelVersion.id.in_(ids)).values(tainted_at=now, taint_reason=reason))
            s.execute(update(Checkpoint).where(Checkpoint.version_id.in_(ids)).values(tainted_at=now))
            repository.record_event(
                s, "versions.tainted", None, None, versions=[v.name for v in targets], reason=reason
            )
    return [ledger.resolve_version(v.id, allow_tainted=True) for v in targets]


def purge_old_tokenizer(workspace: Workspace, tokenizer_id: int) -> list[str]:
    """Delete the old tokenizer's directory and the old lineages' specs and resume states when no
    untainted version uses them; the paths removed (relative to the workspace)."""
    ledger = workspace.ledger
    lineages, versions = old_tokenizer_users(ledger, tokenizer_id)
    if any(v.tainted_at is None for v in versions):
        return []
    record = ledger.tokenizer(tokenizer_id)
    targets = [Path(record.path)]
    for row in lineages:
        root = workspace.path("checkpoints", row.name)
        targets += [root / "spec", root / "resume"]
        tokenizer_dir = (row.config or {}).get("tokenizer")
        if tokenizer_dir:
            targets.append(Path(tokenizer_dir))
    removed = []
    for target in dict.fromkeys(targets):
        if target.exists() and _inside(workspace, target):
            shutil.rmtree(target) if target.is_dir() else target.unlink()
            removed.append(str(target.resolve().relative_to(workspace.home.resolve())))
    for row in lineages:  # an old lineage's directory left empty goes too
        root = workspace.path("checkpoints", row.name)
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
    if removed:
        ledger.record_event("tokenizer.purged", "tokenizer", tokenizer_id, paths=removed)
    return removed


def tokenizer_status(workspace: Workspace, version, leak: dict | None) -> dict:
    """What the receipt says of the tokenizer: does the one serving `version` still carry the
    forgotten documents' merges, and which directories still hold a tokenizer that learned from them."""
    ledger = workspace.ledger
    lineage = ledger.lineage(version.lineage_id) if version is not None and version.lineage_id else None
    current = (lineage.config or {}).get("tokenizer_id") if lineage else None
    retokenized_from = (lineage.config or {}).get("retokenized_from") if lineage else None
    saw = (leak or {}).get("saw")
    exclusive = (leak or {}).get("exclusive_merges") or 0
    status = {
        "tokenizer_id": current,
        "retokenized": bool(retokenized_from),
        "learned_from_forgotten_documents": saw,
        "exclusive_merges": exclusive,
    }
    if saw is None:
        status["statement"] = "the tokenizer came with a base model; its training data is not on record"
    elif not saw:
        status["statement"] = "the tokenizer never learned from the forgotten documents"
    elif exclusive:
        status["statement"] = (
            f"the tokenizer still carries {exclusive} merges that only the forgotten documents use "
            "(forget with --retokenize to remove them)"
        )
    else:
        status["statement"] = (
            f"the tokenizer learned from {saw} of the forgotten documents, but none of its merges is theirs alone"
        )
    return status
