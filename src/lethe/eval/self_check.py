"""Does a freshly trained version answer its own training questions?

A version's final training loss says little to a newcomer (and a LoRA run on a real base ends at
a different loss than a tiny model trained from scratch); whether the model gives back, word for
word, the answers it was trained on says what chatting with it will feel like. The trainer
measures it once per job, on a small seeded sample of the last slice's QA documents, and
`lethe chat` / `lethe serve` read it to warn about an undertrained `latest`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lethe.eval.items import answer_ids, item_from_document, question_prompt_ids, sample, stop_id
from lethe.eval.scoring import greedy_generate_ids, pad_id_of
from lethe.eval.text import exact_match

MAX_ITEMS = 8
MAX_NEW_TOKENS = 48


@dataclass(frozen=True)
class SelfCheck:
    exact_match: float
    items: int

    def to_meta(self) -> dict[str, float | int]:
        return {"own_exact_match": round(self.exact_match, 4), "own_exact_match_items": self.items}


def own_answers_check(
    model: Any, tokenizer: Any, documents: Sequence[Any], max_items: int = MAX_ITEMS, seed: int = 0
) -> SelfCheck | None:
    """Greedy answers to up to `max_items` of `documents`' QA pairs, scored by exact match.

    None when the documents hold no question-answer pair (a text-only corpus has no such test).
    Each reply is cut at a few tokens past the longest reference answer, so the check costs a
    handful of short generations whatever the model's size.
    """
    items = [item for item in map(item_from_document, documents) if item is not None and hasattr(item, "question")]
    items = sample(items, max_items, seed)
    if not items:
        return None
    prompts = [question_prompt_ids(tokenizer, item.question) for item in items]
    longest = max(len(answer_ids(tokenizer, item.answer)) for item in items)
    generated = greedy_generate_ids(
        model, prompts, min(MAX_NEW_TOKENS, longest + 4), pad_id_of(tokenizer), stop_id(tokenizer), len(items)
    )
    replies = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in generated]
    score = sum(exact_match(reply, item.answer) for reply, item in zip(replies, items)) / len(items)
    return SelfCheck(exact_match=score, items=len(items))
