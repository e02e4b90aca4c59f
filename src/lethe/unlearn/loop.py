"""The one loop every approximate unlearning method runs in, and `run_unlearning`.

Each step draws a forget batch and a retain batch (only those the method uses) in an order
fixed by `config.seed`, asks the method for its loss, and steps AdamW. The documents of every
step are logged (`UnlearnResult.draws`) so the ledger can record the run's exposures; progress
goes to one callback; a cancel flag is honoured before every step; quick metrics every
`eval_every` steps decide early stopping. With `config.lora` the model trains a LoRA adapter
that is merged at the end, and the model `merge_and_unload()` returns is the result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from lethe.errors import CancelledError, InputError, LetheError, Where
from lethe.unlearn.base import UnlearnMethod, frozen_copy, get_method
from lethe.unlearn.batches import BatchSampler, Example, check_examples, collate
from lethe.unlearn.config import UnlearnConfig
from lethe.unlearn.progress import ProgressCallback, QuickMetrics, UnlearnProgress, quick_metrics
from lethe.unlearn.result import BatchDraw, UnlearnResult


def run_unlearning(
    method: str,
    model: torch.nn.Module,
    tokenizer: Any,
    forget_examples: Sequence[Example],
    retain_examples: Sequence[Example],
    config: UnlearnConfig,
    *,
    reference_model: torch.nn.Module | None = None,
    callback: ProgressCallback | None = None,
    cancel: Any = None,
    token_weights: Sequence[Any] | None = None,
) -> UnlearnResult:
    """Unlearn `forget_examples` from `model` with the method registered as `method`.

    `model` is trained in place (pass a copy to keep the original); `distill` leaves it alone
    and returns a new student. `reference_model` is the frozen original for the methods that
    compare against one (`kl`, `npo`, `dpo_idk`); by default a copy of `model` is taken before
    the first step. `cancel` is a `threading.Event`, a `CancelToken` or a callable returning
    True to stop: the loop raises `CancelledError` before its next step. `token_weights`
    (`impact_ga`) holds one weight sequence per forget example, aligned with its labels.
    """
    method_class = get_method(method)
    runner = method_class(config, tokenizer, pad_token_id=_pad_token_id(tokenizer, model))
    if config.sam_rho > 0:
        from lethe.unlearn.sam import sharpness_aware

        runner = sharpness_aware(runner)
    return runner.run(
        model,
        forget_examples,
        retain_examples,
        reference_model=reference_model,
        callback=callback,
        cancel=cancel,
        token_weights=token_weights,
    )


def train_loop(
    method: UnlearnMethod,
    model: torch.nn.Module,
    forget_examples: Sequence[Example],
    retain_examples: Sequence[Example],
    *,
    reference_model: torch.nn.Module | None = None,
    callback: ProgressCallback | None = None,
    cancel: Any = None,
    token_weights: Sequence[Any] | None = None,
) -> UnlearnResult:
    """Run `method` over the shared loop; see `run_unlearning`."""
    config = method.config
    started = time.perf_counter()
    forget = _with_token_weights(forget_examples, token_weights)
    retain = list(retain_examples)
    check_examples(forget, "forget")
    check_examples(retain, "retain")
    for uses, examples, name in (
        (method.uses_forget, forget, "forget"),
        (method.uses_retain, retain, "retain"),
    ):
        if uses and not examples:
            raise InputError(f"method {method.name!r} needs {name} examples and got none", Where(field=name))

    torch.manual_seed(config.seed)
    forget_train = method.prepare_forget(forget) if method.uses_forget else []
    forget_draws = iter(BatchSampler(len(forget_train), config.forget_batch_size, _generator(config.seed)))
    retain_sampler = BatchSampler(len(retain), config.retain_batch_size, _generator(config.seed + 1))
    retain_draws = iter(retain_sampler)
    if config.steps is not None:
        steps_total = config.steps
    elif method.uses_forget:
        steps_total = config.epochs * -(-len(forget_train) // config.forget_batch_size)
    else:
        steps_total = config.epochs * retain_sampler.batches_per_epoch()

    if method.needs_reference:
        method.reference = reference_model if reference_model is not None else frozen_copy(model)
        method.reference.eval()
    trained = method.model_to_train(model)
    if config.lora:
        from lethe.model.lora import apply_lora

        trained = apply_lora(
            trained,
            r=config.lora_r,
            alpha=config.lora_alpha,
            dropout=config.lora_dropout,
            seed=config.seed,
        )
    trained.train()
    method.setup(trained)
    parameters = [p for p in trained.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)

    pad_id, eval_size = method.pad_token_id, config.eval_max_examples
    forget_eval, retain_eval = forget[:eval_size], retain[:eval_size]

    def metrics_now() -> QuickMetrics:
        return quick_metrics(trained, forget_eval, retain_eval, pad_id, config.forget_batch_size)

    result = UnlearnResult(model=trained, method=method.name, steps=0, wall_time=0.0)
    if config.eval_every:
        result.initial_metrics = metrics_now()
    try:
        for step in range(1, steps_total + 1):
            if _is_cancelled(cancel):
                raise CancelledError(f"unlearning cancelled after {step - 1} of {steps_total} steps")
            forget_rows = [forget_train[i] for i in next(forget_draws)] if method.uses_forget else []
            retain_rows = [retain[i] for i in next(retain_draws)] if method.uses_retain else []
            lr = config.lr * min(1.0, step / config.warmup_steps) if config.warmup_steps else config.lr
            for group in optimizer.param_groups:
                group["lr"] = lr
            losses = method.loss(
                trained,
                method.forget_batch(forget_rows) if forget_rows else None,
                collate(retain_rows, pad_id) if retain_rows else None,
            )
            total = losses["loss"]
            if not torch.isfinite(total):
                raise LetheError(f"the {method.name} loss became {float(total)} at step {step}; lower the lr")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
            optimizer.step()
            result.draws.append(
                BatchDraw(
                    step,
                    tuple(int(row["document_id"]) for row in forget_rows),
                    tuple(int(row["document_id"]) for row in retain_rows),
                )
            )
            due = config.eval_every and (step % config.eval_every == 0 or step == steps_total)
            record = UnlearnProgress(
                step=step,
                steps_total=steps_total,
                losses={name: float(value.detach()) for name, value in losses.items()},
                lr=lr,
                elapsed=time.perf_counter() - started,
                metrics=metrics_now() if due else None,
            )
            result.history.append(record)
            result.steps = step
            if callback is not None:
                callback(record)
            result.stop_reason = early_stop_reason(config, record.metrics)
            if result.stop_reason:
                break
    finally:
        method.teardown(trained)
    if config.lora:
        from lethe.model.lora import merge_lora

        trained = merge_lora(trained)  # the model merge_and_unload() returns, not the wrapper
    trained.eval()
    result.model = trained
    result.wall_time = time.perf_counter() - started
    return result


def early_stop_reason(config: UnlearnConfig, metrics: QuickMetrics | None) -> str | None:
    """The first early-stop condition `metrics` meet, by its config field name."""
    if metrics is None:
        return None
    if config.forget_loss_target is not None and metrics.forget_loss >= config.forget_loss_target:
        return "forget_loss_target"
    if config.forget_accuracy_target is not None and metrics.forget_accuracy <= config.forget_accuracy_target:
        return "forget_accuracy_target"
    if config.retain_accuracy_floor is not None and metrics.retain_accuracy < config.retain_accuracy_floor:
        return "retain_accuracy_floor"
    return None


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pad_token_id(tokenizer: Any, model: torch.nn.Module) -> int:
    for source in (tokenizer, getattr(model, "config", None)):
        pad = getattr(source, "pad_token_id", None)
        if pad is not None:
            return int(pad)
    return 0  # padded positions are masked out of attention and labels anyway


def _with_token_weights(examples: Sequence[Example], token_weights: Sequence[Any] | None) -> list[Example]:
    if token_weights is None:
        return list(examples)
    if len(token_weights) != len(examples):
        raise InputError(
            f"{len(token_weights)} token weight sequences for {len(examples)} forget examples",
            Where(field="token_weights"),
        )
    return [{**example, "token_weights": weights} for example, weights in zip(examples, token_weights)]


def _is_cancelled(cancel: Any) -> bool:
    if cancel is None:
        return False
    if callable(getattr(cancel, "is_set", None)):
        return bool(cancel.is_set())
    if hasattr(cancel, "cancelled"):
        return bool(cancel.cancelled)
    if callable(cancel):
        return bool(cancel())
    raise InputError("cancel must be an Event, a CancelToken or a callable", Where(field="cancel"))
