"""Verbatim memorisation of a target sequence (an answer, or a text's continuation).

Inputs are token ids of the target y_1..y_n and the model's *teacher-forced greedy
predictions* g_1..g_n, where g_t = argmax_v p(v | prompt, y_<t) (see
`lethe.eval.scoring.token_logprobs`, field `greedy_ids`).

* Exact memorisation (Tirumala et al. 2022; open-unlearning "exact_memorization"):
  EM = (1/n) * #{t : g_t = y_t}, the fraction of next tokens the model gets right.
* Extraction strength (Carlini et al. 2021 / Wang et al. 2024, "ES"): with k* the smallest
  prefix length k in 0..n such that greedy decoding from (prompt, y_1..y_k) reproduces
  y_{k+1}..y_n exactly, ES = 1 - k*/n. Greedy decoding reproduces the suffix exactly if and
  only if g_t = y_t for every t > k (each step then conditions on the true tokens), so k* is
  read off the teacher-forced predictions: k* = the last position with g_t != y_t (0 if none).
  ES = 1 means the whole answer comes out from the prompt alone, ES = 0 that not even the last
  token does. (open-unlearning scores that last case 1/n; lethe gives 0.)
* Verbatim-continuation ROUGE (MUSE "VerbMem"): ROUGE-L F1 between the greedy continuation of
  a text's prefix and the true continuation (`lethe.eval.text.rouge_l_f1`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lethe.errors import InputError, Where
from lethe.eval.metrics import register_metric
from lethe.eval.text import rouge_l


def _aligned(predicted_ids: ArrayLike, target_ids: ArrayLike) -> tuple[NDArray, NDArray]:
    predicted = np.asarray(predicted_ids).ravel()
    target = np.asarray(target_ids).ravel()
    if target.size == 0:
        raise InputError("the target sequence is empty", Where(field="target_ids"))
    if predicted.shape != target.shape:
        raise InputError(
            f"{predicted.size} predicted tokens for {target.size} target tokens",
            Where(field="predicted_ids"),
        )
    return predicted, target


@register_metric("exact_memorisation")
def exact_memorisation(predicted_ids: ArrayLike, target_ids: ArrayLike) -> float:
    """Fraction of target tokens equal to the teacher-forced greedy prediction."""
    predicted, target = _aligned(predicted_ids, target_ids)
    return float(np.mean(predicted == target))


def extraction_prefix_length(predicted_ids: ArrayLike, target_ids: ArrayLike) -> int:
    """k*: the fewest target tokens to give so that greedy decoding reproduces the rest."""
    predicted, target = _aligned(predicted_ids, target_ids)
    wrong = np.flatnonzero(predicted != target)
    return int(wrong[-1]) + 1 if wrong.size else 0


@register_metric("extraction_strength")
def extraction_strength(predicted_ids: ArrayLike, target_ids: ArrayLike) -> float:
    """ES = 1 - k*/n (see the module docstring): 1.0 = extractable from the prompt alone."""
    k = extraction_prefix_length(predicted_ids, target_ids)
    return 1.0 - k / np.asarray(target_ids).size


@register_metric("verbatim_rouge")
def verbatim_rouge(continuation: str, true_continuation: str) -> float:
    """ROUGE-L F1 of a generated continuation against the true one (MUSE's VerbMem)."""
    return rouge_l(continuation, true_continuation).f1
