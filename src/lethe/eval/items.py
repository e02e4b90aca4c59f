"""What the evaluation suite scores: QA items and text items, read from ledger documents.

A QA document (`kind == "qa"`) carries `data.question` and `data.answer`, and optionally
`paraphrased_answer`, `perturbed_answers` (wrong answers, for the truth ratio) and `options`
(multiple choice). Any other document with content is a text item (an article: prefix and
continuation). Erased documents (content gone) are skipped and counted, never guessed at.

Prompts are built the way training builds them (`lethe.data.chat_format`): the question as a
user turn after an optional system turn, ending with the assistant's opening token, so the
answer tokens are scored exactly where the model learned to produce them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class QAItem:
    """One question with its answer and the variants TOFU scores."""

    question: str
    answer: str
    paraphrased_answer: str | None = None
    perturbed_answers: tuple[str, ...] = ()
    document_id: int | None = None
    key: str | None = None
    """A stable name for tables and audits (the document key or external id)."""


@dataclass(frozen=True)
class TextItem:
    """One text document: memorisation is measured on the continuation of its prefix."""

    text: str
    document_id: int | None = None
    key: str | None = None


@dataclass
class SplitItems:
    """The items of one split, and how many documents could not be evaluated."""

    qa: list[QAItem] = field(default_factory=list)
    text: list[TextItem] = field(default_factory=list)
    erased: int = 0
    """Documents whose content was erased (forgotten): nothing left to score."""
    total_qa: int = 0
    total_text: int = 0
    """Items before sampling."""


def _get(document: Any, name: str, default: Any = None) -> Any:
    if isinstance(document, dict):
        return document.get(name, default)
    return getattr(document, name, default)


def item_from_document(document: Any) -> QAItem | TextItem | None:
    """The item of a ledger `Document` row or a plain dict; None when its content is erased."""
    data = _get(document, "data") or {}
    content = _get(document, "content")
    if content is None or _get(document, "forgotten_at") is not None:
        return None
    doc_id = _get(document, "id")
    key = _get(document, "key") or _get(document, "external_id")
    if _get(document, "kind") == "qa" and data.get("question") and data.get("answer"):
        perturbed = data.get("perturbed_answers") or ()
        if isinstance(perturbed, str):
            perturbed = (perturbed,)
        return QAItem(
            question=str(data["question"]),
            answer=str(data["answer"]),
            paraphrased_answer=data.get("paraphrased_answer") or None,
            perturbed_answers=tuple(str(p) for p in perturbed if p),
            document_id=doc_id,
            key=key,
        )
    if not content.strip():
        return None
    return TextItem(text=content, document_id=doc_id, key=key)


def sample(items: Sequence[T], max_items: int | None, seed: int) -> list[T]:
    """At most `max_items` of `items`, a seeded sample kept in the original order."""
    if max_items is None or len(items) <= max_items:
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), max_items))
    return [items[i] for i in chosen]


def split_items(documents: Iterable[Any], max_items: int | None = None, seed: int = 0) -> SplitItems:
    """The QA and text items of documents, each kind sampled to at most `max_items`."""
    result = SplitItems()
    qa: list[QAItem] = []
    text: list[TextItem] = []
    for document in documents:
        item = item_from_document(document)
        if item is None:
            result.erased += 1
        elif isinstance(item, QAItem):
            qa.append(item)
        else:
            text.append(item)
    result.total_qa, result.total_text = len(qa), len(text)
    result.qa = sample(qa, max_items, seed)
    result.text = sample(text, max_items, seed)
    return result


def question_prompt_ids(tokenizer: Any, question: str, system: str | None = None) -> list[int]:
    """Token ids of the prompt that precedes an answer: the chat turn(s) up to the assistant.

    A tokenizer without a chat template (a plain HF model) gets the bare question with its
    special tokens.
    """
    if getattr(tokenizer, "chat_template", None):
        from lethe.data.chat_format import encode_prompt

        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": question})
        return encode_prompt(tokenizer, messages)
    return list(tokenizer(question, add_special_tokens=True)["input_ids"])


def answer_ids(tokenizer: Any, answer: str, *, end: bool = False) -> list[int]:
    """Token ids of an answer as it follows the prompt (no special tokens); with `end`, the
    token that closes the answer (`stop_id`: end of turn, else EOS) is appended, as TOFU's and
    open-unlearning's labels include it and as lethe trains answers."""
    ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    closing = stop_id(tokenizer) if end else None
    return ids + [closing] if closing is not None else ids


def stop_id(tokenizer: Any) -> int | None:
    """Where a greedy answer ends: the end-of-turn token if the tokenizer has one, else EOS."""
    if getattr(tokenizer, "chat_template", None):
        from lethe.data.tokenizer import SPECIAL

        end = tokenizer.convert_tokens_to_ids(SPECIAL.end)
        if end is not None and end != tokenizer.unk_token_id:
            return int(end)
    eos = tokenizer.eos_token_id
    return None if eos is None else int(eos)
