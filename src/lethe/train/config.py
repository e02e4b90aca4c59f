"""The hyperparameters of training: one `TrainConfig` per run, copied into every slice.

A slice's config (this dataclass as a dict, plus the slice's own seed) is recorded in the
ledger with the slice, so exact replay retrains it with the same settings years later even if
the defaults here change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from lethe.errors import InputError, Where

TASKS = ("auto", "pretrain", "sft")


@dataclass
class TrainConfig:
    """How one slice is trained. Every field is recorded with the slice it trained."""

    task: str = "auto"
    """`pretrain` (every document as plain text, loss on all tokens), `sft` (QA and chat as
    chat turns, loss on assistant tokens only) or `auto` (text documents pretrain, QA and chat
    documents SFT)."""
    cumulative: bool = False
    """SISA-style cumulative slices (Bourtoule et al. 2021, one shard): slice i trains on the
    documents of slices 0..i of the lineage, not only its own, so later slices keep rehearsing
    what earlier ones taught. The ledger still records each slice's own documents as its plan
    (and replay retrains from the first slice holding a forgotten document); exposures record
    what every step really trained on. Costs more steps per slice as the lineage grows."""
    epochs: int = 1
    """Passes over the slice's examples; each epoch is reshuffled from the slice seed."""
    lr: float = 1e-3
    """Peak learning rate of AdamW, reached after warm-up."""
    min_lr_ratio: float = 0.1
    """The cosine decay ends at `lr * min_lr_ratio` on the slice's last step."""
    warmup_ratio: float = 0.05
    """Fraction of the slice's steps spent warming up linearly from zero (at least one step)."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay (applied to matrices only, not norms or biases)."""
    beta1: float = 0.9
    """AdamW first-moment decay."""
    beta2: float = 0.95
    """AdamW second-moment decay."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 disables clipping."""
    batch_size: int = 16
    """Examples per optimizer step, over all processes together (the effective batch): the
    same steps, and so the same exposures, whatever the number of processes."""
    seq_len: int = 256
    """Longest training sequence in tokens; text documents are cut into windows this long."""
    stride: int | None = None
    """Step between text window starts; `None` means `seq_len` (no overlap)."""
    bf16: bool = False
    """Run forward and backward under bfloat16 autocast on the CPU (weights stay fp32)."""
    lora: bool = False
    """Train LoRA adapters instead of all weights; they are merged after every slice."""
    lora_r: int = 8
    """LoRA rank (with `lora`)."""
    lora_alpha: float = 16.0
    """LoRA scale numerator (with `lora`)."""
    qlora: bool = False
    """QLoRA: train the LoRA adapters on a 4-bit NF4 copy of the weights (bitsandbytes) and merge
    them into the full-precision weights after every slice. Resumes at slice boundaries only."""
    save_every: int = 200
    """Write the resume state every this many optimizer steps (and at every slice end)."""
    seed: int = 0
    """The run's seed: model initialisation, the slice plan and every slice seed derive from it."""
    system_prompt: str | None = None
    """System turn prepended to every QA example (None: no system turn)."""

    def __post_init__(self) -> None:
        checks = [
            (self.task in TASKS, "task", f"must be one of {', '.join(TASKS)}"),
            (self.epochs >= 1, "epochs", "must be at least 1"),
            (self.lr > 0, "lr", "must be positive"),
            (0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)"),
            (self.batch_size >= 1, "batch_size", "must be at least 1"),
            (self.seq_len >= 8, "seq_len", "must be at least 8"),
            (self.grad_clip >= 0, "grad_clip", "must be >= 0"),
            (self.save_every >= 1, "save_every", "must be at least 1"),
            (self.lora_r >= 1, "lora_r", "must be at least 1"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise InputError(f"{name}={getattr(self, name)!r} {message}", Where(field=name))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from a recorded dict; unknown keys (e.g. a slice's own seed) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with the given fields changed; `None` values mean "keep"."""
        values = self.to_dict()
        values.update({k: v for k, v in changes.items() if v is not None})
        return TrainConfig.from_dict(values)


def lineage_config(ledger: Any, lineage_id: int | None) -> TrainConfig:
    """The settings a lineage's latest slice was trained with (defaults when it has none):
    how its documents become examples, for unlearning, scoring and token impact alike."""
    plan = ledger.slices(lineage_id) if lineage_id is not None else []
    return TrainConfig.from_dict(plan[-1][0].config) if plan else TrainConfig()
