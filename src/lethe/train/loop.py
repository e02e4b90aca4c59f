"""The optimizer loop of one slice: fresh AdamW, a per-slice LR schedule, seeded batches.

A slice is a pure function of (starting weights, examples, config, slice seed): the
optimizer and the schedule start fresh at every slice and nothing random is drawn outside
the seeded generators. That is what lets exact replay restore the checkpoint before a slice
and retrain from there bit for bit, and lets `update` build on any version.

The loss is a mean over the label tokens of the *whole* step, wherever they are computed:
each process divides its token-loss sum by the step's global label count (known to every
process from the batch plan, so no communication is needed) and multiplies by the world
size to undo DistributedDataParallel's gradient averaging.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from lethe.data.chat_format import IGNORE_INDEX, pad_batch
from lethe.train import distributed
from lethe.train.config import TrainConfig
from lethe.train.examples import Example
from lethe.train.progress import ProgressEvent
from lethe.train.provenance import ExposureRecorder
from lethe.train.schedule import WarmupCosine, batch_plan

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


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]], lr=config.lr, betas=(config.beta1, config.beta2), eps=1e-8
    )


def step_loss(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], normaliser: float, bf16: bool
) -> tuple[torch.Tensor, float]:
    """(loss to backpropagate, summed token loss) of one padded batch."""
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    with autocast:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    # Shift the labels, not the logits: slicing the (batch x seq x vocab) logits would copy them.
    targets = F.pad(batch["labels"], (0, 1), value=IGNORE_INDEX)[:, 1:]
    token_loss = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return token_loss / normaliser, float(token_loss.detach())


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
    report: Callable[..., None] | None = None,
) -> SliceResult:
    """Train `model` on `examples` for one slice; exposures go to `recorder` at global steps.

    `resume(model, optimizer, scheduler)` restores a mid-slice state in place and returns the
    steps already done; `save_state` is called every `config.save_every` steps (after the
    exposures up to that step are flushed); `report(**fields)` receives step progress.
    """
    torch.manual_seed(seed)
    adapters = None
    if config.lora or config.qlora:
        from lethe.model.adapters import AdapterTraining

        adapters = AdapterTraining(
            model, r=config.lora_r, alpha=config.lora_alpha, seed=seed, quantized=config.qlora, bf16=config.bf16
        )
        model = adapters.model
    model.train()
    optimizer = _optimizer(model, config)
    world, rank = distributed.world_size(), distributed.rank()
    plan = batch_plan(len(examples), config.batch_size, config.epochs, seed, world)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine.for_slice(len(plan), config.warmup_ratio, config.min_lr_ratio)
    )
    first = resume(model, optimizer, scheduler) if resume else 0
    wrapped = distributed.wrap_model(model)
    device = distributed.device()
    labels = [_label_count(e) for e in examples]
    steps_per_epoch = len(plan) // config.epochs if config.epochs else len(plan)
    tokens, started = 0, time.perf_counter()
    epoch_loss, epoch_tokens, epoch_losses = 0.0, 0, []
    for index in range(first, len(plan)):
        batch_ids = plan[index]
        mine = batch_ids[rank::world]
        batch = {k: v.to(device) for k, v in pad_batch([examples[j].as_encoded() for j in mine], pad_token_id).items()}
        global_labels = max(1, sum(labels[j] for j in batch_ids))
        loss, token_loss = step_loss(wrapped, batch, global_labels / world, config.bf16)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step = index + 1
        recorder.add(step_offset + step, {examples[j].document_id for j in mine})
        tokens += sum(len(examples[j]) for j in batch_ids)
        local_labels = max(1, sum(labels[j] for j in mine))
        epoch_loss, epoch_tokens = epoch_loss + token_loss, epoch_tokens + local_labels
        if step % steps_per_epoch == 0 or step == len(plan):
            epoch_losses.append(epoch_loss / max(1, epoch_tokens))
            epoch_loss, epoch_tokens = 0.0, 0
        # A 4-bit model's weights cannot be saved and restored exactly: QLoRA resumes at slice boundaries.
        if save_state is not None and not config.qlora and step % config.save_every == 0 and step < len(plan):
            recorder.flush()
            save_state(model, optimizer, scheduler, step)
        if report is not None:
            elapsed = time.perf_counter() - started
            report(
                step=step,
                steps_total=len(plan),
                first_step=first,
                global_step=step_offset + step,
                loss=token_loss / local_labels,
                lr=lr,
                elapsed=elapsed,
                tokens_per_second=tokens / elapsed if elapsed > 0 else None,
            )
    seconds = time.perf_counter() - started
    adapter = None
    if adapters is not None:
        model, adapter = adapters.finish()
    return SliceResult(
        model=model,
        steps=len(plan),
        examples=len(examples),
        tokens=tokens,
        seconds=seconds,
        epoch_losses=epoch_losses,
        optimizer=optimizer,
        scheduler=scheduler,
        adapter=adapter,
    )


def progress_reporter(callback, **fixed) -> Callable[..., None]:
    """A `report` for `train_slice` that sends `ProgressEvent`s of kind `step` to `callback`."""
    return lambda **fields: callback(ProgressEvent(kind="step", **fixed, **fields))
