"""Membership-inference scores, AUC orientation and PrivLeak."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from lethe.errors import InputError
from lethe.eval.mia import (
    attack_scores,
    loss_score,
    membership_auc,
    min_k_plus_plus_score,
    min_k_score,
    privleak,
    roc_points,
    zlib_length,
    zlib_score,
)

LOGPROBS = -np.arange(1.0, 11.0)  # -1 .. -10


def test_loss_score_is_mean_logprob() -> None:
    assert loss_score([-1.0, -3.0]) == pytest.approx(-2.0)


def test_zlib_score() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 3
    assert zlib_length(text) == len(zlib.compress(text.encode("utf-8")))
    assert zlib_score([-1.0, -3.0], text) == pytest.approx(-2.0 / zlib_length(text))
    # repetitive text compresses better, so the same loss is more suspicious per byte
    assert zlib_length("ab" * 200) < zlib_length(text * 4)


def test_min_k() -> None:
    assert min_k_score(LOGPROBS, 0.2) == pytest.approx(-9.5)  # lowest 2 of 10
    assert min_k_score(LOGPROBS, 0.01) == pytest.approx(-10.0)  # never empty
    assert min_k_score(LOGPROBS, 1.0) == pytest.approx(np.mean(LOGPROBS))
    assert min_k_score(np.random.default_rng(0).permutation(LOGPROBS), 0.3) == pytest.approx(-9.0)
    with pytest.raises(InputError):
        min_k_score(LOGPROBS, 0.0)
    with pytest.raises(InputError):
        min_k_score([], 0.2)


def test_min_k_plus_plus() -> None:
    zeros, ones = np.zeros(10), np.ones(10)
    assert min_k_plus_plus_score(LOGPROBS, zeros, ones, 0.2) == pytest.approx(-9.5)
    # standardised: (-1 - -1)/1 = 0, (-2 - -1)/0.5 = -2
    assert min_k_plus_plus_score([-1.0, -2.0], [-1.0, -1.0], [1.0, 0.5], 0.5) == pytest.approx(-2.0)
    # a zero-spread position counts as 0
    assert min_k_plus_plus_score([-5.0, -1.0], [-1.0, -1.0], [0.0, 1.0], 1.0) == pytest.approx(0.0)
    with pytest.raises(InputError):
        min_k_plus_plus_score([-1.0, -2.0], [0.0], [1.0], 0.5)


def test_auc_orientation_and_known_values() -> None:
    assert membership_auc([5.0, 6.0], [1.0, 2.0]) == 1.0  # members perfectly identified
    assert membership_auc([1.0, 2.0], [5.0, 6.0]) == 0.0
    same = [0.3, 0.1, 0.7]
    assert membership_auc(same, same) == 0.5
    # pairs (1,2) (1,3) (2,2)=tie (2,3): 0.5 / 4
    assert membership_auc([1.0, 2.0], [2.0, 3.0]) == pytest.approx(0.125)


def test_auc_of_identical_distributions_is_near_half() -> None:
    rng = np.random.default_rng(3)
    assert membership_auc(rng.normal(size=2000), rng.normal(size=2000)) == pytest.approx(0.5, abs=0.03)
    shifted = membership_auc(rng.normal(1.0, size=2000), rng.normal(size=2000))
    assert shifted == pytest.approx(0.76, abs=0.03)  # Phi(1 / sqrt(2))


def test_roc_points() -> None:
    curve = roc_points([0.9, 0.8, 0.3], [0.1, 0.4, 0.2])
    assert (curve.fpr[0], curve.tpr[0]) == (0.0, 0.0)
    assert (curve.fpr[-1], curve.tpr[-1]) == (1.0, 1.0)
    assert curve.auc == pytest.approx(membership_auc([0.9, 0.8, 0.3], [0.1, 0.4, 0.2]))
    assert curve.auc == pytest.approx(8 / 9)
    assert np.all(np.diff(curve.fpr) >= 0)
    with pytest.raises(InputError):
        roc_points([], [1.0])


def test_privleak_follows_muse() -> None:
    assert privleak(0.5, 0.5) == 0.0
    assert privleak(1.0, 0.5) == pytest.approx(-100.0)  # a memorising model: MUSE's -100 %
    assert privleak(0.25, 0.5) == pytest.approx(50.0)  # over-unlearned: positive, in percent
    assert privleak(0.6, 0.6) == 0.0
    with pytest.raises(InputError):
        privleak(0.7, 1.0)
    with pytest.raises(InputError):
        privleak(1.2, 0.5)


def test_attack_scores() -> None:
    logprobs = [np.array([-1.0, -2.0]), np.array([-4.0, -8.0])]
    texts = ["ab", "cd"]
    scores = attack_scores(logprobs, texts, [np.zeros(2)] * 2, [np.ones(2)] * 2, k=0.5)
    assert scores["loss"] == pytest.approx([-1.5, -6.0])
    assert scores["min_k"] == pytest.approx([-2.0, -8.0])
    assert scores["min_k_plus_plus"] == pytest.approx([-2.0, -8.0])
    assert len(scores["zlib"]) == 2
    assert "min_k_plus_plus" not in attack_scores(logprobs, texts)
    with pytest.raises(InputError):
        attack_scores(logprobs, ["only one"])
