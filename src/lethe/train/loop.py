"""The optimizer loop of one slice: the step engine with a token NLL, over seeded batches.

A slice is a pure function of (starting weights, examples, config, slice seed): the
optimizer and the schedule start fresh at every slice and nothing random is drawn outside
the seeded generators. That is what lets exact replay restore the checkpoint before a slice
and retrain from there bit for bit, and lets `update` build on any version. Device, DDP,
bf16, LoRA, optimizer, clipping, exposures and resume are the step engine's
(`lethe.train.steps`); this module says what a slice trains on and what its loss is.

The loss is a mean over the label tokens of the *whole* step, wherever they are computed:
each process divides its token-loss sum by the step's global label count (known to every
process from the batch plan, so no communication is needed) and multiplies by the world
size to undo DistributedDataParallel's gradient averaging. A process left without rows by
a batch smaller than the world computes a stand-in row at zero weight
(`lethe.train.schedule.process_share`), so the gradients are the one-process ones whatever
the number of processes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from lethe.data.chat_format import IGNORE_INDEX, pad_batch
from lethe.model.adapters import capture_adapter
from lethe.model.lora import LoraSettings
from lethe.train import distributed
from lethe.train.config import TrainConfig
from lethe.train.examples import Example
from lethe.train.exposures import ExposureRecorder
from lethe.train.progress import ProgressEvent
from lethe.train.schedule import WarmupCosine, batch_plan, process_share
from lethe.train.steps import AdapterSettings, EngineConfig, Step, StepEngine

SaveState = Callable[[torch.nn.Module, torch.optim.Optimizer, object, int], None]
"""Called (on every process) with model, optimizer, scheduler and steps done in the slice."""


@dataclass
class SliceResult:
    """What training one slice produced."""

    model: torch.nn.Module
    """The trained model, unwrapped (and with LoRA adapters merged)."""
    steps: int
    """Optimizer steps of the slice (including any done before a resume)."""
    examples: int
    tokens: int
    """Non-padding tokens this process trained on after any resume, all processes counted."""
    seconds: float
    """Wall time of the optimizer loop after any resume, exposure flushes and saves included."""
    epoch_losses: list[float] = field(default_factory=list)
    """Mean step loss of each epoch (this process's share; complete epochs only)."""
    optimizer: torch.optim.Optimizer | None = None
    scheduler: object | None = None
    adapter: object | None = None
    """The LoRA/QLoRA adapter of the slice (`lethe.model.adapters.Adapter`), before merging."""


def _label_count(example: Example) -> int:
    return sum(1 for label in example.labels[1:] if label != IGNORE_INDEX)


def engine_config(config: TrainConfig, seed: int, qlora_base: Path | None = None) -> EngineConfig:
    """The step engine's settings for a slice trained with `config` and `seed` (`qlora_base`:
    the full-precision weights a QLoRA adapter is merged into)."""
    adapters = (
        AdapterSettings(LoraSettings(r=config.lora_r, alpha=config.lora_alpha), base_path=qlora_base)
        if config.lora or config.qlora
        else None
    )
    return EngineConfig(
        lr=config.lr,
        weight_decay=config.weight_decay,
        betas=(config.beta1, config.beta2),
        eps=1e-8,
        grad_clip=config.grad_clip,
        bf16=config.bf16,
        adapters=adapters,
        seed=seed,
    )


def token_nll(model: torch.nn.Module, batch: dict) -> dict[str, torch.Tensor]:
    """The training loss: summed token NLL of the padded batch over `batch["normaliser"]`."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    # Shift the labels, not the logits: slicing the (batch x seq x vocab) logits would copy them.
    targets = F.pad(batch["labels"], (0, 1), value=IGNORE_INDEX)[:, 1:]
    token_loss = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return {"loss": token_loss / batch["normaliser"]}


def train_slice(
    model: torch.nn.Module,
    examples: Sequence[Example],
    config: TrainConfig,
    seed: int,
    *,
    pad_token_id: int,
    recorder: ExposureRecorder,
    step_offset: int = 0,
    resume: Callable[[torch.nn.Module, torch.optim.Optimizer, object], int] | None = None,
    save_state: SaveState | None = None,
    report: Callable[[ProgressEvent], None] | None = None,
    event: dict | None = None,
) -> SliceResult:
    """Train `model` on `examples` for one slice; exposures go to `recorder` at global steps.

    `resume(model, optimizer, scheduler)` restores a mid-slice state in place and returns the
    steps already done; `save_state` is called every `config.save_every` steps (after the
    exposures up to that step are flushed); `report` receives a `ProgressEvent` per step,
    with the fields of `event` (the slice's place in its job).
    """
    if config.qlora:
        from lethe.model.adapters import quantized_start

        with quantized_start(model, bf16=config.bf16) as (quantized, full_precision):
            # A 4-bit model's weights cannot be saved and restored exactly: QLoRA resumes at slice boundaries.
            return _train_slice(
                quantized,
                examples,
                config,
                seed,
                pad_token_id,
                recorder,
                step_offset,
                resume,
                None,
                report,
                event,
                qlora_base=full_precision,
            )
    return _train_slice(
        model, examples, config, seed, pad_token_id, recorder, step_offset, resume, save_state, report, event
    )


def _train_slice(
    model,
    examples,
    config,
    seed,
    pad_token_id,
    recorder,
    step_offset,
    resume,
    save_state,
    report,
    event,
    *,
    qlora_base: Path | None = None,
) -> SliceResult:
    world, rank = distributed.world_size(), distributed.rank()
    plan = batch_plan(len(examples), config.batch_size, config.epochs, seed)
    schedule = WarmupCosine.for_slice(len(plan), config.warmup_ratio, config.min_lr_ratio)
    engine = StepEngine(model, engine_config(config, seed, qlora_base), steps_total=len(plan), schedule=schedule)
    if resume is not None:
        engine.resume(resume)
    labels = [_label_count(e) for e in examples]

    def draw(index: int) -> Step:
        batch_ids = plan[index]
        share = process_share(batch_ids, rank, world)
        batch = pad_batch([examples[j].as_encoded() for j in share.rows], pad_token_id)
        batch["normaliser"] = max(1, sum(labels[j] for j in batch_ids)) / world
        # A stand-in share (a batch smaller than the world) counts for nothing: zero loss
        # weight, no exposures, no tokens in the epoch's mean.
        batch["local_labels"] = 0 if share.stand_in else max(1, sum(labels[j] for j in share.rows))
        documents = set() if share.stand_in else {examples[j].document_id for j in share.rows}
        tokens = sum(len(examples[j]) for j in batch_ids)
        return Step(batch, documents, tokens, weight=0.0 if share.stand_in else 1.0)

    steps_per_epoch = len(plan) // config.epochs if config.epochs else len(plan)
    epoch = {"loss": 0.0, "tokens": 0}
    epoch_losses: list[float] = []

    def on_step(step: int, current: Step, losses) -> None:
        epoch["loss"] += losses["loss"] * current.batch["normaliser"]
        epoch["tokens"] += current.batch["local_labels"]
        if step % steps_per_epoch == 0 or step == len(plan):
            epoch_losses.append(epoch["loss"] / max(1, epoch["tokens"]))
            epoch["loss"], epoch["tokens"] = 0.0, 0

    run = engine.run(
        draw,
        token_nll,
        recorder=recorder,
        step_offset=step_offset,
        report=report,
        event=event,
        save_state=save_state,
        save_every=config.save_every,
        on_step=on_step,
    )
    adapter = capture_adapter(engine.model) if engine.config.adapters is not None else None
    return SliceResult(
        model=engine.finish(),
        steps=len(plan),
        examples=len(examples),
        tokens=run.tokens,
        seconds=run.seconds,
        epoch_losses=epoch_losses,
        optimizer=engine.optimizer,
        scheduler=engine.scheduler,
        adapter=adapter,
    )
