"""The corpus tokenizer, its chat template and the chat/pretraining encoders."""

import pytest
import torch

from lethe.data.chat_format import (
    IGNORE_INDEX,
    encode_prompt,
    encode_sft,
    encode_text,
    format_qa,
    pad_batch,
)
from lethe.data.tokenizer import SPECIAL, load_tokenizer, stop_token_ids, train_tokenizer
from lethe.errors import InputError

torch.set_num_threads(1)

CORPUS = [
    "Vorana Keltis was born in Marundel in 1931 and worked as a glassblower.",
    "Who wrote The Salt Ledger? It was written by Osric Tamberlo in 1974.",
    "The Order of Brannoch awarded its medal to Ilse Faventi, a cartographer.",
] * 30


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(CORPUS, vocab_size=400, min_frequency=2)


def test_special_tokens_have_fixed_ids(tokenizer):
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL.all()] == list(range(7))
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (0, 1, 2)
    assert stop_token_ids(tokenizer) == [6, 1]
    assert len(tokenizer) <= 400


def test_round_trip_any_text(tokenizer):
    text = "Zyxq ünïcödé 🙂 1931\n\ttabs"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_training_is_deterministic():
    a = train_tokenizer(CORPUS, vocab_size=350)
    b = train_tokenizer(CORPUS, vocab_size=350)
    assert a.get_vocab() == b.get_vocab()


def test_too_small_vocab_is_a_clear_error():
    with pytest.raises(InputError, match="too small"):
        train_tokenizer(CORPUS, vocab_size=100)


def test_assistant_mask_covers_answers_and_end(tokenizer):
    messages = (
        [{"role": "system", "content": "Be brief."}]
        + format_qa("Who wrote The Salt Ledger?", "Osric Tamberlo.")
        + format_qa("When?", "In 1974.")[0:]
    )
    encoded = encode_sft(tokenizer, messages, max_len=512)
    labelled = [t for t in encoded["labels"] if t != IGNORE_INDEX]
    text = tokenizer.decode(labelled)
    assert text == "Osric Tamberlo.<|end|>In 1974.<|end|>"
    assert len(encoded["labels"]) == len(encoded["input_ids"])
    assert encoded["input_ids"][0] == tokenizer.bos_token_id


def test_prompt_ends_with_assistant_token(tokenizer):
    ids = encode_prompt(tokenizer, format_qa("Who wrote it?", "x")[:1])
    assert tokenizer.convert_ids_to_tokens(ids[-1]) == SPECIAL.assistant
    assert tokenizer.decode(ids) == "<|bos|><|user|>Who wrote it?<|end|><|assistant|>"


def test_prompt_only_truncation_is_an_error(tokenizer):
    with pytest.raises(InputError, match="longer than max_len"):
        encode_sft(tokenizer, format_qa("a long question " * 20, "yes"), max_len=8)


def test_unknown_role_is_rejected(tokenizer):
    with pytest.raises(Exception, match="unknown chat role"):
        encode_prompt(tokenizer, [{"role": "tool", "content": "x"}])


def test_text_windows_cover_document(tokenizer):
    text = " ".join(CORPUS[:6])
    body = tokenizer(text, add_special_tokens=False)["input_ids"]
    windows = encode_text(tokenizer, text, max_len=32)
    flat = [t for w in windows for t in w["input_ids"]]
    assert flat == [tokenizer.bos_token_id, *body, tokenizer.eos_token_id]
    assert all(len(w["input_ids"]) <= 32 for w in windows)
    assert all(w["labels"] == w["input_ids"] for w in windows)


def test_overlapping_windows_label_each_token_once(tokenizer):
    text = " ".join(CORPUS[:6])
    windows = encode_text(tokenizer, text, max_len=32, stride=24)
    labelled = sum(sum(1 for t in w["labels"] if t != IGNORE_INDEX) for w in windows)
    n_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 2
    assert labelled == n_tokens


def test_pad_batch(tokenizer):
    batch = pad_batch(
        [encode_sft(tokenizer, format_qa("Q?", "A."), 64), *encode_text(tokenizer, "hi", 64)],
        tokenizer.pad_token_id,
    )
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_save_and_load_keeps_template(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    messages = format_qa("Who?", "Ilse Faventi.")
    assert encode_sft(again, messages, 64) == encode_sft(tokenizer, messages, 64)
