"""Text metrics: SQuAD exact match / token F1 and ROUGE, on hand-computed cases."""

from __future__ import annotations

import pytest

from lethe.eval.text import (
    exact_match,
    lcs_length,
    normalize_answer,
    rouge1_recall,
    rouge_l,
    rouge_l_f1,
    rouge_l_recall,
    rouge_tokens,
    token_f1,
    token_precision,
    token_recall,
)

PAIRS = [
    ("the cat sat on the mat", "a cat on a hat"),
    ("Paris is the capital of France.", "The capital of France is Paris"),
    ("cat cat cat", "cat"),
    ("", "something"),
    ("one two three", "four five"),
]


def test_squad_normalisation() -> None:
    assert normalize_answer("  The Cat,  sat!  ") == "cat sat"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theory") == "theory"  # articles only as whole words


def test_exact_match() -> None:
    assert exact_match("The cat.", "cat") == 1.0
    assert exact_match("cat", "dog") == 0.0
    assert exact_match("the black cat", "black cat!") == 1.0


def test_token_precision_recall_f1_by_hand() -> None:
    # prediction tokens: cat sat on mat; reference tokens: cat on hat; shared: cat, on
    prediction, reference = PAIRS[0]
    assert token_precision(prediction, reference) == pytest.approx(2 / 4)
    assert token_recall(prediction, reference) == pytest.approx(2 / 3)
    assert token_f1(prediction, reference) == pytest.approx(4 / 7)


def test_token_overlap_counts_multiplicity_once_per_match() -> None:
    assert token_precision("cat cat cat", "cat") == pytest.approx(1 / 3)
    assert token_recall("cat cat cat", "cat") == 1.0
    assert token_f1("cat cat cat", "cat") == pytest.approx(0.5)


def test_empty_answers() -> None:
    for metric in (token_precision, token_recall, token_f1):
        assert metric("", "") == 1.0
        assert metric("", "cat") == 0.0
        assert metric("the", "cat") == 0.0  # "the" normalises to nothing


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_f1_is_symmetric_and_precision_mirrors_recall(a: str, b: str) -> None:
    assert token_f1(a, b) == pytest.approx(token_f1(b, a))
    assert token_precision(a, b) == pytest.approx(token_recall(b, a))
    assert 0.0 <= token_f1(a, b) <= 1.0


def test_rouge_tokens_match_rouge_score_tokenizer() -> None:
    # lowercase, non-alphanumerics become spaces, Porter stem for tokens longer than 3
    assert rouge_tokens("Running quickly, the runner's dogs!") == [
        "run",
        "quickli",
        "the",
        "runner",
        "s",
        "dog",
    ]
    assert rouge_tokens("Running dogs", stem=False) == ["running", "dogs"]
    assert rouge_tokens("ÉTÉ 2024 — ok") == ["t", "2024", "ok"]  # non-ASCII letters are dropped


def test_lcs_length() -> None:
    assert lcs_length("ABCBDAB", "BDCABA") == 4
    assert lcs_length([], [1, 2]) == 0
    assert lcs_length([1, 2, 3], [1, 2, 3]) == 3
    assert lcs_length([1, 2, 3], [3, 2, 1]) == 1


def test_rouge_l_by_hand() -> None:
    score = rouge_l("the cat sat", "the black cat sat down")
    assert score.recall == pytest.approx(3 / 5)
    assert score.precision == 1.0
    assert score.f1 == pytest.approx(0.75)
    assert rouge_l_recall("the cat sat", "the black cat sat down") == pytest.approx(0.6)
    assert rouge_l_f1("the cat sat", "the black cat sat down") == pytest.approx(0.75)


def test_rouge_l_is_order_sensitive_rouge1_is_not() -> None:
    assert rouge_l_recall("sat cat the", "the cat sat") == pytest.approx(1 / 3)
    assert rouge1_recall("sat cat the", "the cat sat") == 1.0
    assert rouge1_recall("the the the", "the cat") == pytest.approx(1 / 2)


def test_rouge_stems_before_matching_and_empty_is_zero() -> None:
    assert rouge_l_recall("The dogs were running", "dog runs") == 1.0
    assert rouge_l_recall("", "cat") == 0.0
    assert rouge_l_recall("cat", "") == 0.0
    assert rouge1_recall("!!!", "cat") == 0.0
