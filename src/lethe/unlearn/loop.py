"""The one loop every approximate unlearning method runs in, and `run_unlearning`.

Each step draws a forget batch and a retain batch (only those the method uses) in an order
fixed by `config.seed` (`lethe.train.schedule.batch_stream`, as training draws its batches)
and hands the method's loss to the step engine (`lethe.train.steps`), which owns the
device, DDP, bf16, LoRA and its merge, AdamW, the warm-up, clipping, exposures,
cancellation and progress. The documents of every step are logged (`UnlearnResult.draws`)
so the ledger can record the run's exposures; progress goes to one callback as
`ProgressEvent`s of kind `unlearn`; quick metrics every `eval_every` steps decide early
stopping. With `config.lora` the model trains a LoRA adapter that is merged at the end, and
the model `merge_and_unload()` returns is the result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from lethe.errors import InputError, LetheError, Where
from lethe.model.lora import LoraSettings
from lethe.train import distributed
from lethe.train.progress import ProgressCallback, ProgressEvent
from lethe.train.schedule import WarmupConstant, batch_stream, epoch_batches, process_share
from lethe.train.slices import derive_seed
from lethe.train.steps import AdapterSettings, EngineConfig, Losses, Recorder, Step, StepEngine
from lethe.unlearn.base import UnlearnMethod, frozen_copy, get_method
from lethe.unlearn.batches import UnlearnExample, check_examples, collate
from lethe.unlearn.config import UnlearnConfig
from lethe.unlearn.progress import QuickMetrics, quick_metrics
from lethe.unlearn.result import BatchDraw, UnlearnResult


def run_unlearning(
    method: str,
    model: torch.nn.Module,
    tokenizer: Any,
    forget_examples: Sequence[UnlearnExample],
    retain_examples: Sequence[UnlearnExample],
    config: UnlearnConfig,
    *,
    reference_model: torch.nn.Module | None = None,
    callback: ProgressCallback | None = None,
    cancel: Any = None,
    token_weights: Sequence[Any] | None = None,
    recorder: Recorder | None = None,
) -> UnlearnResult:
    """Unlearn `forget_examples` from `model` with the method registered as `method`.

    `model` is trained in place (pass a copy to keep the original); `distill` leaves it alone
    and returns a new student. `reference_model` is the frozen original for the methods that
    compare against one (`kl`, `npo`, `dpo_idk`); by default a copy of `model` is taken before
    the first step. `cancel` is a `threading.Event`, a `CancelToken` or a callable returning
    True to stop: the loop raises `CancelledError` before its next step. `token_weights`
    (`impact_ga`) holds one weight sequence per forget example, aligned with its labels.
    `recorder` (e.g. an `ExposureRecorder`) receives every step's forget and retain documents,
    as each process trained on them; `UnlearnResult.draws` holds them for the whole step.

    Under `accelerate launch` every process calls this with the same arguments: each takes
    its share of every forget and retain batch and DistributedDataParallel averages the
    gradients, so the processes end with the same weights.
    """
    method_class = get_method(method)
    runner = method_class(config, tokenizer, pad_token_id=_pad_token_id(tokenizer, model))
    if config.sam_rho > 0:
        from lethe.unlearn.sam import sharpness_aware

        runner = sharpness_aware(runner)
    return unlearn_loop(
        runner,
        model,
        forget_examples,
        retain_examples,
        reference_model=reference_model,
        callback=callback,
        cancel=cancel,
        token_weights=token_weights,
        recorder=recorder,
    )


def unlearn_version(
    path: str,
    method: str,
    forget_examples: Sequence[UnlearnExample],
    retain_examples: Sequence[UnlearnExample],
    config: UnlearnConfig,
    **keywords: Any,
) -> UnlearnResult:
    """`run_unlearning` on the model saved at `path`, with a second copy of it as the reference
    (for the methods that use one).

    Takes only picklable arguments, so that the main process can hand it to every process
    (`lethe.train.distributed.run_everywhere`) under `accelerate launch`.
    """
    from lethe.model.io import load_version

    model, tokenizer = load_version(path)
    reference = load_version(path)[0] if get_method(method).needs_reference else None
    return run_unlearning(
        method, model, tokenizer, forget_examples, retain_examples, config, reference_model=reference, **keywords
    )


def unlearn_loop(
    method: UnlearnMethod,
    model: torch.nn.Module,
    forget_examples: Sequence[UnlearnExample],
    retain_examples: Sequence[UnlearnExample],
    *,
    reference_model: torch.nn.Module | None = None,
    callback: ProgressCallback | None = None,
    cancel: Any = None,
    token_weights: Sequence[Any] | None = None,
    recorder: Recorder | None = None,
) -> UnlearnResult:
    """Run `method`'s loss in the step engine; see `run_unlearning`."""
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
    world, rank = distributed.world_size(), distributed.rank()
    forget_train = method.prepare_forget(forget) if method.uses_forget else []
    forget_seed, retain_seed = derive_seed(config.seed, "forget"), derive_seed(config.seed, "retain")
    forget_draws = batch_stream(len(forget_train), config.forget_batch_size, forget_seed)
    retain_draws = batch_stream(len(retain), config.retain_batch_size, retain_seed)
    if config.steps is not None:
        steps_total = config.steps
    elif method.uses_forget:
        steps_total = config.epochs * len(epoch_batches(len(forget_train), config.forget_batch_size, forget_seed, 0))
    else:
        steps_total = config.epochs * len(epoch_batches(len(retain), config.retain_batch_size, retain_seed, 0))

    if method.needs_reference:
        method.reference = reference_model if reference_model is not None else frozen_copy(model)
        method.reference.eval()
    engine = StepEngine(
        method.model_to_train(model),
        engine_config(config),
        steps_total=steps_total,
        schedule=WarmupConstant(config.warmup_steps),
    )
    method.place(engine.device)
    trained = engine.model
    method.setup(trained)

    pad_id, eval_size = method.pad_token_id, config.eval_max_examples
    forget_eval, retain_eval = forget[:eval_size], retain[:eval_size]

    result = UnlearnResult(model=trained, method=method.name, steps=0, wall_time=0.0)

    def metrics_now() -> QuickMetrics:
        began = time.perf_counter()
        with engine.autocast():  # at the precision the steps run in
            metrics = quick_metrics(trained, forget_eval, retain_eval, pad_id, config.forget_batch_size)
        result.monitor_seconds += time.perf_counter() - began
        return metrics

    if config.eval_every:
        result.initial_metrics = metrics_now()

    def draw(index: int) -> Step:
        forget_rows = [forget_train[i] for i in next(forget_draws)] if method.uses_forget else []
        retain_rows = [retain[i] for i in next(retain_draws)] if method.uses_retain else []
        result.draws.append(
            BatchDraw(
                index + 1,
                tuple(int(row["document_id"]) for row in forget_rows),
                tuple(int(row["document_id"]) for row in retain_rows),
            )
        )
        # Each process's share of each batch; one with no rows of a batch smaller than the
        # world recomputes one of them (a stand-in at full weight: the losses are means over
        # each process's rows, so a batch of one row gives the one-process gradient exactly).
        forget_mine = [forget_rows[i] for i in process_share(range(len(forget_rows)), rank, world).rows]
        retain_mine = [retain_rows[i] for i in process_share(range(len(retain_rows)), rank, world).rows]
        batch = {
            "forget": method.forget_batch(forget_mine) if forget_mine else None,
            "retain": collate(retain_mine, pad_id) if retain_mine else None,
        }
        documents = [int(row["document_id"]) for row in (*forget_mine, *retain_mine)]
        tokens = sum(len(row["input_ids"]) for row in (*forget_rows, *retain_rows))
        return Step(batch, documents, tokens)

    def loss(model_: torch.nn.Module, batch: dict) -> Losses:
        return method.loss(model_, batch["forget"], batch["retain"])

    def monitor(step: int, _model: torch.nn.Module) -> tuple[QuickMetrics | None, str | None]:
        due = config.eval_every and (step % config.eval_every == 0 or step == steps_total)
        metrics = metrics_now() if due else None
        return metrics, early_stop_reason(config, metrics)

    def report(event: ProgressEvent) -> None:
        result.history.append(event)
        result.steps = event.step
        if callback is not None:
            callback(event)

    try:
        run = engine.run(
            draw,
            loss,
            recorder=recorder,
            cancel=cancel,
            what="unlearning",
            report=report,
            event={"kind": "unlearn"},
            monitor=monitor,
        )
    finally:
        method.teardown(trained)
    if recorder is not None:
        recorder.flush()
    trained = engine.finish()
    trained.eval()
    if world > 1:  # every process must end with the same weights; a mismatch is a bug worth failing on
        checksums = distributed.gather([distributed.parameter_checksum(trained)])
        if len(set(checksums)) != 1:
            raise LetheError(f"processes disagree on the unlearned weights: {checksums}")
    result.model = trained
    result.steps = run.steps
    result.stop_reason = run.stop_reason
    result.wall_time = time.perf_counter() - started
    return result


def engine_config(config: UnlearnConfig) -> EngineConfig:
    """The step engine's settings for an unlearning run with `config`."""
    adapters = None
    if config.lora:
        adapters = AdapterSettings(LoraSettings(r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout))
    return EngineConfig(
        lr=config.lr,
        weight_decay=config.weight_decay,
        grad_clip=config.grad_clip,
        bf16=config.bf16,
        adapters=adapters,
        seed=config.seed,
    )


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


def _pad_token_id(tokenizer: Any, model: torch.nn.Module) -> int:
    for source in (tokenizer, getattr(model, "config", None)):
        pad = getattr(source, "pad_token_id", None)
        if pad is not None:
            return int(pad)
    return 0  # padded positions are masked out of attention and labels anyway


def _with_token_weights(
    examples: Sequence[UnlearnExample], token_weights: Sequence[Any] | None
) -> list[UnlearnExample]:
    if token_weights is None:
        return list(examples)
    if len(token_weights) != len(examples):
        raise InputError(
            f"{len(token_weights)} token weight sequences for {len(examples)} forget examples",
            Where(field="token_weights"),
        )
    return [{**example, "token_weights": weights} for example, weights in zip(examples, token_weights)]
