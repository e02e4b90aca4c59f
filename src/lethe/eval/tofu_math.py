"""TOFU's unlearning statistics (Maini et al. 2024), computed from per-item losses.

All inputs are *average per-token negative log-likelihoods* of an answer given its question
(TOFU's `avg_gt_loss`, `avg_paraphrased_loss`, `average_perturb_loss`), so exp(-loss) is the
length-normalised answer probability P(a|q)^(1/|a|). The formulas follow locuslab/tofu
`aggregate_eval_stat.py` exactly:

* truth ratio of one item: R = exp(loss(paraphrased) - mean_j loss(perturbed_j))
  = [prod_j P(perturbed_j)^(1/|a_j|)]^(1/k) / P(paraphrased)^(1/|a|); below 1 means the model
  prefers the paraphrased true answer. (TOFU's aggregate script works with 1/R; its stored
  `truth_ratio` field is R.)
* truth-ratio statistic on retain / real authors / world facts: mean(max(0, 1 - R));
  on the forget set (reported, not part of utility): mean(min(R, 1/R)).
* probability: mean(exp(-loss(answer))) on TOFU's own splits (retain, forget); on real authors
  and world facts the answer probability normalised over the options,
  mean(p_answer / (p_answer + sum_j p_perturbed_j)).
* forget quality: p-value of the two-sample Kolmogorov–Smirnov test (scipy `ks_2samp`,
  default two-sided, exact/asymptotic chosen by scipy) between the forget-set truth ratios of
  the evaluated model and those of the model retrained without the forget set.
* model utility: harmonic mean of probability, ROUGE-L recall and truth-ratio statistic on
  retain, real authors and world facts (9 numbers).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lethe.errors import InputError, Where
from lethe.eval.metrics import register_metric


def _losses(values: ArrayLike, name: str, ndim: int) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim or array.shape[0] == 0:
        raise InputError(
            f"expected a non-empty {ndim}-d array of per-item losses, got shape {array.shape}",
            Where(field=name),
        )
    if not np.all(np.isfinite(array)):
        raise InputError("losses must be finite numbers", Where(field=name))
    return array


@register_metric("truth_ratio")
def truth_ratio(paraphrased_loss: ArrayLike, perturbed_losses: ArrayLike) -> NDArray[np.float64]:
    """Per-item truth ratio R = exp(paraphrased_loss[i] - mean_j perturbed_losses[i, j]).

    `paraphrased_loss` has shape (n,), `perturbed_losses` shape (n, k): average per-token NLLs
    of the paraphrased answer and of the k perturbed (wrong) answers of each item.
    """
    paraphrased = _losses(paraphrased_loss, "paraphrased_loss", 1)
    perturbed = _losses(perturbed_losses, "perturbed_losses", 2)
    if perturbed.shape[0] != paraphrased.shape[0]:
        raise InputError(
            f"{paraphrased.shape[0]} paraphrased losses but {perturbed.shape[0]} rows of perturbed losses",
            Where(field="perturbed_losses"),
        )
    return np.exp(paraphrased - perturbed.mean(axis=1))


@register_metric("truth_ratio_stat")
def truth_ratio_stat(ratios: ArrayLike) -> float:
    """TOFU's utility statistic on retain / real authors / world facts: mean(max(0, 1 - R))."""
    r = _losses(ratios, "ratios", 1)
    return float(np.mean(np.maximum(0.0, 1.0 - r)))


@register_metric("truth_ratio_forget_stat")
def truth_ratio_forget_stat(ratios: ArrayLike) -> float:
    """TOFU's reported forget-set statistic: mean(min(R, 1/R)) (1.0 = indifferent model)."""
    r = _losses(ratios, "ratios", 1)
    return float(np.mean(np.minimum(r, 1.0 / r)))


@register_metric("answer_probability")
def answer_probability(answer_loss: ArrayLike) -> float:
    """Mean length-normalised probability of the answer: mean_i exp(-answer_loss[i])."""
    return float(np.mean(np.exp(-_losses(answer_loss, "answer_loss", 1))))


@register_metric("normalised_answer_probability")
def normalised_answer_probability(answer_loss: ArrayLike, perturbed_losses: ArrayLike) -> float:
    """Mean of p_answer / (p_answer + sum_j p_perturbed_j), with p = exp(-average loss).

    TOFU's "probability" on real authors and world facts, where the perturbed answers are the
    wrong options of a multiple-choice question.
    """
    answer = _losses(answer_loss, "answer_loss", 1)
    perturbed = _losses(perturbed_losses, "perturbed_losses", 2)
    if perturbed.shape[0] != answer.shape[0]:
        raise InputError(
            f"{answer.shape[0]} answer losses but {perturbed.shape[0]} rows of perturbed losses",
            Where(field="perturbed_losses"),
        )
    p_answer = np.exp(-answer)
    return float(np.mean(p_answer / (p_answer + np.exp(-perturbed).sum(axis=1))))


@dataclass(frozen=True)
class KSResult:
    """Two-sample Kolmogorov–Smirnov test: `pvalue` is TOFU's forget quality."""

    pvalue: float
    statistic: float


def forget_quality_test(model_ratios: ArrayLike, retain_ratios: ArrayLike) -> KSResult:
    """KS test between the forget-set truth ratios of a model and of the retain-only model.

    The KS statistic is invariant under a monotone map applied to both samples, so R and TOFU's
    1/R give the same result.
    """
    from scipy.stats import ks_2samp  # imported here to keep `import lethe.eval` fast

    model = _losses(model_ratios, "model_ratios", 1)
    retain = _losses(retain_ratios, "retain_ratios", 1)
    result = ks_2samp(model, retain)
    return KSResult(pvalue=float(result.pvalue), statistic=float(result.statistic))


@register_metric("forget_quality")
def forget_quality(model_ratios: ArrayLike, retain_ratios: ArrayLike) -> float:
    """TOFU forget quality: the KS-test p-value (high = indistinguishable from retraining)."""
    return forget_quality_test(model_ratios, retain_ratios).pvalue


@register_metric("model_utility")
def model_utility(values: Iterable[float] | Sequence[float]) -> float:
    """Harmonic mean n / sum(1/v) of non-negative numbers; 0.0 as soon as one of them is 0.

    TOFU's model utility is this over its 9 numbers (see the module docstring).
    """
    array = np.asarray(list(values), dtype=np.float64)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise InputError("model utility needs a non-empty list of finite numbers")
    if np.any(array < 0):
        raise InputError("model utility is defined for non-negative numbers only")
    if np.any(array == 0):
        return 0.0
    return float(array.size / np.sum(1.0 / array))
