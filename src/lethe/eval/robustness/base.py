"""What a robustness probe is, what it is given, and the registry that finds probes by name.

A probe attacks a model the way published attacks undo approximate unlearning (relearning,
quantisation, rephrasing, sampling) and measures the forget set again. It never judges a
model alone: the runner (`lethe.eval.robustness.runner`) applies the same attack, with the
same seed, to the candidate, to the exact model and to the target, so a reader sees how far
the candidate is from what retraining would give under that attack.

A probe returns ``{variant: {metric: value}}`` (e.g. ``{"int8": {...}, "int4": {...}}``);
the runner stores each variant as an evaluation split ``<probe>/<variant>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, TypeVar

from lethe.errors import InputError, Where
from lethe.registry import Registry

Metrics = dict[str, float]


@dataclass
class ProbeConfig:
    """How the robustness probes attack and measure (recorded with their evaluations)."""

    probes: tuple[str, ...] | None = None
    """The probes to run by name; `None` runs every registered one."""
    max_items: int = 64
    """Forget questions measured per probe (a seeded sample when there are more)."""
    max_new_tokens: int = 48
    """Longest greedy or sampled answer, in tokens."""
    batch_size: int = 16
    """Sequences per forward pass and per generation batch."""
    system_prompt: str | None = None
    """System turn before each question: the one the model was trained with."""
    seed: int = 0
    """Seeds every sample, split and fine-tuning run, the same for every model attacked."""
    relearn_steps: tuple[int, ...] = (10, 50)
    """`relearning`: optimizer steps of each fine-tuning attack."""
    relearn_lr: float = 1e-4
    """`relearning`: AdamW learning rate of the attack (constant, no warm-up). The models
    here are trained at 1e-3–3e-3, so 1e-4 is a light touch: Łucki et al. and Deeb & Roger
    relearn 7B models at 1e-5–1e-6, a similar fraction of their training rate."""
    relearn_batch_size: int = 4
    """`relearning`: examples per step."""
    relearn_forget_share: float = 0.1
    """`relearning`: the share of the forget set (at least one document) the attacker
    fine-tunes on; the forget metrics are then read on the rest."""
    quant_bits: tuple[int, ...] = (8, 4)
    """`quantisation`: bit widths (bitsandbytes LLM.int8 and NF4 on every linear layer but
    the output head)."""
    samples: int = 8
    """`extraction`: samples drawn per forget question."""
    temperature: float = 1.0
    """`extraction`: sampling temperature (no top-k or top-p truncation)."""
    ngram: int = 2
    """`extraction`: word n-gram length of an answer's distinctive n-grams."""

    def __post_init__(self) -> None:
        self.probes = tuple(self.probes) if self.probes is not None else None
        self.relearn_steps = tuple(int(k) for k in self.relearn_steps)
        self.quant_bits = tuple(int(b) for b in self.quant_bits)
        checks = [
            (self.max_items >= 1, "max_items", "must be at least 1"),
            (all(k >= 1 for k in self.relearn_steps), "relearn_steps", "must be at least 1"),
            (self.relearn_lr > 0, "relearn_lr", "must be positive"),
            (0 < self.relearn_forget_share < 1, "relearn_forget_share", "must be in (0, 1)"),
            (set(self.quant_bits) <= {4, 8}, "quant_bits", "must be 8 and/or 4"),
            (self.samples >= 1, "samples", "must be at least 1"),
            (self.temperature > 0, "temperature", "must be positive"),
            (self.ngram >= 1, "ngram", "must be at least 1"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise InputError(f"{name}={getattr(self, name)!r} {message}", Where(field=name))
        for name in self.probes or ():
            get_probe(name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ExamplesOf = Callable[[Sequence[Any]], list[dict[str, Any]]]
"""Documents -> training examples encoded as the model was trained (for fine-tuning attacks)."""


@dataclass
class ProbeContext:
    """What every probe is given besides the model: the same for every model attacked."""

    tokenizer: Any
    forget: list[Any]
    """The forget documents (ledger rows or dicts; QA documents are what the probes ask)."""
    retain: list[Any] = field(default_factory=list)
    """Retain documents (the relearning attack's unrelated data)."""
    examples_of: ExamplesOf | None = None
    """How documents become training examples; `None` uses `TrainConfig()`'s encoding."""
    config: ProbeConfig = field(default_factory=ProbeConfig)

    def examples(self, documents: Sequence[Any]) -> list[dict[str, Any]]:
        if self.examples_of is not None:
            return self.examples_of(documents)
        return default_examples(documents, self.tokenizer)


def default_examples(documents: Sequence[Any], tokenizer: Any, train_config: Any = None) -> list[dict[str, Any]]:
    """Training examples of `documents`, encoded with `train_config` (a `TrainConfig`; by
    default the default one, `task="auto"`)."""
    from lethe.train.config import TrainConfig
    from lethe.train.examples import build_examples

    return [
        {"input_ids": list(e.input_ids), "labels": list(e.labels), "document_id": e.document_id}
        for e in build_examples(documents, tokenizer, train_config or TrainConfig(task="auto"))
    ]


class Probe:
    """One attack. Subclasses set `name` (by `register_probe`) and override `run`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    """One line for tables and the report."""

    def run(self, model: Any, context: ProbeContext) -> dict[str, Metrics]:
        """The forget metrics of `model` under this attack, per variant. Leaves `model` as it was."""
        raise NotImplementedError


PROBES: Registry[type[Probe]] = Registry("robustness probe", package="lethe.eval.robustness", field="probes")
"""Every probe, by name; the package's modules are imported on the first lookup."""
P = TypeVar("P", bound="type[Probe]")


def register_probe(name: str) -> Callable[[P], P]:
    """Class decorator: make a `Probe` subclass available as `name`."""

    def register(cls: P) -> P:
        cls.name = name
        PROBES.add(name, cls)
        return cls

    return register


def get_probe(name: str) -> type[Probe]:
    """The probe registered as `name`, or an `InputError` listing the known ones."""
    return PROBES.get(name)


def list_probes() -> list[str]:
    """Names of the registered probes, sorted (the order they run in)."""
    return PROBES.names()
