"""The workspace's tokenizers: trained on ledger documents, saved under `tokenizers/`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lethe.data.tokenizer import load_tokenizer, train_tokenizer
from lethe.errors import InputError, NotFoundError, Where
from lethe.model.io import atomic_directory
from lethe.train.examples import is_trainable


def tokenizer_texts(documents: Sequence[Any]) -> Iterator[str]:
    """The texts a tokenizer should learn from: article text, questions and answers, turns."""
    for doc in documents:
        if not is_trainable(doc):
            continue
        data = doc.data or {}
        if doc.kind == "qa" and data.get("question") and data.get("answer"):
            yield data["question"]
            yield data["answer"]
        elif doc.kind == "chat" and data.get("messages"):
            yield from (m.get("content", "") for m in data["messages"])
        else:
            yield doc.content


def document_ids(ledger: Any, collections: Sequence[str] | None) -> list[int]:
    """The ids of the named collections (in order, without repeats), or of every current document."""
    if not collections:
        return [d.id for d in ledger.list_documents(limit=2**31 - 1)]
    ids: dict[int, None] = {}
    for name in collections:
        ids.update(dict.fromkeys(ledger.collection_ids(name)))
    return list(ids)


def _sha256(path: Path) -> str:
    return hashlib.sha256((path / "tokenizer.json").read_bytes()).hexdigest()


def save_trained_tokenizer(
    workspace: Any,
    documents: Sequence[Any],
    *,
    name: str,
    vocab_size: int = 4096,
    min_frequency: int = 2,
    replaces_id: int | None = None,
    reason: str | None = None,
) -> tuple[Path, Any]:
    """Train a BPE tokenizer on `documents` (erased ones skipped), save it under
    `tokenizers/NAME` atomically and record it with its training documents; (path, record)."""
    used = [d for d in documents if is_trainable(d)]
    if not used:
        raise InputError("no documents to train a tokenizer on (add some with `lethe data add`)")
    tokenizer = train_tokenizer(tokenizer_texts(used), vocab_size, min_frequency)
    path = workspace.path("tokenizers", name)
    with atomic_directory(path) as tmp:
        tokenizer.save_pretrained(tmp)
    record = workspace.ledger.register_tokenizer(
        name=name,
        path=str(path),
        sha256=_sha256(path),
        vocab_size=len(tokenizer),
        settings={"vocab_size": vocab_size, "min_frequency": min_frequency},
        document_ids=[d.id for d in used],
        replaces_id=replaces_id,
        reason=reason,
    )
    return path, record


def train_workspace_tokenizer(
    workspace: Any,
    *,
    collections: Sequence[str] | None = None,
    vocab_size: int = 4096,
    name: str | None = None,
    min_frequency: int = 2,
) -> Path:
    """Train a byte-level BPE tokenizer on ledger documents and save it under `tokenizers/NAME`."""
    ledger = workspace.ledger
    ids = document_ids(ledger, collections)
    if not ids:
        raise InputError("no documents to train a tokenizer on (add some with `lethe data add`)")
    path, _ = save_trained_tokenizer(
        workspace,
        ledger.documents(ids),
        name=name or f"bpe-{vocab_size}",
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        reason=f"collections {', '.join(collections)}" if collections else "every document",
    )
    return path


def find_tokenizer(workspace: Any, ref: str | Path | None) -> Path | None:
    """A tokenizer directory: `ref` as a path or a workspace tokenizer name; else the newest one."""
    if ref is not None:
        path = Path(ref)
        if (path / "tokenizer.json").is_file():
            return path
        named = workspace.path("tokenizers", str(ref))
        if (named / "tokenizer.json").is_file():
            return named
        raise NotFoundError(
            f"no tokenizer {str(ref)!r} (train one with `lethe tokenizer train`)", Where(field="tokenizer")
        )
    found = sorted((workspace.home / "tokenizers").glob("*/tokenizer.json"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


@dataclass(frozen=True)
class ResolvedTokenizer:
    tokenizer: Any
    source: str
    """The directory it was loaded from."""
    record_id: int | None
    """Its ledger record (None: it came with a base model, and its training data is not on record)."""


def resolve_tokenizer(
    workspace: Any, ref: str | Path | None, base: str, documents: Sequence[Any], vocab_size: int = 4096
) -> ResolvedTokenizer:
    """The tokenizer for a new lineage.

    In order: the tokenizer named by `ref`; the one saved with a base model directory; the
    newest workspace tokenizer; else one trained now on the training documents (and saved).
    """
    if ref is None and Path(base).is_dir() and (Path(base) / "tokenizer.json").is_file():
        return ResolvedTokenizer(load_tokenizer(base), str(base), None)
    path = find_tokenizer(workspace, ref)
    if path is None:
        path, record = save_trained_tokenizer(
            workspace, documents, name=f"bpe-{vocab_size}", vocab_size=vocab_size, reason="first train"
        )
        return ResolvedTokenizer(load_tokenizer(path), str(path), record.id)
    record = workspace.ledger.find_tokenizer_record(_sha256(path))
    return ResolvedTokenizer(load_tokenizer(path), str(path), record.id if record else None)


# -- what a tokenizer keeps of forgotten documents -------------------------------------------------


def _used_merges(tokenizer: Any, texts: Iterable[str]) -> set[int]:
    """Ids of the merged (multi-byte) tokens that tokenizing `texts` produces."""
    used: set[int] = set()
    batch: list[str] = []
    backend = tokenizer.backend_tokenizer

    def flush() -> None:
        for encoding in backend.encode_batch(batch, add_special_tokens=False):
            used.update(encoding.ids)
        batch.clear()

    for text in texts:
        batch.append(text)
        if len(batch) >= 512:
            flush()
    flush()
    special = set(tokenizer.all_special_ids)
    tokens = tokenizer.convert_ids_to_tokens(sorted(used))
    return {i for i, token in zip(sorted(used), tokens, strict=True) if i not in special and len(token) > 1}


def tokenizer_leak(
    ledger: Any, tokenizer_id: int | None, forgotten_ids: Sequence[int], tokenizer: Any, *, examples: int = 10
) -> dict[str, Any]:
    """What tokenizer `tokenizer_id` keeps of documents `forgotten_ids` (call before erasing them).

    `saw`: how many of them it was trained on. `exclusive_merges`: vocabulary entries that
    tokenizing the forgotten texts uses and tokenizing every other training text does not,
    i.e. merges that exist because of the forgotten documents (a name, a rare word); `examples`
    shows the longest of them (redacted with the audit's samples once the documents are erased).
    """
    if tokenizer_id is None:
        return {
            "tokenizer": None,
            "saw": None,
            "forgotten": len(forgotten_ids),
            "note": "the tokenizer came with the base model; its training data is not on record",
        }
    record = ledger.tokenizer(tokenizer_id)
    corpus = ledger.tokenizer_document_ids(tokenizer_id)
    forgotten = set(forgotten_ids)
    saw = [d for d in corpus if d in forgotten]
    leak: dict[str, Any] = {
        "tokenizer": record.name,
        "tokenizer_id": record.id,
        "saw": len(saw),
        "forgotten": len(forgotten),
        "exclusive_merges": 0,
        "examples": [],
    }
    if not saw:
        return leak
    documents = ledger.documents(saw)
    gone = sum(not is_trainable(d) for d in documents)
    if gone:  # tokenizer_texts skips them
        leak["note"] = f"{gone} of the documents are erased already; their merges cannot be measured"
    rest = [d for d in corpus if d not in forgotten]
    exclusive = _used_merges(tokenizer, tokenizer_texts(documents)) - _used_merges(
        tokenizer, tokenizer_texts(ledger.documents(rest))
    )
    pieces = sorted(
        (tokenizer.convert_tokens_to_string([t]) for t in tokenizer.convert_ids_to_tokens(sorted(exclusive))),
        key=lambda piece: (-len(piece.strip()), piece),
    )
    leak["exclusive_merges"] = len(exclusive)
    leak["examples"] = pieces[:examples]
    return leak


def retrain_without(
    workspace: Any, tokenizer_id: int, removed_ids: Iterable[int], *, name: str, reason: str | None = None
) -> tuple[Path, Any]:
    """Retrain tokenizer `tokenizer_id` with its settings on its training documents, in the same
    order, minus `removed_ids` and anything erased since; (path, record)."""
    ledger = workspace.ledger
    record = ledger.tokenizer(tokenizer_id)
    removed = set(removed_ids)
    kept = [d for d in ledger.tokenizer_document_ids(tokenizer_id) if d not in removed]
    settings = record.settings or {}
    return save_trained_tokenizer(
        workspace,
        ledger.documents(kept),
        name=name,
        vocab_size=int(settings.get("vocab_size", record.vocab_size)),
        min_frequency=int(settings.get("min_frequency", 2)),
        replaces_id=record.id,
        reason=reason,
    )
