"""Answers are scored with their closing token by default, as TOFU and open-unlearning label them."""

from __future__ import annotations

import numpy as np

from lethe.eval.item_scores import ScoreSettings, score_qa
from lethe.eval.items import QAItem, answer_ids, stop_id
from lethe.eval.suite import SuiteConfig
from lethe.eval.tofu import TofuEvalConfig
from test_unlearn_fixtures import world_fixture  # noqa: F401  (fixture `world`)


def test_the_closing_token_is_scored_unless_switched_off(world):
    tokenizer = world.tokenizer
    plain = answer_ids(tokenizer, "Ilsa Varn was born in Quorth.")
    closed = answer_ids(tokenizer, "Ilsa Varn was born in Quorth.", end=True)
    assert closed == [*plain, stop_id(tokenizer)] and stop_id(tokenizer) is not None
    assert SuiteConfig().settings().answer_end and TofuEvalConfig().settings().answer_end
    items = [QAItem("Where was Ilsa Varn born?", "Ilsa Varn was born in Quorth.", perturbed_answers=("Vesk.",))]
    model = world.model()
    with_end = score_qa(model, tokenizer, items, ScoreSettings(generate=False))
    without = score_qa(model, tokenizer, items, ScoreSettings(generate=False, answer_end=False))
    assert not np.allclose(with_end.loss, without.loss)
    assert not np.allclose(with_end.perturbed_loss, without.perturbed_loss)  # variants end the same way
