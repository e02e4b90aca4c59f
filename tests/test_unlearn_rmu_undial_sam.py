"""RMU, UNDIAL and the sharpness-aware wrapper on the overfitted nano world."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from lethe.errors import InputError
from lethe.unlearn import UnlearnConfig, run_unlearning
from lethe.unlearn.base import get_method
from lethe.unlearn.batches import collate
from lethe.unlearn.losses import logits_of, mean_nll, shifted
from lethe.unlearn.rmu import decoder_layer, layer_output
from lethe.unlearn.sam import sharpness_aware
from lethe.unlearn.undial import adjusted_targets
from test_unlearn_fixtures import world_fixture  # noqa: F401  (fixture `world`)


def config(**changes) -> UnlearnConfig:
    settings = {"steps": 30, "lr": 1e-3, "forget_batch_size": 4, "retain_batch_size": 4, "eval_every": 10}
    return UnlearnConfig(**{**settings, **changes})


def test_rmu_steers_the_chosen_layer_and_keeps_retain(world):
    cfg = config(rmu_layer=1, steering_coeff=5.0, alpha=10.0, steps=40)
    model = world.model()
    forget = collate(world.forget, world.tokenizer.pad_token_id)
    layer = decoder_layer(model, 1)
    assert layer is not decoder_layer(model, 0) and decoder_layer(model, None) is layer  # nano: 2 layers
    method = get_method("rmu")(cfg, world.tokenizer, pad_token_id=world.tokenizer.pad_token_id)
    method.reference = copy.deepcopy(model)
    method.setup(model)
    control = method.control
    assert torch.isclose(control.norm(), torch.tensor(5.0))

    def to_control(m):
        with torch.no_grad():
            hidden = layer_output(m, decoder_layer(m, 1), forget)
        return float(((hidden - control) ** 2).mean())

    result = run_unlearning("rmu", model, world.tokenizer, world.forget, world.retain, cfg)
    assert to_control(result.model) < 0.5 * to_control(world.model())  # the forget states moved to u
    assert result.final_metrics.forget_loss > result.initial_metrics.forget_loss + 2.0
    assert result.final_metrics.retain_accuracy > 0.9  # retain states held to the original's
    with pytest.raises(InputError, match="rmu_layer=5 is out of range"):
        run_unlearning("rmu", world.model(), world.tokenizer, world.forget, world.retain, config(rmu_layer=5))


def test_undial_target_lowers_only_the_answer_token():
    logits = torch.tensor([[[2.0, 1.0, 0.0, -1.0]]])
    target = adjusted_targets(logits, torch.tensor([[0]]), 3.0)[0, 0]
    original = F.softmax(logits, -1)[0, 0]
    expected = torch.tensor([-1.0, 1.0, 0.0, -1.0]).exp()
    assert torch.isclose(target[0], expected[0] / expected.sum()) and target[0] < original[0] / 5
    ratio = target[1:] / original[1:]  # the other tokens keep their proportions
    assert torch.allclose(ratio, ratio[0].expand_as(ratio))
    assert torch.equal(adjusted_targets(logits, torch.tensor([[0]]), 0.0), F.softmax(logits, -1))


def test_undial_forgets_the_answer_tokens_but_stays_near_the_original(world):
    result = run_unlearning(
        "undial", world.model(), world.tokenizer, world.forget, world.retain, config(undial_strength=10.0)
    )
    ascent = run_unlearning("grad_ascent", world.model(), world.tokenizer, world.forget, [], config())
    stronger = run_unlearning(
        "undial", world.model(), world.tokenizer, world.forget, world.retain, config(undial_strength=30.0)
    )
    assert result.final_metrics.forget_accuracy < result.initial_metrics.forget_accuracy
    assert stronger.final_metrics.forget_loss > result.final_metrics.forget_loss  # the strength sets how far
    assert result.final_metrics.forget_loss > result.initial_metrics.forget_loss + 1.0
    assert result.final_metrics.forget_loss < ascent.final_metrics.forget_loss  # bounded, unlike ascent
    assert result.final_metrics.retain_accuracy > 0.9


def test_sam_gradient_is_the_gradient_at_the_perturbed_weights(world):
    rho = 0.05
    cfg = config(sam_rho=rho)
    forget = collate(world.forget[:2], world.tokenizer.pad_token_id)
    retain = collate(world.retain[:2], world.tokenizer.pad_token_id)
    model = world.model()
    method = sharpness_aware(get_method("grad_diff")(cfg, world.tokenizer))
    losses = method.loss(model, forget, retain)
    losses["loss"].backward()
    sam_grads = [p.grad.clone() for p in model.parameters()]

    plain = world.model()  # by hand: ε = ρ g/‖g‖ at θ, then ∇L(θ + ε)
    loss = -mean_nll(logits_of(plain, forget), forget["labels"]) + mean_nll(logits_of(plain, retain), retain["labels"])
    grads = torch.autograd.grad(loss, list(plain.parameters()))
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    with torch.no_grad():
        for p, g in zip(plain.parameters(), grads):
            p.add_(rho * g / norm)
    moved = -mean_nll(logits_of(plain, forget), forget["labels"]) + mean_nll(logits_of(plain, retain), retain["labels"])
    moved.backward()
    for got, p in zip(sam_grads, plain.parameters()):
        assert torch.allclose(got, p.grad, atol=1e-5, rtol=1e-4)
    assert float(losses["loss"].detach()) > float(losses["sam_unperturbed"])  # uphill by construction
    assert torch.equal(model.state_dict()["lm_head.weight"], world.model().state_dict()["lm_head.weight"])


def test_sam_wraps_any_loss_based_method(world):
    result = run_unlearning("npo", world.model(), world.tokenizer, world.forget, world.retain, config(sam_rho=0.05))
    assert result.final_metrics.forget_loss > result.initial_metrics.forget_loss + 1.0
    assert all("sam_unperturbed" in record.losses for record in result.history)
    with pytest.raises(InputError, match="sam_rho"):
        UnlearnConfig(sam_rho=-1)


def test_shifted_mask_matches_labels(world):
    batch = collate(world.forget, world.tokenizer.pad_token_id)
    _, _, mask = shifted(logits_of(world.model(), batch), batch["labels"])
    assert int(mask.sum()) == int((batch["labels"][:, 1:] != -100).sum())
