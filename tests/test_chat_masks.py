"""Assistant masks from chat templates without a {% generation %} block (real chat models)."""

import pytest

from lethe.data.chat_format import IGNORE_INDEX, assistant_spans, encode_sft, format_qa, has_generation_markers
from lethe.data.tokenizer import train_tokenizer
from lethe.errors import InputError

CORPUS = ["Vorana Keltis was born in Marundel in 1931.", "Who wrote The Salt Ledger? Osric Tamberlo."] * 30

# ChatML as SmolLM2-Instruct ships it: a default system turn, no generation markers.
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CONVERSATION = [
    *format_qa("Who wrote The Salt Ledger?", "Osric Tamberlo."),
    *format_qa("When was Vorana Keltis born?", "In 1931."),
]


@pytest.fixture(scope="module")
def lethe_tokenizer():
    return train_tokenizer(CORPUS, vocab_size=400, min_frequency=2)


@pytest.fixture
def chatml_tokenizer():
    tokenizer = train_tokenizer(CORPUS, vocab_size=400, min_frequency=2)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHATML
    return tokenizer


def _labelled_text(tokenizer, encoded) -> str:
    return tokenizer.decode([t for t in encoded["labels"] if t != IGNORE_INDEX])


def test_rendering_finds_the_same_tokens_as_the_generation_block(lethe_tokenizer):
    marked = encode_sft(lethe_tokenizer, CONVERSATION, max_len=512)
    plain = train_tokenizer(CORPUS, vocab_size=400, min_frequency=2)
    plain.chat_template = lethe_tokenizer.chat_template.replace("{% generation %}", "").replace(
        "{% endgeneration %}", ""
    )
    assert has_generation_markers(lethe_tokenizer) and not has_generation_markers(plain)
    assert encode_sft(plain, CONVERSATION, max_len=512) == marked


def test_chatml_labels_each_reply_and_its_end_of_turn(chatml_tokenizer):
    encoded = encode_sft(chatml_tokenizer, CONVERSATION, max_len=512)
    assert _labelled_text(chatml_tokenizer, encoded) == "Osric Tamberlo.<|im_end|>In 1931.<|im_end|>"
    text, spans = assistant_spans(chatml_tokenizer, CONVERSATION)
    assert [text[a:b] for a, b in spans] == ["Osric Tamberlo.<|im_end|>", "In 1931.<|im_end|>"]
    assert text.startswith("<|im_start|>system\n")  # the template's default system turn stays unlabelled


def test_truncation_keeps_the_mask_aligned(chatml_tokenizer):
    full = encode_sft(chatml_tokenizer, CONVERSATION, max_len=512)
    cut = encode_sft(chatml_tokenizer, CONVERSATION, max_len=len(full["input_ids"]) - 8)
    assert cut["labels"] == full["labels"][: len(cut["labels"])]


def test_a_template_that_rewrites_history_is_refused(chatml_tokenizer):
    # A template that renders the last message differently breaks the prefix property.
    chatml_tokenizer.chat_template = (
        "{% for m in messages %}{{ m['content'] }}{% if loop.last %}!{% endif %}{% endfor %}"
    )
    with pytest.raises(InputError, match="prefix"):
        encode_sft(chatml_tokenizer, CONVERSATION, max_len=512)


def test_no_template_is_a_clear_error(chatml_tokenizer):
    chatml_tokenizer.chat_template = None
    with pytest.raises(InputError, match="no chat template"):
        encode_sft(chatml_tokenizer, CONVERSATION, max_len=512)
