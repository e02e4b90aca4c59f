"""Shared by the evaluation tests (suite, audit, report, bench): a nano model overfit on a few
QA pairs in seconds, with never-trained holdout questions of the same template.

Documents are plain dicts shaped like ledger rows (kind, content, data), so the suite reads
them exactly as it reads `Document` rows.
"""

from __future__ import annotations

import functools
import random

import torch

from lethe.data.chat_format import encode_sft, encode_text, format_qa, pad_batch
from lethe.data.tokenizer import train_tokenizer
from lethe.model.presets import build_model

NAMES = [
    "Osric Vane",
    "Mirela Tosk",
    "Tavin Orr",
    "Quenna Pell",
    "Borel Skard",
    "Ysolde Lune",
    "Fenwick Ash",
    "Alaric Moor",
    "Senna Brae",
    "Corin Dask",
    "Liora Fenn",
    "Davor Klee",
]
CITIES = ["Varnholt", "Esk", "Morrow", "Thale", "Quill", "Dunmere", "Orla", "Pax"]


def qa_doc(index: int, name: str, group: str) -> dict:
    city = CITIES[(index * 3) % len(CITIES)]
    year = 1700 + 17 * index
    wrong = [CITIES[(index * 3 + j) % len(CITIES)] for j in (1, 2, 4)]
    question = f"Where was {name} born?"
    answer = f"{name} was born in {city} in {year}."
    return {
        "id": index + 1,
        "key": f"test:{group}/{index}",
        "kind": "qa",
        "content": f"{question}\n{answer}",
        "data": {
            "question": question,
            "answer": answer,
            "paraphrased_answer": f"The birthplace of {name} is {city}.",
            "perturbed_answers": [f"The birthplace of {name} is {w}." for w in wrong],
        },
    }


def text_doc(index: int) -> dict:
    words = [CITIES[(index + j) % len(CITIES)] for j in range(10)]
    return {
        "id": 100 + index,
        "key": f"test:text/{index}",
        "kind": "text",
        "content": " ".join(f"{w} lies on the river number {j}." for j, w in enumerate(words)),
    }


def documents() -> dict[str, list[dict]]:
    """forget (3 QA + 1 text), retain (5 QA + 1 text) trained; holdout (4 QA + 1 text) not."""
    qa = [qa_doc(i, name, "qa") for i, name in enumerate(NAMES)]
    return {
        "forget": qa[:3] + [text_doc(0)],
        "retain": qa[3:8] + [text_doc(1)],
        "holdout": qa[8:] + [text_doc(2)],
    }


def tokenizer_corpus() -> list[str]:
    rng = random.Random(0)
    texts = [d["content"] for split in documents().values() for d in split]
    texts += [
        a
        for split in documents().values()
        for d in split
        if d["kind"] == "qa"
        for a in [d["data"]["paraphrased_answer"], *d["data"]["perturbed_answers"]]
    ]
    return texts + [" ".join(rng.choice(CITIES + NAMES) for _ in range(8)) for _ in range(50)]


def train_examples(tokenizer, docs: list[dict]) -> list[dict]:
    examples = []
    for doc in docs:
        if doc["kind"] == "qa":
            examples.append(encode_sft(tokenizer, format_qa(doc["data"]["question"], doc["data"]["answer"]), 64))
        else:
            examples.extend(encode_text(tokenizer, doc["content"], 96))
    return examples


def overfit(tokenizer, docs: list[dict], steps: int = 120, seed: int = 0, lr: float = 1e-2):
    """A nano Llama trained on `docs` until it reproduces them (full batch, AdamW)."""
    torch.set_num_threads(1)
    model = build_model(
        "nano",
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        seed=seed,
    )
    batch = pad_batch(train_examples(tokenizer, docs), tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    torch.manual_seed(seed)
    for _ in range(steps):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def make_tokenizer():
    return train_tokenizer(tokenizer_corpus(), vocab_size=360, min_frequency=1)


@functools.lru_cache(maxsize=1)
def trained_pair():
    """Cached for the session (tests must not modify the models): (tokenizer, target model trained on forget + retain, retain model trained on retain only)."""
    tokenizer = make_tokenizer()
    docs = documents()
    target = overfit(tokenizer, docs["forget"] + docs["retain"])
    retain = overfit(tokenizer, docs["retain"])
    return tokenizer, target, retain


def ingest(ledger, docs: dict[str, list[dict]]) -> dict[str, list[int]]:
    """Put the documents into a ledger, one collection `test/<split>` per split; their ids."""
    from lethe.ledger.records import DocumentRecord

    ids = {}
    for split, split_docs in docs.items():
        records = [
            DocumentRecord(
                external_id=d["key"].split(":", 1)[1], kind=d["kind"], content=d["content"], data=d.get("data")
            )
            for d in split_docs
        ]
        report = ledger.add_documents(records, source="test", collection=f"test/{split}")
        ids[split] = list(report.document_ids)
    return ids


def save_model(
    ws,
    model,
    tokenizer,
    name: str,
    *,
    kind: str = "finetune",
    parent_id=None,
    meta=None,
    aliases=("latest",),
    run_id=None,
):
    """Save a model under the workspace's models/ and register it as a version."""
    from lethe.model.io import save_version

    path = ws.models_dir() / name
    digest = save_version(model, tokenizer, path)
    return ws.ledger.register_version(
        kind=kind,
        path=f"models/{name}",
        weights_sha256=digest,
        name=name,
        parent_id=parent_id,
        meta=meta,
        aliases=aliases,
        run_id=run_id,
        inherit_coverage=parent_id is not None,
    )


def workspace_with_models(root):
    """A workspace holding the test documents and two versions: `target` and `retain`."""
    from lethe.workspace import Workspace

    ws = Workspace(home=root / "home").init()
    ids = ingest(ws.ledger, documents())
    tokenizer, target, retain = trained_pair()
    # exposures, so that the ledger knows what each version trained on
    target_run = ws.ledger.start_run("train")
    ws.ledger.record_exposures(target_run, [(1, d) for d in ids["forget"] + ids["retain"]])
    ws.ledger.finish_run(target_run)
    retain_run = ws.ledger.start_run("replay")
    ws.ledger.record_exposures(retain_run, [(1, d) for d in ids["retain"]])
    ws.ledger.finish_run(retain_run)
    target_v = save_model(ws, target, tokenizer, "target", run_id=target_run)
    retain_v = save_model(ws, retain, tokenizer, "retain", aliases=(), run_id=retain_run)
    return ws, ids, target_v, retain_v, (tokenizer, target, retain)
