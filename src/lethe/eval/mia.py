"""Membership-inference scores, their AUC, and MUSE's PrivLeak.

Every score is oriented so that a **higher score means "more likely a training member"**, and
`membership_auc(members, non_members)` is the ROC AUC of telling the two apart: 1.0 = every
member ranked above every non-member, 0.5 = chance, 0.0 = perfectly inverted.

Inputs are per-token log-probabilities log p(x_t | x_<t) (natural log) of one text's scored
tokens, as returned by `lethe.eval.scoring.token_logprobs`:

* LOSS (Yeom et al. 2018): mean log-prob = -(average NLL).
* zlib (Carlini et al. 2021): mean log-prob / zlib-compressed length in bytes of the text
  (`zlib.compress(text.encode("utf-8"))`, default level), i.e. -(log-perplexity / zlib entropy).
* Min-K% (Shi et al. 2024): mean of the lowest k% log-probs: the `max(1, int(n * k))` smallest
  (the reference code's `int(len * ratio)`, kept from being empty).
* Min-K%++ (Zhang et al. 2024): the same over the standardised log-probs
  (log p(x_t) - mu_t) / sigma_t, where mu_t and sigma_t^2 are the mean and variance of
  log p(z | x_<t) for z drawn from the model's own next-token distribution (probability-
  weighted over the vocabulary), as `scoring.token_logprobs` returns them.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lethe.errors import InputError, Where
from lethe.eval.metrics import register_metric


def _token_values(values: ArrayLike, field: str) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise InputError(
            f"expected a non-empty 1-d array of per-token values, got shape {array.shape}",
            Where(field=field),
        )
    if np.any(np.isnan(array)):
        raise InputError("per-token values contain NaN", Where(field=field))
    return array


def _check_k(k: float) -> None:
    if not 0.0 < k <= 1.0:
        raise InputError(f"k must be a fraction in (0, 1], got {k}", Where(field="k"))


@register_metric("mia_loss")
def loss_score(logprobs: ArrayLike) -> float:
    """LOSS attack score: mean token log-prob (the negative average NLL)."""
    return float(np.mean(_token_values(logprobs, "logprobs")))


def zlib_length(text: str) -> int:
    """Bytes of the zlib-compressed UTF-8 text (Carlini et al.'s "zlib entropy")."""
    return len(zlib.compress(text.encode("utf-8")))


@register_metric("mia_zlib")
def zlib_score(logprobs: ArrayLike, text: str) -> float:
    """zlib attack score: mean token log-prob / zlib-compressed byte length of `text`."""
    return loss_score(logprobs) / zlib_length(text)


def _lowest_mean(values: NDArray[np.float64], k: float) -> float:
    _check_k(k)
    count = max(1, int(values.size * k))
    return float(np.mean(np.sort(values)[:count]))


@register_metric("mia_min_k")
def min_k_score(logprobs: ArrayLike, k: float = 0.2) -> float:
    """Min-K% score: mean of the lowest `max(1, int(n*k))` token log-probs."""
    return _lowest_mean(_token_values(logprobs, "logprobs"), k)


@register_metric("mia_min_k_plus_plus")
def min_k_plus_plus_score(logprobs: ArrayLike, vocab_mean: ArrayLike, vocab_std: ArrayLike, k: float = 0.2) -> float:
    """Min-K%++ score: Min-K% of (logprob_t - vocab_mean_t) / vocab_std_t.

    A position whose next-token distribution has zero spread (sigma_t = 0, a one-hot
    prediction) carries no evidence and is scored 0.
    """
    x = _token_values(logprobs, "logprobs")
    mu = _token_values(vocab_mean, "vocab_mean")
    sigma = _token_values(vocab_std, "vocab_std")
    if not x.shape == mu.shape == sigma.shape:
        raise InputError(
            f"logprobs, vocab_mean and vocab_std differ in length: {x.size}, {mu.size}, {sigma.size}",
            Where(field="vocab_mean"),
        )
    if np.any(sigma < 0):
        raise InputError("vocab_std must be non-negative", Where(field="vocab_std"))
    safe = np.where(sigma > 0, sigma, 1.0)
    standardised = np.where(sigma > 0, (x - mu) / safe, 0.0)
    return _lowest_mean(standardised, k)


def _labelled(member_scores: ArrayLike, non_member_scores: ArrayLike) -> tuple[NDArray, NDArray]:
    members = np.asarray(member_scores, dtype=np.float64).ravel()
    non_members = np.asarray(non_member_scores, dtype=np.float64).ravel()
    if members.size == 0 or non_members.size == 0:
        raise InputError("an AUC needs at least one member and one non-member score")
    scores = np.concatenate([members, non_members])
    if not np.all(np.isfinite(scores)):
        raise InputError("membership scores must be finite numbers")
    labels = np.concatenate([np.ones(members.size), np.zeros(non_members.size)])
    return labels, scores


@register_metric("mia_auc")
def membership_auc(member_scores: ArrayLike, non_member_scores: ArrayLike) -> float:
    """ROC AUC (sklearn `roc_auc_score`) of members (label 1) vs non-members (label 0).

    Equals P(member score > non-member score) + 0.5 P(tie) over all pairs.
    """
    from sklearn.metrics import roc_auc_score  # imported here: sklearn takes ~1 s to import

    labels, scores = _labelled(member_scores, non_member_scores)
    return float(roc_auc_score(labels, scores))


@dataclass(frozen=True)
class RocCurve:
    """ROC points for a plot: false / true positive rates at decreasing score thresholds."""

    fpr: list[float]
    tpr: list[float]
    thresholds: list[float]
    auc: float


def roc_points(member_scores: ArrayLike, non_member_scores: ArrayLike) -> RocCurve:
    """The ROC curve (sklearn `roc_curve`, collinear points dropped) and its AUC."""
    from sklearn.metrics import roc_auc_score, roc_curve

    labels, scores = _labelled(member_scores, non_member_scores)
    fpr, tpr, thresholds = roc_curve(labels, scores)
    return RocCurve(
        fpr=fpr.tolist(),
        tpr=tpr.tolist(),
        thresholds=thresholds.tolist(),
        auc=float(roc_auc_score(labels, scores)),
    )


@register_metric("privleak")
def privleak(auc_unlearned: float, auc_retrain: float) -> float:
    """MUSE's PrivLeak in percent, from two AUCs in lethe's orientation (1.0 = members identified).

    MUSE defines PrivLeak = (AUC_unlearn - AUC_retrain) / AUC_retrain with AUCs of forget
    (members) vs holdout scored the other way round, so that its AUC is 1 - ours: a model that
    still memorises the forget set has MUSE-AUC near 0 and PrivLeak near -100 %. This
    function converts, and returns open-unlearning's units (×100, as MUSE's tables print it):
    100 · ((1 - a_u) - (1 - a_r)) / (1 - a_r). Near 0 = like retraining; negative = the forget
    set is still detectable (under-unlearning); positive = over-unlearning. Where the retrained
    model's AUC is 1.0 it is undefined (open-unlearning divides by 1e-10 instead).
    """
    for name, value in (("auc_unlearned", auc_unlearned), ("auc_retrain", auc_retrain)):
        if not 0.0 <= value <= 1.0:
            raise InputError(f"an AUC lies in [0, 1], got {value}", Where(field=name))
    muse_unlearned, muse_retrain = 1.0 - auc_unlearned, 1.0 - auc_retrain
    if muse_retrain == 0.0:
        raise InputError(
            "PrivLeak is undefined when the retrained model's AUC is 1.0",
            Where(field="auc_retrain"),
        )
    return 100.0 * (muse_unlearned - muse_retrain) / muse_retrain


def attack_scores(
    logprobs: Sequence[ArrayLike],
    texts: Sequence[str],
    vocab_means: Sequence[ArrayLike] | None = None,
    vocab_stds: Sequence[ArrayLike] | None = None,
    k: float = 0.2,
) -> dict[str, list[float]]:
    """Every attack's score for each sample: keys loss, zlib, min_k and (given the vocabulary
    statistics) min_k_plus_plus, each a list aligned with `texts`."""
    if len(logprobs) != len(texts):
        raise InputError(f"{len(logprobs)} log-prob arrays but {len(texts)} texts")
    scores: dict[str, list[float]] = {
        "loss": [loss_score(lp) for lp in logprobs],
        "zlib": [zlib_score(lp, text) for lp, text in zip(logprobs, texts)],
        "min_k": [min_k_score(lp, k) for lp in logprobs],
    }
    if vocab_means is not None and vocab_stds is not None:
        if not len(vocab_means) == len(vocab_stds) == len(logprobs):
            raise InputError("vocab_means and vocab_stds must have one array per sample")
        scores["min_k_plus_plus"] = [
            min_k_plus_plus_score(lp, mu, sd, k) for lp, mu, sd in zip(logprobs, vocab_means, vocab_stds)
        ]
    return scores
