"""Documents to training examples, each carrying the id of the document it came from.

Provenance depends on this: an example never loses its `document_id`, however the examples
are later shuffled and batched, so every optimizer step knows exactly which documents it
trained on. A long text document becomes several windows, all with the same id.

How a document kind becomes a chat example is looked up in `SFT_ENCODERS` (filled by
`@sft_encoder("kind")`); every kind can also be read as plain text for pretraining.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lethe.data.chat_format import Encoded, encode_sft, encode_text, format_qa
from lethe.errors import InputError, Where
from lethe.registry import Registry
from lethe.train.config import TrainConfig


@dataclass(frozen=True)
class Example:
    """One training sequence and the document it came from."""

    document_id: int
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    """Same length as `input_ids`; -100 where no loss is taken (HF convention, unshifted)."""

    def __len__(self) -> int:
        return len(self.input_ids)

    def as_encoded(self) -> Encoded:
        return {"input_ids": list(self.input_ids), "labels": list(self.labels)}


SftEncoder = Callable[[Any, Any, TrainConfig], list[Encoded]]
SFT_ENCODERS: Registry[SftEncoder] = Registry("SFT document kind")
"""How each document kind becomes chat examples; the encoders are defined in this module."""


def sft_encoder(kind: str) -> Callable[[SftEncoder], SftEncoder]:
    """Register how documents of `kind` become chat examples with assistant-only labels."""
    return SFT_ENCODERS.register(kind)


def _field(document: Any, name: str) -> Any:
    value = (document.data or {}).get(name)
    if value in (None, ""):
        raise InputError(f"{document.kind} document has no {name!r}", Where(field=f"documents.{document.id}.data"))
    return value


@sft_encoder("qa")
def _encode_qa(document: Any, tokenizer: Any, config: TrainConfig) -> list[Encoded]:
    messages = format_qa(_field(document, "question"), _field(document, "answer"), system=config.system_prompt)
    return [encode_sft(tokenizer, messages, config.seq_len)]


@sft_encoder("chat")
def _encode_chat(document: Any, tokenizer: Any, config: TrainConfig) -> list[Encoded]:
    return [encode_sft(tokenizer, _field(document, "messages"), config.seq_len)]


def _encode_as_text(document: Any, tokenizer: Any, config: TrainConfig) -> list[Encoded]:
    return encode_text(tokenizer, document.content, config.seq_len, stride=config.stride)


def _encoder_for(kind: str, task: str) -> SftEncoder:
    if task == "pretrain" or (task == "auto" and kind not in SFT_ENCODERS):
        return _encode_as_text
    if kind not in SFT_ENCODERS:
        raise InputError(
            f"task 'sft' cannot train on {kind!r} documents (SFT knows {', '.join(SFT_ENCODERS.names())}); "
            "use --task pretrain or --task auto",
            Where(field="task"),
        )
    return SFT_ENCODERS.get(kind)


def is_trainable(document: Any) -> bool:
    """False for erased documents: their content is gone and must never be trained on."""
    return document.forgotten_at is None and document.content is not None


def build_examples(documents: Sequence[Any], tokenizer: Any, config: TrainConfig) -> list[Example]:
    """The examples of `documents` (ledger `Document` rows) in order; erased ones skipped.

    Each document is encoded on its own, so a document's examples do not depend on which
    other documents share the slice: the property exact replay relies on.
    """
    examples: list[Example] = []
    for document in documents:
        if not is_trainable(document):
            continue
        encode = _encoder_for(document.kind, config.task)
        for encoded in encode(document, tokenizer, config):
            examples.append(Example(document.id, tuple(encoded["input_ids"]), tuple(encoded["labels"])))
    return examples
