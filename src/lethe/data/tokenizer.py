"""Byte-level BPE tokenizer trained on the corpus, with lethe's chat template.

The template marks each assistant turn with ``{% generation %}`` so that
``tokenizer.apply_chat_template(..., return_dict=True, return_assistant_tokens_mask=True)``
returns the loss mask (assistant content and its closing ``<|end|>``). Nothing is
downloaded: the tokenizer is built from the texts given and saved with `save_pretrained`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from lethe.errors import InputError, Where


@dataclass(frozen=True)
class SpecialTokens:
    """The special tokens every lethe tokenizer has, at ids 0..6 in this order."""

    bos: str = "<|bos|>"
    """Start of a document or conversation."""
    eos: str = "<|eos|>"
    """End of a pretraining document."""
    pad: str = "<|pad|>"
    """Padding; never attended to and never a label."""
    system: str = "<|system|>"
    """Opens a system turn."""
    user: str = "<|user|>"
    """Opens a user turn."""
    assistant: str = "<|assistant|>"
    """Opens an assistant turn; the generation prompt."""
    end: str = "<|end|>"
    """Closes any turn; generation of a reply stops here."""

    def all(self) -> list[str]:
        return [self.bos, self.eos, self.pad, self.system, self.user, self.assistant, self.end]


SPECIAL = SpecialTokens()

# Roles map to their opening token; `generation` covers what the model must learn to emit.
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '" + SPECIAL.assistant + "' -}}"
    "{% generation %}{{- message['content'] + '" + SPECIAL.end + "' -}}{% endgeneration %}"
    "{%- elif message['role'] in ['system', 'user'] -%}"
    "{{- '<|' + message['role'] + '|>' + message['content'] + '" + SPECIAL.end + "' -}}"
    "{%- else -%}"
    "{{- raise_exception('unknown chat role: ' + message['role']) -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '" + SPECIAL.assistant + "' -}}{%- endif -%}"
)


@dataclass(frozen=True)
class TokenizerConfig:
    """How to train the corpus tokenizer."""

    vocab_size: int = 4096
    """Final vocabulary size, special tokens and the 256 byte tokens included."""
    min_frequency: int = 2
    """A merge must occur at least this often in the corpus to be learned."""
    model_max_length: int = 2048
    """Longest sequence the tokenizer reports as allowed (matches the largest preset)."""


def _non_empty(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        if text:
            yield text


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 4096,
    min_frequency: int = 2,
    *,
    model_max_length: int = 2048,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `texts`, with lethe's special tokens and template.

    Any byte sequence can be encoded (no unknown token). Deterministic for the same texts
    in the same order.
    """
    minimum = len(SPECIAL.all()) + 256
    if vocab_size < minimum:
        raise InputError(
            f"vocab_size {vocab_size} is too small: the special tokens and the 256 byte tokens alone need {minimum}",
            Where(field="vocab_size"),
        )
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    # trim_offsets=False keeps character offsets exact, which the assistant mask relies on.
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL.all(),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_non_empty(texts), trainer=trainer)
    if backend.get_vocab_size() <= minimum:
        raise InputError("no text to train the tokenizer on", Where(field="texts"))
    return wrap_tokenizer(backend, model_max_length=model_max_length)


def wrap_tokenizer(backend: Tokenizer, *, model_max_length: int = 2048) -> PreTrainedTokenizerFast:
    """A `tokenizers.Tokenizer` holding lethe's special tokens, as a transformers tokenizer."""
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=SPECIAL.bos,
        eos_token=SPECIAL.eos,
        pad_token=SPECIAL.pad,
        extra_special_tokens=[SPECIAL.system, SPECIAL.user, SPECIAL.assistant, SPECIAL.end],
        model_max_length=model_max_length,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def end_of_turn_id(tokenizer: PreTrainedTokenizerFast) -> int:
    """The id of ``<|end|>``, where a generated reply stops."""
    token_id = tokenizer.convert_tokens_to_ids(SPECIAL.end)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise InputError(f"this tokenizer has no {SPECIAL.end} token; train it with lethe")
    return token_id


def stop_token_ids(tokenizer: PreTrainedTokenizerFast) -> list[int]:
    """Token ids that end generation: end of turn, then end of document."""
    return [end_of_turn_id(tokenizer), tokenizer.eos_token_id]


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """A tokenizer saved with `save_pretrained`, read offline."""
    path = Path(directory)
    if not (path / "tokenizer.json").is_file():
        raise InputError("no tokenizer.json in this directory", Where(path=path))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)
