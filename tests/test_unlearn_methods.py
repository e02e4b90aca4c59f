"""Every registered unlearning method, run on the overfitted nano world, does what it claims."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lethe.errors import InputError
from lethe.unlearn import UnlearnConfig, UnlearnResult, list_methods, run_unlearning
from lethe.unlearn.base import get_method
from lethe.unlearn.batches import collate, with_answer
from lethe.unlearn.progress import measure
from test_unlearn_fixtures import FORGET_IDS, RETAIN_IDS, world_fixture  # noqa: F401  (fixture `world`)

STEPS = 30


def config(**changes) -> UnlearnConfig:
    settings = {
        "steps": STEPS,
        "lr": 1e-3,
        "forget_batch_size": 4,
        "retain_batch_size": 4,
        "eval_every": 10,
    }
    settings.update(changes)
    return UnlearnConfig(**settings)


def run(world, method, **changes) -> UnlearnResult:
    return run_unlearning(method, world.model(), world.tokenizer, world.forget, world.retain, config(**changes))


@torch.no_grad()
def distance(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return float(sum(((p - q) ** 2).sum() for p, q in zip(a.parameters(), b.parameters())))


def refusal_examples(world, examples):
    special = set(world.tokenizer.all_special_ids)
    answers = UnlearnConfig().idk_answers
    return [
        with_answer(example, world.tokenizer(text, add_special_tokens=False)["input_ids"], special)
        for example in examples
        for text in answers
    ]


def assert_forgot(result: UnlearnResult, *, by: float = 3.0) -> None:
    before, after = result.initial_metrics, result.final_metrics
    assert before.forget_loss < 0.1, "the fixture should have memorised the forget set"
    assert after.forget_loss > before.forget_loss + by


def assert_kept_retain(result: UnlearnResult, *, bound: float = 0.5) -> None:
    assert result.final_metrics.retain_loss < bound
    assert result.final_metrics.retain_accuracy > 0.95


# ------------------------------------------------------------------------ per-method tests


def test_retain_ft_trains_on_retain_only(world):
    result = run(world, "retain_ft")
    assert all(not draw.forget_document_ids for draw in result.draws)
    assert {i for draw in result.draws for i in draw.retain_document_ids} == set(RETAIN_IDS)
    assert result.final_metrics.retain_loss <= result.initial_metrics.retain_loss + 0.01


def test_grad_ascent_raises_forget_loss(world):
    result = run(world, "grad_ascent")
    assert_forgot(result)
    assert all(not draw.retain_document_ids for draw in result.draws)


def test_grad_diff_forgets_and_keeps_retain(world):
    result = run(world, "grad_diff")
    assert_forgot(result)
    assert_kept_retain(result)
    ascent_only = run(world, "grad_ascent")
    assert ascent_only.final_metrics.retain_loss > 5 * result.final_metrics.retain_loss


def test_kl_forgets_and_keeps_retain(world):
    result = run(world, "kl")
    assert_forgot(result)
    assert_kept_retain(result)
    assert result.history[0].losses["retain"] == pytest.approx(0.0, abs=1e-6)  # starts at the reference
    assert result.history[-1].losses["retain"] > 0


def test_l2sp_stays_closer_to_the_original_than_grad_ascent(world):
    original = world.model()
    l2sp = run(world, "l2sp")
    ascent = run(world, "grad_ascent")
    assert_forgot(l2sp)
    assert distance(l2sp.model, original) < 0.2 * distance(ascent.model, original)
    assert l2sp.history[-1].losses["l2"] > 0
    assert all(layer.self_attn.attention_dropout == 0.0 for layer in l2sp.model.model.layers)


def test_l2sp_turns_dropout_on_while_training(world):
    method = get_method("l2sp")(config(dropout=0.3), world.tokenizer)
    model = world.model()
    method.setup(model)
    seen = {layer.self_attn.attention_dropout for layer in model.model.layers}
    method.teardown(model)
    assert seen == {0.3}
    assert {layer.self_attn.attention_dropout for layer in model.model.layers} == {0.0}


def test_npo_loss_starts_at_2ln2_over_beta_and_decreases(world):
    result = run(world, "npo", beta=0.1)
    forget_terms = [record.losses["forget"] for record in result.history]
    assert all(math.isfinite(value) for record in result.history for value in record.losses.values())
    assert forget_terms[0] == pytest.approx(2 * math.log(2) / 0.1, rel=1e-4)  # log p_θ = log p_ref
    assert forget_terms[-1] < 0.1 * forget_terms[0]
    assert_forgot(result)
    assert_kept_retain(result)


def test_simnpo_loss_is_finite_and_decreases(world):
    result = run(world, "simnpo", beta=0.1, delta=0.0)
    forget_terms = [record.losses["forget"] for record in result.history]
    assert all(math.isfinite(value) for record in result.history for value in record.losses.values())
    assert forget_terms[-1] < 0.7 * forget_terms[0]
    assert_forgot(result)
    assert_kept_retain(result)


def _per_example_mean_logp(model, examples):
    """Mean log-prob per answer token of each example, through the HF loss one at a time."""
    values = []
    for example in examples:
        ids = torch.tensor([example["input_ids"]])
        labels = torch.tensor([example["labels"]])
        values.append(-model(input_ids=ids, labels=labels).loss)
    return torch.stack(values), torch.tensor([sum(l != -100 for l in e["labels"][1:]) for e in examples])


@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_simnpo_matches_its_formula_on_a_padded_batch(world, delta):
    model = world.model()
    method = get_method("simnpo")(
        config(beta=2.5, delta=delta), world.tokenizer, pad_token_id=world.tokenizer.pad_token_id
    )
    with torch.no_grad():
        got = method.forget_loss(model, collate(world.forget, world.tokenizer.pad_token_id))
        mean_logp, _ = _per_example_mean_logp(model, world.forget)
    expected = (-2 / 2.5 * F.logsigmoid(-2.5 * mean_logp - delta)).mean()
    assert float(got) == pytest.approx(float(expected), rel=1e-4)


def test_npo_matches_its_formula_against_another_reference(world):
    model, reference = world.model(), world.model()
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    method = get_method("npo")(config(beta=0.5), world.tokenizer, pad_token_id=world.tokenizer.pad_token_id)
    method.reference = reference
    with torch.no_grad():
        got = method.forget_loss(model, collate(world.forget, world.tokenizer.pad_token_id))
        mean_logp, tokens = _per_example_mean_logp(model, world.forget)
        ref_mean_logp, _ = _per_example_mean_logp(reference, world.forget)
    ratio = (mean_logp - ref_mean_logp) * tokens
    expected = (-2 / 0.5 * F.logsigmoid(-0.5 * ratio)).mean()
    assert float(got) == pytest.approx(float(expected), rel=1e-4)


def test_idk_makes_refusals_likely_on_forget_questions(world):
    refusals = refusal_examples(world, world.forget)
    pad = world.tokenizer.pad_token_id
    before, _ = measure(world.model(), refusals, pad, 16)
    result = run(world, "idk")
    after, _ = measure(result.model, refusals, pad, 16)
    assert after < before - 1.5
    assert result.final_metrics.forget_loss > result.initial_metrics.forget_loss + 1.0
    assert_kept_retain(result)


def test_idk_trains_on_perturbed_answers_when_examples_carry_them(world):
    forget = [{**e, "perturbed_answers": ["Nobody knows where.", "Somewhere far away."]} for e in world.forget]
    method = get_method("idk")(config(), world.tokenizer)
    prepared = method.prepare_forget(forget)
    texts = {
        world.tokenizer.decode([t for t in alt["labels"] if t != -100], skip_special_tokens=True)
        for example in prepared
        for alt in example["alternatives"]
    }
    assert texts == {"Nobody knows where.", "Somewhere far away."}
    templates = get_method("idk")(config(idk_source="templates"), world.tokenizer).prepare_forget(forget)
    assert len(templates[0]["alternatives"]) == len(UnlearnConfig().idk_answers)
    with pytest.raises(InputError, match="perturbed_answers"):
        get_method("idk")(config(idk_source="perturbed"), world.tokenizer).prepare_forget(world.forget)


def test_dpo_idk_prefers_refusals_over_true_answers(world):
    refusals = refusal_examples(world, world.forget)
    pad = world.tokenizer.pad_token_id
    refusal_before, true_before = (
        measure(world.model(), refusals, pad, 16)[0],
        measure(world.model(), world.forget, pad, 16)[0],
    )
    result = run(world, "dpo_idk", beta=0.1)
    refusal_after, true_after = (
        measure(result.model, refusals, pad, 16)[0],
        measure(result.model, world.forget, pad, 16)[0],
    )
    # the preferred answer itself became likelier (by 0.9-2.2 nats over seeds 0-3 and batch orders)
    assert refusal_after < refusal_before - 0.5
    assert true_after > true_before + 3.0  # and the rejected one much less likely
    assert result.history[0].losses["forget"] == pytest.approx(2 * math.log(2) / 0.1, rel=1e-4)
    assert_kept_retain(result)


def test_distill_student_never_sees_forget_data_and_matches_teacher(world):
    teacher = world.model()
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    result = run_unlearning(
        "distill",
        teacher,
        world.tokenizer,
        world.forget,
        world.retain,
        config(steps=60, lr=1e-2, retain_batch_size=6, eval_every=20),
    )
    assert result.draws and all(draw.forget_document_ids == () for draw in result.draws)
    assert {i for draw in result.draws for i in draw.retain_document_ids} <= set(RETAIN_IDS)
    assert result.model is not teacher
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_state.items())
    assert result.initial_metrics.retain_loss > 4.0  # a fresh student
    assert result.final_metrics.retain_loss < 0.1  # teacher: ~0.02
    assert result.final_metrics.retain_accuracy == 1.0


def test_distill_builds_a_student_from_a_preset(world):
    result = run_unlearning(
        "distill",
        world.model(),
        world.tokenizer,
        world.forget,
        world.retain,
        config(steps=2, student_preset="nano", eval_every=0),
    )
    assert result.model.config.vocab_size == len(world.tokenizer)
    assert result.steps == 2


def _answer_weights(example, value):
    return [0.0 if label == -100 else value for label in example["labels"]]


def test_impact_ga_with_zero_or_negative_weights_changes_nothing(world):
    model = world.model()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    weights = [_answer_weights(e, 0.0 if e["document_id"] % 2 else -1.0) for e in world.forget]
    result = run_unlearning(
        "impact_ga",
        model,
        world.tokenizer,
        world.forget,
        world.retain,
        config(alpha=0.0),
        token_weights=weights,
    )
    assert all(record.losses["forget"] == 0.0 for record in result.history)
    assert all(torch.equal(v, result.model.state_dict()[k]) for k, v in original.items())


def test_impact_ga_pushes_down_weighted_tokens_only(world):
    weighted = {FORGET_IDS[0], FORGET_IDS[1]}
    weights = [_answer_weights(e, 1.0 if e["document_id"] in weighted else 0.0) for e in world.forget]
    result = run_unlearning(
        "impact_ga",
        world.model(),
        world.tokenizer,
        world.forget,
        world.retain,
        config(alpha=1.0, steps=15),
        token_weights=weights,
    )
    pad = world.tokenizer.pad_token_id
    hit = [e for e in world.forget if e["document_id"] in weighted]
    spared = [e for e in world.forget if e["document_id"] not in weighted]
    rise_hit = measure(result.model, hit, pad, 8)[0] - measure(world.model(), hit, pad, 8)[0]
    rise_spared = measure(result.model, spared, pad, 8)[0] - measure(world.model(), spared, pad, 8)[0]
    assert rise_hit > 3.0
    assert rise_hit > 2 * rise_spared  # 2.5-11x over seeds 0-3 and batch orders


def test_impact_ga_needs_token_weights(world):
    with pytest.raises(InputError, match="token_weights"):
        run(world, "impact_ga")


def test_exact_is_a_forget_strategy_not_an_unlearning_method(world):
    """Exact replay needs the ledger: it is `lethe.forget`'s strategy, and the unlearning
    registry refuses it with the names it does know."""
    from lethe.forget import list_strategies, strategy_for

    assert "exact" in list_strategies() and "exact" not in list_methods()
    assert strategy_for("exact").exact and not strategy_for("npo").exact
    with pytest.raises(InputError, match="unknown unlearning method 'exact'; known methods: distill"):
        run_unlearning("exact", world.model(), world.tokenizer, world.forget, world.retain, UnlearnConfig())


TESTED = {
    "retain_ft",
    "grad_ascent",
    "grad_diff",
    "kl",
    "l2sp",
    "npo",
    "simnpo",
    "idk",
    "dpo_idk",
    "distill",
    "impact_ga",
    "rmu",  # test_unlearn_rmu_undial_sam.py
    "undial",  # test_unlearn_rmu_undial_sam.py
    "whp",  # test_unlearn_whp.py
}


def test_every_registered_method_has_a_test_here():
    assert set(list_methods()) == TESTED


def test_quick_metrics_match_the_full_logits_and_bf16_stays_close(world):
    from lethe.unlearn.losses import labelled_logits, logits_of, mean_nll, token_accuracy

    model, pad = world.model(), world.tokenizer.pad_token_id
    batch = collate(world.forget + world.retain, pad)
    with torch.no_grad():
        full = logits_of(model, batch)
        cut, labels = labelled_logits(model, batch)
    assert cut.shape[1] < full.shape[1]  # the prompts' positions are not computed
    assert float(mean_nll(cut, labels)) == pytest.approx(float(mean_nll(full, batch["labels"])), abs=1e-5)
    assert token_accuracy(cut, labels) == token_accuracy(full, batch["labels"])
    loss, accuracy = measure(model, world.forget, pad, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss_bf16, _ = measure(model, world.forget, pad, 4)
    assert loss_bf16 == pytest.approx(loss, abs=0.05) and 0.0 <= accuracy <= 1.0
