"""Show a document with its most-memorised tokens marked: in the terminal and as HTML."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from lethe.ledger.store import Ledger


def document_tokens(version, document, ledger: Ledger) -> tuple[list[int], object]:
    """The token ids the impact positions index: the document's training examples, concatenated
    exactly as the version's lineage built them."""
    from lethe.data.tokenizer import load_tokenizer
    from lethe.train.config import lineage_config
    from lethe.train.examples import build_examples

    tokenizer = load_tokenizer(version.path)
    ids: list[int] = []
    for example in build_examples([document], tokenizer, lineage_config(ledger, version.lineage_id)):
        ids.extend(example.input_ids)
    return ids, tokenizer


def _marks(record) -> dict[int, float]:
    top = record.top_tokens or []
    peak = max((t["impact"] for t in top), default=1.0) or 1.0
    return {t["position"]: max(0.0, t["impact"]) / peak for t in top}


def render_impact(version, document, record, ledger: Ledger) -> Text:
    ids, tokenizer = document_tokens(version, document, ledger)
    marks = _marks(record)
    text = Text()
    for position, token_id in enumerate(ids):
        piece = tokenizer.decode([token_id])
        strength = marks.get(position)
        if strength is None:
            text.append(piece, style="dim" if token_id in tokenizer.all_special_ids else "")
        else:
            red = 120 + int(135 * strength)
            text.append(piece, style=f"bold white on rgb({red},40,40)")
    return text


def impact_html(version, document, record, ledger: Ledger) -> str:
    """HTML of the document with top-impact tokens highlighted (opacity ~ impact), titled with the value."""
    ids, tokenizer = document_tokens(version, document, ledger)
    marks = _marks(record)
    impacts = {t["position"]: t["impact"] for t in record.top_tokens or []}
    parts = []
    for position, token_id in enumerate(ids):
        if token_id in tokenizer.all_special_ids:
            continue
        piece = html.escape(tokenizer.decode([token_id]))
        if position in marks:
            alpha = 0.25 + 0.75 * marks[position]
            parts.append(
                f'<mark title="impact {impacts[position]:.2f} nats" '
                f'style="background: rgba(220,50,50,{alpha:.2f})">{piece}</mark>'
            )
        else:
            parts.append(piece)
    return '<div class="lethe-impact" style="white-space: pre-wrap">' + "".join(parts) + "</div>"
