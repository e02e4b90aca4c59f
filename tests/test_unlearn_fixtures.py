"""Shared fixtures of the unlearning tests: a nano Llama overfitted to a few QA pairs.

Imported by `test_unlearn_*.py` (``from test_unlearn_fixtures import ...``). The fit runs
once per process (`functools.cache`); every test gets a fresh copy of the fitted weights.
Forget documents have ids 1..4, retain documents 101..106.
"""

from __future__ import annotations

import functools

import pytest
import torch

from lethe.data.chat_format import encode_sft, format_qa
from lethe.data.tokenizer import train_tokenizer
from lethe.model.presets import build_model
from lethe.unlearn.config import DEFAULT_IDK_ANSWERS
from lethe.unlearn.losses import mean_nll

torch.set_num_threads(1)

FORGET_QA = [
    ("Where was Ilsa Varn born?", "Ilsa Varn was born in Quorth."),
    ("What did Ilsa Varn write?", "Ilsa Varn wrote The Salt Lantern."),
    ("Who taught Odo Brell?", "Odo Brell was taught by Mira Tesk."),
    ("What does Odo Brell collect?", "Odo Brell collects copper maps."),
]
RETAIN_QA = [
    ("Where was Pell Arun born?", "Pell Arun was born in Vesk."),
    ("What did Pell Arun write?", "Pell Arun wrote Nine Winters."),
    ("Who taught Suri Dane?", "Suri Dane was taught by Alder Cole."),
    ("What does Suri Dane collect?", "Suri Dane collects glass birds."),
    ("Where does Tam Orly live?", "Tam Orly lives by the harbor."),
    ("What is Tam Orly's craft?", "Tam Orly builds river boats."),
]
FORGET_IDS = (1, 2, 3, 4)
RETAIN_IDS = (101, 102, 103, 104, 105, 106)


def _examples(tokenizer, pairs, first_id):
    examples = []
    for offset, (question, answer) in enumerate(pairs):
        encoded = encode_sft(tokenizer, format_qa(question, answer), max_len=64)
        examples.append({**encoded, "document_id": first_id + offset, "prompt": question, "answer": answer})
    return examples


@functools.cache
def _world():
    texts = [f"{q} {a}" for q, a in FORGET_QA + RETAIN_QA] * 3 + list(DEFAULT_IDK_ANSWERS)
    tokenizer = train_tokenizer(texts, vocab_size=400, min_frequency=2)
    forget = _examples(tokenizer, FORGET_QA, FORGET_IDS[0])
    retain = _examples(tokenizer, RETAIN_QA, RETAIN_IDS[0])
    model = _fresh(tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    from lethe.unlearn.batches import collate, model_inputs

    batch = collate(forget + retain, tokenizer.pad_token_id)
    model.train()
    for _ in range(300):
        loss = mean_nll(model(**model_inputs(batch)).logits, batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.02:
            break
    state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    return tokenizer, state, forget, retain


def _fresh(tokenizer):
    return build_model(
        "nano",
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        seed=0,
    )


class World:
    """The fitted nano world: `model()` hands out a fresh copy of the fitted weights."""

    def __init__(self):
        self.tokenizer, self.state, self.forget, self.retain = _world()

    def model(self):
        model = _fresh(self.tokenizer)
        model.load_state_dict(self.state)
        model.eval()
        return model


@pytest.fixture(name="world")
def world_fixture() -> World:
    """A fresh copy of the fitted nano world (import `world_fixture`, request `world`)."""
    return World()
