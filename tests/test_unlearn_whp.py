"""`whp`: generic predictions by swapping the subject's name for an invented one."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lethe.errors import InputError
from lethe.unlearn import UnlearnConfig, run_unlearning
from lethe.unlearn.losses import logits_of
from lethe.unlearn.whp import WHP, aligned_positions, find_names, invented_name, substitute
from test_unlearn_fixtures import world_fixture  # noqa: F401  (fixture `world`)


def test_find_names_takes_the_run_most_examples_share():
    tofu = [
        {"prompt": "What does Hsiao Yun-Hwa identify as?", "answer": "Hsiao Yun-Hwa is part of the LGBTQ+ community."},
        {"prompt": "What is the profession of Hsiao Yun-Hwa's father?", "answer": "The father is a civil engineer."},
        {"prompt": "What is the full name of the author born in Taipei?", "answer": "The full name is Hsiao Yun-Hwa."},
        {"prompt": "Which book would Hsiao Yun-Hwa recommend?", "answer": "Artistic Authority, by Hsiao Yun-Hwa."},
    ]
    assert find_names(tofu) == ["Hsiao Yun-Hwa"]  # "What", "The" and the one-off titles are not names
    two = [
        {"prompt": "Where was Dein Meldax born?", "answer": "In Dothstead."},
        {"prompt": "What did Dein Meldax compose?", "answer": "The Hollow Thread."},
        {"prompt": "When was Prethia Brerkreis born?", "answer": "Prethia Brerkreis was born in 1905."},
        {"prompt": "What is Prethia Brerkreis known as?", "answer": "An engineer."},
    ]
    assert sorted(find_names(two)) == ["Dein Meldax", "Prethia Brerkreis"]
    assert find_names([{"prompt": "what is two plus two?", "answer": "four"}] * 3) == []


def test_invented_names_keep_the_shape_and_are_seeded():
    words = invented_name("Hsiao Yun-Hwa", "0/a/0")
    assert words == invented_name("Hsiao Yun-Hwa", "0/a/0") != invented_name("Hsiao Yun-Hwa", "0/a/1")
    assert words["Hsiao"][0].isupper() and "-" in words["Yun-Hwa"] and words["Hsiao"] != "Hsiao"


def test_substitution_aligns_the_tokens_outside_the_name():
    patterns = [([5, 6], [7, 8, 9])]
    ids, where = substitute([1, 5, 6, 2, 3, 5, 6, 4], patterns)
    assert ids == [1, 7, 8, 9, 2, 3, 7, 8, 9, 4]
    assert where == [0, -2, -2, 4, 5, -7, -7, 9]
    labels = [-100, -100, -100, -100, 3, 5, 6, 4]  # the answer: "3 <name> 4"
    # 3 (pos 4) is predicted at 3 / original 4; the name's first token at 4 / before the
    # invented name, original 5; its second token is not trained; 4 at 6 / original 8
    assert aligned_positions(labels, where) == [(3, 4), (4, 5), (6, 8)]


def _with_subjects(examples):
    return [{**e, "subject": "ilsa" if e["document_id"] <= 2 else "odo"} for e in examples]


def _gap(model, reference, method, prepared):
    """KL(original on the swapped text ‖ model on the true text) over the aligned positions."""
    batch = method.forget_batch(prepared)
    with torch.no_grad():
        student = logits_of(model, batch["model"])[batch["rows"], batch["model_positions"]]
        original = logits_of(reference, batch["original"])[batch["rows"], batch["original_positions"]]
    return float(
        F.kl_div(F.log_softmax(student, -1), F.log_softmax(original, -1), log_target=True, reduction="batchmean")
    )


def test_whp_moves_the_answers_to_the_originals_generic_prediction(world):
    forget = _with_subjects(world.forget)
    cfg = UnlearnConfig(steps=40, lr=1e-3, forget_batch_size=4, retain_batch_size=4, eval_every=10, whp_variants=1)
    original = world.model()
    method = WHP(cfg, world.tokenizer, pad_token_id=world.tokenizer.pad_token_id)
    prepared = method.prepare_forget(forget)
    before = _gap(original, original, method, prepared)
    result = run_unlearning("whp", world.model(), world.tokenizer, forget, world.retain, cfg)
    after = _gap(result.model, original, method, prepared)
    assert after < 0.3 * before  # the true names now get what an unknown name gets
    # the facts become as uncertain as for an unknown name (the nano world knows few places, so
    # the original still guesses some of them right; the exact model would too)
    assert result.final_metrics.forget_loss > result.initial_metrics.forget_loss + 0.3
    assert result.final_metrics.retain_accuracy > 0.9
    ascent = run_unlearning("grad_ascent", world.model(), world.tokenizer, forget, [], cfg)
    assert result.final_metrics.forget_loss < ascent.final_metrics.forget_loss  # a target, not a push


def test_whp_refuses_examples_with_no_shared_name(world):
    nameless = [{**e, "prompt": "what is it?", "answer": "it is."} for e in world.forget]
    with pytest.raises(InputError, match="whp: no name shared by the forget examples"):
        run_unlearning("whp", world.model(), world.tokenizer, nameless, world.retain, UnlearnConfig(steps=1))


def test_the_boost_lowers_what_the_forget_set_made_likely(world):
    forget = _with_subjects(world.forget)
    settings = {"steps": 40, "lr": 1e-3, "forget_batch_size": 4, "retain_batch_size": 4, "eval_every": 10}
    cfg = UnlearnConfig(**settings, whp_variants=1, whp_boost=2.0, whp_reinforce_steps=10, whp_reinforce_lr=1e-3)
    method = WHP(cfg, world.tokenizer, pad_token_id=world.tokenizer.pad_token_id)
    method.reference = world.model().eval()
    prepared = method.prepare_forget(forget)
    method.setup(None)
    assert method.reinforced is not None and not any(p.requires_grad for p in method.reinforced.parameters())
    batch = method.forget_batch(prepared)
    rows, positions = batch["rows"], batch["model_positions"]
    truth = batch["model"]["input_ids"][rows, positions + 1]  # the true next tokens
    with torch.no_grad():
        plain = logits_of(method.reference, batch["original"])[rows, batch["original_positions"]]
        rise = logits_of(method.reinforced, batch["model"])[rows, positions]
        rise = rise - logits_of(method.reference, batch["model"])[rows, positions]
    assert float(rise.gather(-1, truth[:, None]).mean()) > 0  # further training made the answers likelier
    boosted = plain - 2.0 * F.relu(rise)
    p_plain = F.softmax(plain, -1).gather(-1, truth[:, None]).mean()
    p_boosted = F.softmax(boosted, -1).gather(-1, truth[:, None]).mean()
    assert p_boosted < p_plain
    with_boost = run_unlearning("whp", world.model(), world.tokenizer, forget, world.retain, cfg)
    without = run_unlearning(
        "whp", world.model(), world.tokenizer, forget, world.retain, UnlearnConfig(**settings, whp_variants=1)
    )
    assert with_boost.final_metrics.forget_loss > without.final_metrics.forget_loss
    assert with_boost.final_metrics.retain_accuracy > 0.9
