"""The shared unlearning loop: draws, determinism, progress, cancel, early stop, LoRA."""

from __future__ import annotations

import threading

import peft
import pytest
import torch
from peft.tuners.lora import LoraModel

from lethe.errors import CancelledError, InputError
from lethe.unlearn import UnlearnConfig, UnlearnMethod, run_unlearning
from lethe.unlearn.base import METHODS, register_method
from test_unlearn_fixtures import FORGET_IDS, RETAIN_IDS, world_fixture  # noqa: F401  (fixture `world`)


def run(world, method="grad_diff", **changes):
    settings = {
        "steps": 6,
        "lr": 1e-3,
        "forget_batch_size": 3,
        "retain_batch_size": 4,
        "eval_every": 0,
    }
    keywords = {k: changes.pop(k) for k in ("callback", "cancel", "model") if k in changes}
    settings.update(changes)
    model = keywords.pop("model", None) or world.model()
    return run_unlearning(
        method,
        model,
        world.tokenizer,
        world.forget,
        world.retain,
        UnlearnConfig(**settings),
        **keywords,
    )


def test_draws_cover_each_forget_document_once_per_epoch(world):
    result = run(world, steps=None, epochs=3)  # 4 forget examples, batches of 3: 2 steps an epoch
    assert result.steps == 6 and len(result.draws) == 6
    for epoch in range(3):
        ids = [i for draw in result.draws[2 * epoch : 2 * epoch + 2] for i in draw.forget_document_ids]
        assert sorted(ids) == sorted(FORGET_IDS)
    for epoch in range(3):  # 6 retain examples, batches of 4: also 2 steps an epoch
        ids = [i for draw in result.draws[2 * epoch : 2 * epoch + 2] for i in draw.retain_document_ids]
        assert sorted(ids) == sorted(RETAIN_IDS)
    assert [draw.step for draw in result.draws] == list(range(1, 7))
    assert len(result.exposures()) == sum(len(d.forget_document_ids) + len(d.retain_document_ids) for d in result.draws)


def test_same_seed_same_weights_and_draws_other_seed_other_draws(world):
    first, second, other = run(world, seed=3), run(world, seed=3), run(world, seed=4)
    assert first.draws == second.draws
    assert all(torch.equal(a, b) for a, b in zip(first.model.parameters(), second.model.parameters()))
    assert first.draws != other.draws


def test_callback_sees_every_step_with_metrics_every_n(world):
    seen = []
    result = run(world, steps=7, eval_every=3, warmup_steps=2, callback=seen.append)
    assert seen == result.history
    assert [r.step for r in seen] == list(range(1, 8))
    assert [r.step for r in seen if r.metrics is not None] == [3, 6, 7]  # and always the last step
    assert all({"loss", "forget", "retain"} <= set(r.losses) for r in seen)
    assert [r.lr for r in seen[:3]] == pytest.approx([5e-4, 1e-3, 1e-3])
    assert seen[-1].elapsed >= seen[0].elapsed > 0
    assert result.initial_metrics is not None and result.final_metrics is seen[-1].metrics


def test_quick_metrics_only_watch_and_their_seconds_are_counted_apart(world):
    watched, plain = run(world, seed=5, eval_every=1), run(world, seed=5)
    assert watched.draws == plain.draws
    assert all(torch.equal(a, b) for a, b in zip(watched.model.parameters(), plain.model.parameters()))
    assert 0 < watched.monitor_seconds < watched.wall_time and plain.monitor_seconds == 0.0


def test_cancel_stops_before_the_next_step(world):
    cancel, steps = threading.Event(), []

    def callback(record):
        steps.append(record.step)
        if record.step == 3:
            cancel.set()

    with pytest.raises(CancelledError, match="after 3 of 6"):
        run(world, callback=callback, cancel=cancel)
    assert steps == [1, 2, 3]


def test_cancel_accepts_a_callable_and_a_token(world):
    from lethe.chat.reply import CancelToken

    with pytest.raises(CancelledError, match="after 0"):
        run(world, cancel=lambda: True)
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        run(world, cancel=token)


