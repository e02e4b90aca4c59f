"""Text-overlap metrics between a model's answer (the prediction) and the reference answer.

Two tokenisations are used, each matching the benchmark it comes from:

* SQuAD normalisation (`normalize_answer`) for exact match and token precision / recall / F1:
  lowercase, drop ASCII punctuation, drop the articles "a", "an", "the", collapse whitespace,
  split on whitespace (Rajpurkar et al. 2016, the official SQuAD v1.1/v2 evaluation script).
* ROUGE tokenisation (`rouge_tokens`) for ROUGE-1 / ROUGE-L, a re-implementation of the
  `rouge_score` package's default tokenizer with its Porter stemmer (`use_stemmer=True`): TOFU
  scored answers with `rouge_scorer.RougeScorer(['rouge1', 'rougeL'], use_stemmer=True)` and
  reported `.recall`. Lowercase, replace every run of characters outside [a-z0-9] by a space,
  split, Porter-stem (NLTK's `PorterStemmer()`) the tokens longer than 3 characters. The tests
  check these numbers against the values TOFU stored in its published eval logs.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from lethe.eval.metrics import register_metric

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_NON_ALPHANUM = re.compile(r"[^a-z0-9]+")
_VALID_TOKEN = re.compile(r"^[a-z0-9]+$")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, strip punctuation and articles, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_tokens(text: str) -> list[str]:
    """The whitespace tokens of the SQuAD-normalised text."""
    return normalize_answer(text).split()


@register_metric("exact_match")
def exact_match(prediction: str, reference: str) -> float:
    """1.0 if the SQuAD-normalised prediction equals the normalised reference, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def _overlap(prediction: str, reference: str) -> tuple[int, int, int]:
    """(shared tokens counted with multiplicity, prediction tokens, reference tokens)."""
    pred, ref = squad_tokens(prediction), squad_tokens(reference)
    shared = sum((Counter(pred) & Counter(ref)).values())
    return shared, len(pred), len(ref)


def _ratio(shared: int, total: int, other_total: int) -> float:
    # An empty side matches only another empty side (SQuAD v2's convention for no-answer).
    if total == 0 or other_total == 0:
        return float(total == other_total)
    return shared / total


@register_metric("token_precision")
def token_precision(prediction: str, reference: str) -> float:
    """Shared SQuAD tokens (with multiplicity) / prediction tokens; 1.0 if both are empty."""
    shared, n_pred, n_ref = _overlap(prediction, reference)
    return _ratio(shared, n_pred, n_ref)


@register_metric("token_recall")
def token_recall(prediction: str, reference: str) -> float:
    """Shared SQuAD tokens (with multiplicity) / reference tokens; 1.0 if both are empty."""
    shared, n_pred, n_ref = _overlap(prediction, reference)
    return _ratio(shared, n_ref, n_pred)


@register_metric("token_f1")
def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (SQuAD F1); 1.0 if both texts are empty."""
    shared, n_pred, n_ref = _overlap(prediction, reference)
    if n_pred == 0 or n_ref == 0:
        return float(n_pred == n_ref)
    if shared == 0:
        return 0.0
    precision, recall = shared / n_pred, shared / n_ref
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer().stem(word) if len(word) > 3 else word


def rouge_tokens(text: str, stem: bool = True) -> list[str]:
    """Tokens as `rouge_score`'s default tokenizer makes them (with its Porter stemmer if `stem`)."""
    tokens = _NON_ALPHANUM.sub(" ", text.lower()).split()
    if stem:
        tokens = [_stem(token) for token in tokens]
    return [token for token in tokens if _VALID_TOKEN.match(token)]


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence of two sequences (dynamic programming, O(|a||b|))."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for item in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if item == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class RougeScore:
    """Precision (over prediction tokens), recall (over reference tokens) and their F-measure."""

    precision: float
    recall: float
    f1: float

    @classmethod
    def from_counts(cls, matched: int, n_prediction: int, n_reference: int) -> RougeScore:
        """The score of `matched` tokens; all zeros when either side is empty (as rouge_score)."""
        if n_prediction == 0 or n_reference == 0:
            return cls(0.0, 0.0, 0.0)
        precision, recall = matched / n_prediction, matched / n_reference
        f1 = 2 * precision * recall / (precision + recall) if matched else 0.0
        return cls(precision, recall, f1)


def rouge_l(prediction: str, reference: str) -> RougeScore:
    """ROUGE-L: LCS of the ROUGE token sequences, over prediction / reference lengths."""
    pred, ref = rouge_tokens(prediction), rouge_tokens(reference)
    return RougeScore.from_counts(lcs_length(pred, ref), len(pred), len(ref))


def rouge_1(prediction: str, reference: str) -> RougeScore:
    """ROUGE-1: shared unigrams (each counted at most as often as on either side)."""
    pred, ref = rouge_tokens(prediction), rouge_tokens(reference)
    shared = sum((Counter(pred) & Counter(ref)).values())
    return RougeScore.from_counts(shared, len(pred), len(ref))


@register_metric("rouge_l_recall")
def rouge_l_recall(prediction: str, reference: str) -> float:
    """TOFU's ROUGE: LCS(prediction, reference) / len(reference) in stemmed ROUGE tokens."""
    return rouge_l(prediction, reference).recall


@register_metric("rouge_l_f1")
def rouge_l_f1(prediction: str, reference: str) -> float:
    """F-measure of ROUGE-L precision and recall (MUSE's verbatim-memorisation score)."""
    return rouge_l(prediction, reference).f1


@register_metric("rouge1_recall")
def rouge1_recall(prediction: str, reference: str) -> float:
    """Shared stemmed unigrams / reference unigrams (TOFU's `rouge1_recall`)."""
    return rouge_1(prediction, reference).recall
