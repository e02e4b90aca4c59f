"""Exact memorisation, extraction strength and verbatim ROUGE on hand-made token sequences."""

from __future__ import annotations

import pytest

from lethe.errors import InputError
from lethe.eval.memorisation import (
    exact_memorisation,
    extraction_prefix_length,
    extraction_strength,
    verbatim_rouge,
)


def test_exact_memorisation() -> None:
    assert exact_memorisation([1, 2, 3, 4], [1, 2, 9, 4]) == pytest.approx(0.75)
    assert exact_memorisation([1, 2], [1, 2]) == 1.0
    assert exact_memorisation([5, 6], [1, 2]) == 0.0


def test_extraction_strength() -> None:
    assert extraction_strength([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0  # prompt alone suffices
    assert extraction_strength([1, 2, 3, 0], [1, 2, 3, 4]) == 0.0  # not even the last token
    # wrong at position 2 (1-based): give 2 tokens, greedy reproduces the last 2
    assert extraction_prefix_length([1, 0, 3, 4], [1, 2, 3, 4]) == 2
    assert extraction_strength([1, 0, 3, 4], [1, 2, 3, 4]) == pytest.approx(0.5)
    # an early mistake costs more than exact memorisation shows
    assert extraction_strength([0, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(0.75)
    assert exact_memorisation([1, 2, 0, 4], [1, 2, 3, 4]) == pytest.approx(0.75)
    assert extraction_strength([1, 2, 0, 4], [1, 2, 3, 4]) == pytest.approx(0.25)


def test_bad_inputs() -> None:
    with pytest.raises(InputError):
        exact_memorisation([1, 2], [1, 2, 3])
    with pytest.raises(InputError):
        extraction_strength([], [])


def test_verbatim_rouge() -> None:
    assert verbatim_rouge("It was a dark and stormy night", "it was a dark and stormy night") == 1.0
    assert verbatim_rouge("nothing alike here", "completely different words") == 0.0
    # LCS 3 of 4 generated and 6 true tokens: F1 = 2 * 0.75 * 0.5 / 1.25
    assert verbatim_rouge("was dark and x", "it was dark and stormy night") == pytest.approx(0.6)
