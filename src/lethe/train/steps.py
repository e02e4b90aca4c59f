"""The one step engine: every optimizer step lethe takes, training or unlearning, runs here.

A caller says what each step trains on (a `Step`: this process's share of the batch and the
documents in it) and how its loss is computed (a `LossFn`); the engine owns the rest, once:
the device (CUDA, then MPS, else the CPU), the DistributedDataParallel wrap under
`accelerate launch`, bfloat16 autocast on that device, LoRA / QLoRA adapters (PEFT) and
their merge, the AdamW optimizer (`build_optimizer`), the LR schedule, gradient clipping,
exposure recording, cancellation, resume state and progress (`ProgressEvent`). Training
slices pass a token NLL (`lethe.train.loop`); unlearning methods pass their own loss
(`lethe.unlearn.loop`). The engine knows neither: it imports nothing above `train/`.

Everything random is drawn from generators seeded by the caller, and the engine adds no
randomness of its own, so a run is a pure function of its inputs: what makes exact replay
bit-exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from lethe.errors import CancelledError, InputError, LetheError, Where
from lethe.model.lora import LoraSettings, apply_lora, is_4bit, merge_lora, merge_qlora
from lethe.train import distributed
from lethe.train.progress import ProgressEvent

Losses = Mapping[str, torch.Tensor]
"""What a loss callable returns: the step's total under ``"loss"`` (what is backpropagated)
and any named parts, logged with the step's progress."""

LossFn = Callable[[torch.nn.Module, Any], Losses]
"""``loss(model, batch)``: the losses of this process's share of one step. `model` is the
model being trained as the engine runs it (wrapped for DDP, adapters applied)."""


@dataclass(frozen=True)
class Step:
    """One optimizer step, as this process sees it."""

    batch: Any
    """What the loss callable receives: this process's share of the step. Its tensors (also
    inside dicts, lists and tuples) are moved to the engine's device."""
    document_ids: Collection[int] = ()
    """The documents of this process's share: the exposures the step records."""
    tokens: int = 0
    """Non-padding tokens of the whole step, all processes counted (for throughput)."""
    weight: float = 1.0
    """What this process's loss counts for in the step: 0 for a stand-in share
    (`lethe.train.schedule.process_share`), computed only to join the all-reduce."""


@dataclass(frozen=True)
class AdapterSettings:
    """LoRA adapters (PEFT) the engine trains instead of the full weights."""

    lora: LoraSettings = field(default_factory=LoraSettings)
    base_path: str | Path | None = None
    """A 4-bit (QLoRA) model's full-precision base on disk: the adapters are merged into it,
    since merging into 4-bit weights would round the update away."""


@dataclass(frozen=True)
class EngineConfig:
    """How the engine steps. Training and unlearning each map their own config onto it."""

    lr: float
    """Peak learning rate of AdamW (the schedule multiplies it)."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay, on matrices only (never norms or biases)."""
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 0.0
    """Clip the global gradient norm to this value; 0 disables clipping."""
    bf16: bool = False
    """Run the loss under bfloat16 autocast on the device (weights and optimizer stay fp32)."""
    adapters: AdapterSettings | None = None
    """Train LoRA adapters, merged into full weights by `finish`."""
    seed: int = 0
    """Seeds torch before anything else (adapter initialisation, dropout)."""


class Recorder(Protocol):
    """Where exposures go (`lethe.train.exposures.ExposureRecorder`, or any stand-in)."""

    def add(self, step: int, document_ids: Collection[int]) -> None: ...

    def flush(self) -> int: ...


def pick_device() -> torch.device:
    """This process's device: the accelerator's (CUDA, then MPS, else the CPU)."""
    return distributed.device()


