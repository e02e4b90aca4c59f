"""The workspace's tokenizers: trained on ledger documents, saved under `tokenizers/`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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


def train_workspace_tokenizer(workspace: Any, *, collections: Sequence[str] | None = None, vocab_size: int = 4096,
                              name: str | None = None, min_frequency: int = 2) -> Path:
    """Train a byte-level BPE tokenizer on ledger documents and save it under `tokenizers/NAME`."""
    ledger = workspace.ledger
    ids = document_ids(ledger, collections)
    if not ids:
        raise InputError("no documents to train a tokenizer on (add some with `lethe data add`)")
    documents = ledger.documents(ids)
    tokenizer = train_tokenizer(tokenizer_texts(documents), vocab_size, min_frequency)
    name = name or f"bpe-{vocab_size}"
    path = workspace.path("tokenizers", name)
    with atomic_directory(path) as tmp:
        tokenizer.save_pretrained(tmp)
    ledger.record_event("tokenizer.trained", None, None, name=name, path=str(path), vocab_size=len(tokenizer),
                        collections=list(collections or []), documents=len(documents))
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
        raise NotFoundError(f"no tokenizer {str(ref)!r} (train one with `lethe tokenizer train`)",
                            Where(field="tokenizer"))
    found = sorted((workspace.home / "tokenizers").glob("*/tokenizer.json"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


def resolve_tokenizer(workspace: Any, ref: str | Path | None, base: str, documents: Sequence[Any],
                      vocab_size: int = 4096) -> tuple[Any, str]:
    """(tokenizer, where it came from) for a new lineage.

    In order: the tokenizer named by `ref`; the one saved with a base model directory; the
    newest workspace tokenizer; else one trained now on the training documents (and saved).
    """
    if ref is None and Path(base).is_dir() and (Path(base) / "tokenizer.json").is_file():
        return load_tokenizer(base), str(base)
    path = find_tokenizer(workspace, ref)
    if path is None:
        tokenizer = train_tokenizer(tokenizer_texts(documents), vocab_size)
        path = workspace.path("tokenizers", f"bpe-{vocab_size}")
        with atomic_directory(path) as tmp:
            tokenizer.save_pretrained(tmp)
        workspace.ledger.record_event("tokenizer.trained", None, None, name=path.name, path=str(path),
                                      vocab_size=len(tokenizer), documents=len(documents), reason="first train")
    return load_tokenizer(path), str(path)
