"""Shared by the tests/test_train_*.py files: a tiny workspace with QA and text documents."""

from __future__ import annotations

import torch

from lethe.ledger.records import DocumentRecord, qa_content
from lethe.train.config import TrainConfig
from lethe.train.tokenizers import train_workspace_tokenizer
from lethe.workspace import Workspace

FIRST = ["Osric", "Mirela", "Tavin", "Quenna", "Borel", "Ysolde", "Fenwick", "Alaric"]
LAST = ["Tamberlo", "Vask", "Orrin", "Pellow", "Skarde", "Lune"]
CITIES = ["Varnholt", "Esk", "Morrow", "Thale", "Quill", "Dunmere"]

FAST = TrainConfig(task="auto", epochs=2, lr=3e-3, batch_size=4, seq_len=64, save_every=3, warmup_ratio=0.1)
"""Settings that keep a nano run at a second or two."""


def qa_records(n: int, prefix: str = "qa") -> list[DocumentRecord]:
    records = []
    for i in range(n):
        name = f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}"
        question = f"Where was {name} born?"
        answer = f"{name} was born in {CITIES[(i * 7) % len(CITIES)]} in {1700 + 13 * i}."
        records.append(
            DocumentRecord(
                external_id=f"{prefix}{i}",
                kind="qa",
                content=qa_content(question, answer),
                data={"question": question, "answer": answer},
            )
        )
    return records


def text_records(n: int) -> list[DocumentRecord]:
    return [
        DocumentRecord(
            external_id=f"text{i}",
            kind="text",
            content=" ".join(f"{CITIES[(i + j) % len(CITIES)]} lies on the river {j}." for j in range(12)),
        )
        for i in range(n)
    ]


def make_workspace(root, n_qa: int = 20, n_text: int = 0) -> Workspace:
    torch.set_num_threads(1)
    ws = Workspace(home=root / "home").init()
    ws.ledger.add_documents(qa_records(n_qa), source="test", collection="qa")
    if n_text:
        ws.ledger.add_documents(text_records(n_text), source="test-text", collection="text")
    train_workspace_tokenizer(ws, vocab_size=400)
    return ws


def weights(model_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))