def build_optimizer(
    model: torch.nn.Module,
    *,
    lr: float,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; weight decay on matrices only."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas, eps=eps)


def to_device(value: Any, device: torch.device) -> Any:
    """`value` with every tensor in it (through dicts, lists and tuples) on `device`."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {key: to_device(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)) and any(isinstance(item, (torch.Tensor, dict, list)) for item in value):
        return type(value)(to_device(item, device) for item in value)
    return value


def is_cancelled(cancel: Any) -> bool:
    """Whether `cancel` (a `threading.Event`, a `CancelToken`, a callable or None) is set."""
    if cancel is None:
        return False
    if callable(getattr(cancel, "is_set", None)):
        return bool(cancel.is_set())
    if hasattr(cancel, "cancelled"):
        return bool(cancel.cancelled)
    if callable(cancel):
        return bool(cancel())
    raise InputError("cancel must be an Event, a CancelToken or a callable", Where(field="cancel"))


@dataclass
class EngineRun:
    """What `StepEngine.run` did."""

    steps: int = 0
    """Steps done in all (including any done before a resume)."""
    first_step: int = 0
    """Steps already done when this process started (a resume)."""
    tokens: int = 0
    """Non-padding tokens of the steps this process ran, all processes counted."""
    seconds: float = 0.0
    """Wall time of the loop, exposure flushes and saves included."""
    stop_reason: str | None = None
    """Why the run stopped before its planned steps (from the `monitor`), or None."""


Monitor = Callable[[int, torch.nn.Module], tuple[Any, str | None]]
"""``monitor(step, model) -> (metrics, stop_reason)`` after every step: `metrics` (or None)
goes into the step's progress event; a stop reason ends the run after that step."""


class StepEngine:
    """Steps one model with one optimizer and schedule; see the module docstring.

    Construction seeds torch, applies adapters, moves the model to the device and builds the
    optimizer and the schedule; `resume` restores a saved state; `run` takes the steps;
    `finish` merges adapters and returns the plain trained model.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        config: EngineConfig,
        *,
        steps_total: int,
        schedule: Callable[[int], float] | None = None,
    ):
        self.config = config
        self.steps_total = steps_total
        self.device = pick_device()
        torch.manual_seed(config.seed)
        if config.adapters is not None:
            settings = config.adapters.lora
            model = apply_lora(
                model,
                r=settings.r,
                alpha=settings.alpha,
                dropout=settings.dropout,
                target_modules=settings.target_modules,
                seed=config.seed,
            )
        if not is_4bit(model):  # bitsandbytes places 4-bit weights when it loads them
            model = model.to(self.device)
        model.train()
        self.model = model
        """The model being trained (adapters applied), unwrapped."""
        self.optimizer = build_optimizer(
            model, lr=config.lr, weight_decay=config.weight_decay, betas=config.betas, eps=config.eps
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule or constant_lr)
        self.done = 0
        """Steps done so far."""
        self._wrapped: torch.nn.Module | None = None

    # ------------------------------------------------------------------ state

    @property
    def parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    @property
    def wrapped(self) -> torch.nn.Module:
        """The model as the loss sees it: DistributedDataParallel when several processes run.

        Wrapped on first use, so that a resumed state is loaded into the plain model first.
        """
        if self._wrapped is None:
            self._wrapped = distributed.wrap_model(self.model)
        return self._wrapped

    def resume(self, restore: Callable[[torch.nn.Module, torch.optim.Optimizer, object], int]) -> None:
        """``restore(model, optimizer, scheduler)`` loads a saved state in place and returns
        the steps it had done; the run continues after them."""
        self.done = restore(self.model, self.optimizer, self.scheduler)

    def autocast(self) -> AbstractContextManager:
        """bfloat16 autocast on the engine's device when `bf16` is set, else nothing."""
        if not self.config.bf16:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    # ------------------------------------------------------------------ the steps

    def run(
        self,
        draw: Callable[[int], Step],
        loss: LossFn,
        *,
        recorder: Recorder | None = None,
        step_offset: int = 0,
        cancel: Any = None,
        what: str = "training",
        report: Callable[[ProgressEvent], None] | None = None,
        event: Mapping[str, Any] | None = None,
        monitor: Monitor | None = None,
        save_state: Callable[[torch.nn.Module, torch.optim.Optimizer, object, int], None] | None = None,
        save_every: int = 0,
        on_step: Callable[[int, Step, Mapping[str, float]], None] | None = None,
    ) -> EngineRun:
        """Take the steps after `self.done` up to `steps_total`.

        `draw(index)` gives step `index` (0-based). Exposures go to `recorder` at step
        ``step_offset + step``; `cancel` is checked before every step (`CancelledError`);
        `report` receives one `ProgressEvent` per step with the fields of `event`;
        `save_state(model, optimizer, scheduler, step)` runs every `save_every` steps before
        the last, after the exposures up to that step are flushed; `on_step(step, step_data,
        losses)` sees every step's logged losses.
        """
        run = EngineRun(first_step=self.done)
        started = time.perf_counter()
        fixed = dict(event or {})
        while self.done < self.steps_total:
            if self._cancelled(cancel):
                raise CancelledError(f"{what} cancelled after {self.done} of {self.steps_total} steps")
            current = draw(self.done)
            lr = self.optimizer.param_groups[0]["lr"]
            logged = self.step(current, loss, what=what)
            self.done += 1
            step = self.done
            if recorder is not None:
                recorder.add(step_offset + step, current.document_ids)
            run.tokens += current.tokens
            if on_step is not None:
                on_step(step, current, logged)
            metrics, stop = monitor(step, self.model) if monitor is not None else (None, None)
            if save_state is not None and save_every and step % save_every == 0 and step < self.steps_total:
                if recorder is not None:
                    recorder.flush()
                save_state(self.model, self.optimizer, self.scheduler, step)
            if report is not None:
                elapsed = time.perf_counter() - started
                report(
                    ProgressEvent(
                        **{"kind": "step", **fixed},
                        step=step,
                        steps_total=self.steps_total,
                        first_step=run.first_step,
                        global_step=step_offset + step,
                        losses=dict(logged),
                        lr=lr,
                        elapsed=elapsed,
                        tokens_per_second=run.tokens / elapsed if elapsed > 0 and run.tokens else None,
                        metrics=metrics,
                    )
                )
            if stop:
                run.stop_reason = stop
                break
        run.steps = self.done
        run.seconds = time.perf_counter() - started
        return run

    def step(self, current: Step, loss: LossFn, *, what: str = "training") -> dict[str, float]:
        """One optimizer step on `current`; returns its logged losses as floats."""
        batch = to_device(current.batch, self.device)
        with self.autocast():
            losses = loss(self.wrapped, batch)
        if current.weight != 1.0:
            losses = {**losses, "loss": losses["loss"] * current.weight}
        total = losses["loss"]
        if not torch.isfinite(total.detach()):
            raise LetheError(f"the {what} loss became {float(total)} at step {self.done + 1}; lower the lr")
        total.backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {
            name: float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
            for name, value in losses.items()
        }

    def _cancelled(self, cancel: Any) -> bool:
        if cancel is None:
            return False
        flag = is_cancelled(cancel) if distributed.is_main_process() else False
        # Every process must stop at the same step, or the others wait forever in DDP.
        return bool(distributed.broadcast(flag))

    # ------------------------------------------------------------------ the end

    def finish(self) -> torch.nn.Module:
        """The trained model: unwrapped, adapters merged into full weights."""
        model = self.model
        if self.config.adapters is not None:
            if is_4bit(model):
                if self.config.adapters.base_path is None:
                    raise LetheError("a QLoRA run needs its full-precision base_path to merge into")
                model = merge_qlora(model, self.config.adapters.base_path)
            else:
                model = merge_lora(model)  # the model merge_and_unload() returns, not the wrapper
        return model


def constant_lr(_step: int) -> float:
    return 1.0