def test_early_stop_at_the_forget_target(world):
    result = run(world, "grad_ascent", steps=100, eval_every=2, forget_loss_target=3.0)
    assert result.stop_reason == "forget_loss_target"
    assert result.steps < 100 and result.steps % 2 == 0
    assert result.final_metrics.forget_loss >= 3.0
    assert len(result.history) == len(result.draws) == result.steps


def test_early_stop_at_the_utility_floor(world):
    result = run(world, "grad_ascent", steps=100, eval_every=2, retain_accuracy_floor=0.9)
    assert result.stop_reason == "retain_accuracy_floor"
    assert result.steps < 100
    assert result.final_metrics.retain_accuracy < 0.9


def test_no_early_stop_runs_every_step(world):
    assert run(world, eval_every=2).stop_reason is None


def test_lora_leaves_base_weights_until_the_merge_and_returns_the_merged_model(world, monkeypatch):
    original = world.model()
    calls = []
    # PeftModel forwards merge_and_unload to its LoraModel, whose `model` is the base.
    real_merge = LoraModel.merge_and_unload

    def spying_merge(self, *args, **kwargs):
        base = self.model
        untouched = all(
            torch.equal(
                module.base_layer.weight,
                original.get_submodule(name.replace(".base_layer", "")).weight,
            )
            for name, module in base.named_modules()
            if hasattr(module, "base_layer") and hasattr(module.base_layer, "weight")
        )
        merged = real_merge(self, *args, **kwargs)
        calls.append((untouched, merged))
        return merged

    monkeypatch.setattr(LoraModel, "merge_and_unload", spying_merge)
    result = run(world, "grad_ascent", lora=True, lora_r=4, lr=1e-2)
    ((untouched, merged),) = calls
    assert untouched
    assert result.model is merged
    assert not isinstance(result.model, peft.PeftModel)
    assert not any("lora" in name for name, _ in result.model.named_parameters())
    q_proj = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(result.model.get_parameter(q_proj), original.get_parameter(q_proj))
    embed = "model.embed_tokens.weight"  # not an adapter target: stays as it was
    assert torch.equal(result.model.get_parameter(embed), original.get_parameter(embed))


def test_kl_reference_is_a_frozen_copy_taken_before_training(world):
    result = run(world, "kl", steps=3)
    assert result.history[0].losses["retain"] == pytest.approx(0.0, abs=1e-6)


def test_errors_name_what_is_wrong(world):
    with pytest.raises(InputError, match="known methods: .*grad_ascent"):
        run(world, "no_such_method")
    with pytest.raises(InputError, match="needs forget examples"):
        run_unlearning("grad_ascent", world.model(), world.tokenizer, [], world.retain, UnlearnConfig(steps=1))
    with pytest.raises(InputError, match="needs retain examples"):
        run_unlearning("grad_diff", world.model(), world.tokenizer, world.forget, [], UnlearnConfig(steps=1))
    with pytest.raises(InputError, match="token weight"):
        run_unlearning(
            "impact_ga",
            world.model(),
            world.tokenizer,
            world.forget,
            world.retain,
            UnlearnConfig(steps=1),
            token_weights=[[1.0]],
        )
    bad = [{**world.forget[0], "labels": [-100] * len(world.forget[0]["labels"])}]
    with pytest.raises(InputError, match="no label tokens"):
        run_unlearning("grad_ascent", world.model(), world.tokenizer, bad, world.retain, UnlearnConfig(steps=1))


def test_grad_diff_with_zero_alpha_draws_no_retain_batch(world):
    result = run(world, alpha=0.0)
    assert all(draw.retain_document_ids == () for draw in result.draws)


def test_a_new_method_is_one_class_and_a_decorator(world):
    @register_method("test_descent_on_forget")
    class Relearn(UnlearnMethod):
        uses_retain = False

        def loss(self, model, forget, retain):
            from lethe.unlearn.losses import logits_of, mean_nll

            loss = mean_nll(logits_of(model, forget), forget["labels"])
            return {"loss": loss}

    try:
        result = run(world, "test_descent_on_forget", steps=2, eval_every=1)
        assert result.method == "test_descent_on_forget" and result.steps == 2
        with pytest.raises(ValueError, match="registered twice"):
            register_method("test_descent_on_forget")(Relearn)
    finally:
        METHODS._entries.pop("test_descent_on_forget", None)
