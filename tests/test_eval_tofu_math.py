"""TOFU statistics on hand-computed cases and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import hmean

from lethe.errors import InputError
from lethe.eval.tofu_math import (
    answer_probability,
    forget_quality,
    forget_quality_test,
    model_utility,
    normalised_answer_probability,
    truth_ratio,
    truth_ratio_forget_stat,
    truth_ratio_stat,
)


def test_truth_ratio_by_hand() -> None:
    # R = exp(paraphrased - mean(perturbed)) = P(perturbed)^(1/len) / P(paraphrased)^(1/len)
    ratios = truth_ratio([1.0, 2.0], [[2.0, 4.0], [2.0, 2.0]])
    assert ratios == pytest.approx([math.exp(-2.0), 1.0])


def test_truth_ratio_is_the_geometric_mean_of_probability_ratios() -> None:
    rng = np.random.default_rng(0)
    paraphrased = rng.uniform(0.1, 3.0, size=7)
    perturbed = rng.uniform(0.1, 3.0, size=(7, 5))
    p_para = np.exp(-paraphrased)
    p_pert = np.exp(-perturbed)
    expected = np.prod(p_pert, axis=1) ** (1 / 5) / p_para
    assert truth_ratio(paraphrased, perturbed) == pytest.approx(expected)


def test_truth_ratio_statistics() -> None:
    assert truth_ratio_stat([0.5, 2.0]) == pytest.approx(0.25)  # mean(max(0, 1 - R))
    assert truth_ratio_forget_stat([0.5, 2.0]) == pytest.approx(0.5)  # mean(min(R, 1/R))
    assert truth_ratio_stat([1.0]) == 0.0
    assert truth_ratio_forget_stat([1.0]) == 1.0


def test_probabilities() -> None:
    assert answer_probability([0.0, math.log(2)]) == pytest.approx(0.75)
    # p = 1 against two wrong options of p = 1/2 each: 1 / (1 + 1/2 + 1/2)
    assert normalised_answer_probability([0.0], [[math.log(2), math.log(2)]]) == pytest.approx(0.5)
    # equally likely options: 1 / (k + 1)
    assert normalised_answer_probability([1.3, 0.2], [[1.3] * 3, [0.2] * 3]) == pytest.approx(0.25)


def test_forget_quality_is_a_ks_p_value() -> None:
    rng = np.random.default_rng(1)
    same = rng.lognormal(size=200)
    assert forget_quality(same, same) == pytest.approx(1.0)
    far = forget_quality_test(rng.lognormal(size=200), rng.lognormal(mean=3.0, size=200))
    assert far.pvalue < 1e-10
    assert far.statistic > 0.5
    # TOFU's aggregate script feeds 1/R; KS is invariant under that monotone map
    a, b = rng.lognormal(size=50), rng.lognormal(mean=0.3, size=60)
    assert forget_quality(a, b) == pytest.approx(forget_quality(1 / a, 1 / b))


def test_model_utility_is_the_harmonic_mean() -> None:
    assert model_utility([1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert model_utility([1.0, 0.5]) == pytest.approx(2 / 3)
    values = np.random.default_rng(2).uniform(0.05, 1.0, size=9)
    assert model_utility(values) == pytest.approx(hmean(values))
    assert model_utility(iter(values)) == pytest.approx(hmean(values))
    assert model_utility([0.9, 0.0, 0.8]) == 0.0
    with pytest.raises(InputError):
        model_utility([0.5, -0.1])
    with pytest.raises(InputError):
        model_utility([])


def test_bad_shapes_are_input_errors() -> None:
    with pytest.raises(InputError):
        truth_ratio([1.0, 2.0], [[1.0, 2.0]])
    with pytest.raises(InputError):
        truth_ratio([1.0], [1.0])
    with pytest.raises(InputError):
        answer_probability([])
    with pytest.raises(InputError):
        answer_probability([float("nan")])
