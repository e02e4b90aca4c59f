"""Named Llama shapes (nano … base) built from a config, never downloaded.

A preset fixes the architecture; the vocabulary size and special-token ids come from the
tokenizer at build time, so one preset serves any tokenizer. `load_base` is the one entry
point the trainer needs: a preset name builds a fresh random model, anything else is read
as a local Hugging Face causal-LM directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedModel

from lethe.data.tokenizer import SPECIAL
from lethe.errors import InputError, Where

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

#: Vocabulary size at which the presets' nominal parameter counts are quoted.
NOMINAL_VOCAB = 4096


@dataclass(frozen=True)
class ModelPreset:
    """The architecture of one named Llama model; everything but the vocabulary."""

    name: str
    """Registry key, e.g. ``"tiny"``."""
    hidden_size: int
    """Width of the residual stream (and of the token embeddings)."""
    num_hidden_layers: int
    """Number of transformer blocks."""
    num_attention_heads: int
    """Query heads per block; ``hidden_size`` must divide evenly by it."""
    intermediate_size: int
    """Width of the SwiGLU feed-forward layer (about 8/3 of ``hidden_size``)."""
    num_key_value_heads: int | None = None
    """Key/value heads for grouped-query attention; ``None`` means as many as query heads."""
    max_position_embeddings: int = 512
    """Longest sequence the model is built for (RoPE has no table, so this is advisory)."""
    tie_word_embeddings: bool = False
    """Share the input embedding and the output projection (saves vocab x hidden params)."""
    rms_norm_eps: float = 1e-6
    """Epsilon of the RMSNorm layers."""
    initializer_range: float = 0.02
    """Standard deviation of the normal weight initialisation."""
    rope_theta: float = 10000.0
    """Base of the rotary position embedding frequencies."""
    description: str = ""
    """One line for `--help` listings: what the preset is for."""

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise InputError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}",
                Where(field=f"presets.{self.name}"),
            )

    def config(
        self,
        vocab_size: int,
        *,
        max_position_embeddings: int | None = None,
        bos_token_id: int | None = None,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
    ) -> LlamaConfig:
        """The `LlamaConfig` of this preset for a given vocabulary and special tokens."""
        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads or self.num_attention_heads,
            max_position_embeddings=max_position_embeddings or self.max_position_embeddings,
            rms_norm_eps=self.rms_norm_eps,
            initializer_range=self.initializer_range,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            tie_word_embeddings=self.tie_word_embeddings,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
        )

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, ModelPreset] = {}


def register_preset(factory: Callable[[], ModelPreset]) -> Callable[[], ModelPreset]:
    """Decorator: add the preset a zero-argument function returns to `PRESETS`."""
    preset = factory()
    if preset.name in PRESETS:
        raise ValueError(f"model preset {preset.name!r} registered twice")
    PRESETS[preset.name] = preset
    return factory


@register_preset
def nano() -> ModelPreset:
    return ModelPreset(
        name="nano",
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=192,
        max_position_embeddings=256,
        description="~0.6M params at a 4k vocabulary; for tests only",
    )


@register_preset
def tiny() -> ModelPreset:
    return ModelPreset(
        name="tiny",
        hidden_size=192,
        num_hidden_layers=4,
        num_attention_heads=6,
        intermediate_size=512,
        max_position_embeddings=512,
        description="~3M params; memorises a few hundred QA pairs in minutes on a CPU",
    )


@register_preset
def small() -> ModelPreset:
    return ModelPreset(
        name="small",
        hidden_size=320,
        num_hidden_layers=6,
        num_attention_heads=8,
        intermediate_size=864,
        max_position_embeddings=1024,
        description="~10M params; a few thousand QA pairs or a small article corpus",
    )


@register_preset
def base() -> ModelPreset:
    return ModelPreset(
        name="base",
        hidden_size=576,
        num_hidden_layers=12,
        num_attention_heads=9,
        intermediate_size=1536,
        max_position_embeddings=2048,
        description="~50M params; wants a GPU or patience",
    )


def get_preset(name: str) -> ModelPreset:
    """The registered preset called `name`, or an `InputError` listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(
            f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}",
            Where(field="preset"),
        ) from None


def build_model(
    preset: str | ModelPreset,
    vocab_size: int,
    *,
    max_position_embeddings: int | None = None,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A freshly initialised `LlamaForCausalLM` of a preset, reproducible from `seed`.

    The global torch RNG is left as it was: initialisation draws from a forked generator.
    """
    spec = preset if isinstance(preset, ModelPreset) else get_preset(preset)
    config = spec.config(
        vocab_size,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.bos_token_id = bos_token_id
    model.generation_config.eos_token_id = eos_token_id
    model.generation_config.pad_token_id = pad_token_id
    return model


def load_base(
    path_or_preset: str | Path,
    tokenizer: PreTrainedTokenizerBase,
    *,
    seed: int = 0,
    max_position_embeddings: int | None = None,
) -> PreTrainedModel:
    """The starting model of a lineage: a preset name, or a local HF causal-LM directory.

    A preset is built for `tokenizer` (its vocabulary and special tokens). A directory is
    loaded offline from safetensors weights only; its vocabulary must cover the tokenizer's.
    """
    if isinstance(path_or_preset, str) and path_or_preset in PRESETS:
        model = build_model(
            path_or_preset,
            len(tokenizer),
            max_position_embeddings=max_position_embeddings,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            seed=seed,
        )
        end_id = tokenizer.convert_tokens_to_ids(SPECIAL.end)
        if end_id is not None and end_id != tokenizer.unk_token_id:
            # A chat reply ends at <|end|>, a document at <|eos|>: generation stops at either.
            model.generation_config.eos_token_id = [end_id, tokenizer.eos_token_id]
        return model
    path = Path(path_or_preset)
    if not path.is_dir():
        raise InputError(
            f"{str(path_or_preset)!r} is neither a model preset ({', '.join(PRESETS)}) nor a local model directory",
            Where(path=path),
        )
    from lethe.model.io import require_safetensors  # io imports this module

    require_safetensors(path)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, use_safetensors=True)
    model_vocab = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > model_vocab:
        raise InputError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's embedding only "
            f"{model_vocab}; use the tokenizer saved with this model",
            Where(path=path),
        )
    return model


def count_parameters(model: torch.nn.Module, *, trainable_only: bool = False) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    seen: set[int] = set()
    total = 0
    for param in model.parameters():  # parameters() already de-duplicates shared tensors
        if trainable_only and not param.requires_grad:
            continue
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
    return total
