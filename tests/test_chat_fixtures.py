"""Shared fixtures of the chat and serve tests: a nano model and a tokenizer, built locally.

Imported by `test_chat_*.py` and `test_serve_*.py` (``from test_chat_fixtures import ...``);
nothing is downloaded and the model is random, so tests check mechanics, not prose.
"""

from __future__ import annotations

import random

import pytest
import torch

from lethe.chat import ChatEngine, EngineConfig
from lethe.data.tokenizer import train_tokenizer
from lethe.model.io import save_version
from lethe.model.presets import build_model

torch.set_num_threads(1)

WORDS = [
    "the",
    "author",
    "wrote",
    "a",
    "novel",
    "about",
    "river",
    "stone",
    "light",
    "memory",
    "forget",
    "garden",
    "city",
    "night",
    "letter",
    "archive",
    "quiet",
    "winter",
    "summer",
    "bridge",
    "lantern",
    "harbor",
    "mountain",
    "ledger",
    "version",
]


def corpus(n: int = 300, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14)))
        texts.append(sentence.capitalize() + rng.choice([".", "!", "?", " — é ü 日本."]))
    return texts


def make_model_and_tokenizer(seed: int = 0, context: int = 256):
    tokenizer = train_tokenizer(corpus(), vocab_size=400, min_frequency=2)
    model = build_model(
        "nano",
        len(tokenizer),
        max_position_embeddings=context,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        seed=seed,
    )
    return model.eval(), tokenizer


@pytest.fixture(scope="session")
def nano():
    """(model, tokenizer) of a random nano Llama with lethe's tokenizer."""
    return make_model_and_tokenizer()


@pytest.fixture(scope="session")
def nano_dir(tmp_path_factory, nano):
    """A saved model version directory (HF layout) of the nano model."""
    model, tokenizer = nano
    directory = tmp_path_factory.mktemp("versions") / "v1"
    save_version(model, tokenizer, directory)
    return directory


@pytest.fixture
def engine(nano):
    """A fresh engine over the shared nano model, closed after the test."""
    model, tokenizer = nano
    chat_engine = ChatEngine(model, tokenizer, EngineConfig(max_batch_size=8))
    yield chat_engine
    chat_engine.close()
