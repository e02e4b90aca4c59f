"""The metric registry: lookup by name, errors, and a test for every registered metric."""

from __future__ import annotations

import pytest

from lethe.errors import InputError
from lethe.eval import get_metric, list_metrics, register_metric
from lethe.eval import metrics as registry

# Every registered metric and the test module that pins its behaviour. A metric registered
# without a test makes `test_every_registered_metric_has_a_test` fail.
TESTED_METRICS = {
    "exact_match": "test_eval_text",
    "token_precision": "test_eval_text",
    "token_recall": "test_eval_text",
    "token_f1": "test_eval_text",
    "rouge_l_recall": "test_eval_text",
    "rouge_l_f1": "test_eval_text",
    "rouge1_recall": "test_eval_text",
    "truth_ratio": "test_eval_tofu_math",
    "truth_ratio_stat": "test_eval_tofu_math",
    "truth_ratio_forget_stat": "test_eval_tofu_math",
    "answer_probability": "test_eval_tofu_math",
    "normalised_answer_probability": "test_eval_tofu_math",
    "forget_quality": "test_eval_tofu_math",
    "model_utility": "test_eval_tofu_math",
    "mia_loss": "test_eval_mia",
    "mia_zlib": "test_eval_mia",
    "mia_min_k": "test_eval_mia",
    "mia_min_k_plus_plus": "test_eval_mia",
    "mia_auc": "test_eval_mia",
    "privleak": "test_eval_mia",
    "exact_memorisation": "test_eval_memorisation",
    "extraction_strength": "test_eval_memorisation",
    "verbatim_rouge": "test_eval_memorisation",
}


def test_every_registered_metric_has_a_test() -> None:
    assert set(list_metrics()) == set(TESTED_METRICS)


def test_list_is_sorted_and_lookup_returns_the_function() -> None:
    names = list_metrics()
    assert names == sorted(names)
    from lethe.eval.text import token_f1

    assert get_metric("token_f1") is token_f1
    assert get_metric("token_f1")("a cat", "the cat") == 1.0


def test_unknown_metric_is_an_input_error_naming_the_known_ones() -> None:
    with pytest.raises(InputError) as caught:
        get_metric("no_such_metric")
    assert "no_such_metric" in caught.value.message
    assert "token_f1" in caught.value.message


def test_registering_a_new_metric_and_a_conflicting_one() -> None:
    @register_metric("test_only_length")
    def length(text: str) -> float:
        return float(len(text))

    try:
        assert get_metric("test_only_length") is length
        assert "test_only_length" in list_metrics()
        with pytest.raises(ValueError, match="registered twice"):

            @register_metric("test_only_length")
            def other(text: str) -> float:
                return 0.0

    finally:
        registry.METRICS.remove("test_only_length")
    with pytest.raises(ValueError):
        register_metric(" padded ")
