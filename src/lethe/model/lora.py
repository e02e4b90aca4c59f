"""LoRA adapters through PEFT, and QLoRA on a 4-bit base through bitsandbytes.

A model version is always a complete full-precision model, so adapters end in a merge:
`merge_lora` for a full-precision base, `merge_qlora` (adapter weights re-applied to the
full-precision base read from disk) for a 4-bit one.

Caution (bitsandbytes >= 0.49 on CPUs with AVX512-BF16): the first forward pass of a 4-bit
layer in eval mode without gradients repacks its weights into a CPU inference layout, after
which no gradient flows through the model at all, silently. `load_4bit` returns the model
in train mode and `apply_lora` refuses a repacked model: load a fresh copy for training.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel

from lethe.errors import InputError, Where
from lethe.model.io import require_safetensors

LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    """The shape of a LoRA adapter."""

    r: int = 8
    """Rank of the low-rank update."""
    alpha: float = 16.0
    """Scale numerator: the update is multiplied by ``alpha / r``."""
    dropout: float = 0.0
    """Dropout on the adapter's input during training."""
    target_modules: tuple[str, ...] = LLAMA_TARGETS
    """Names of the linear layers that get an adapter (all Llama projections by default)."""


def is_4bit(model: torch.nn.Module) -> bool:
    """Whether any layer of `model` holds bitsandbytes 4-bit weights."""
    return any(type(m).__name__ == "Linear4bit" for m in model.modules())


def _repacked_layers(model: torch.nn.Module) -> list[str]:
    return [
        name
        for name, module in model.named_modules()
        if type(module).__name__ == "Linear4bit"
        and getattr(getattr(module.weight, "quant_state", None), "packing_format_for_cpu", False)
    ]


def apply_lora(
    model: PreTrainedModel,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    target_modules: Sequence[str] = LLAMA_TARGETS,
    *,
    seed: int = 0,
):
    """Wrap `model` in a PEFT LoRA model; only adapter weights are trainable.

    Adapter initialisation is reproducible from `seed` and leaves the global RNG as it was.
    A 4-bit model (from `load_4bit`) is prepared for k-bit training first.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if is_4bit(model):
        repacked = _repacked_layers(model)
        if repacked:
            raise InputError(
                "this 4-bit model already ran inference, which repacked its weights for the "
                "CPU and cuts every gradient; load a fresh copy with load_4bit for training",
                Where(field=repacked[0]),
            )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in target_modules if t not in present]
    if missing:
        raise InputError(f"no layers named {missing} in this model", Where(field="target_modules"))
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    with torch.random.fork_rng(devices=[]), _peft_reads_deprecated_property():
        torch.manual_seed(seed)
        peft_model = get_peft_model(model, config)
    peft_model.train()
    return peft_model


@contextmanager
def _peft_reads_deprecated_property() -> Iterator[None]:
    """peft's `get_peft_model` reads transformers' deprecated `is_gradient_checkpointing` (a
    FutureWarning per call that is peft's, not lethe's); hide that one warning and only it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def merge_lora(peft_model) -> PreTrainedModel:
    """Fold the adapters into a full-precision base; returns `merge_and_unload()`'s model."""
    if is_4bit(peft_model):
        raise InputError(
            "merging into a 4-bit base would re-quantize the update away; use "
            "merge_qlora(peft_model, base_path) to merge into the full-precision base"
        )
    return peft_model.merge_and_unload()


def load_4bit(
    path: str | Path, *, compute_dtype: torch.dtype = torch.float32, quant_type: str = "nf4"
) -> PreTrainedModel:
    """A local safetensors model quantized to 4 bits on load, in train mode, for QLoRA.

    Each call loads a fresh copy: never train a 4-bit model that has run inference.
    """
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as error:
        raise InputError(f"QLoRA needs bitsandbytes (pip install 'lethe[qlora]'): {error}") from None
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    require_safetensors(path)
    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_compute_dtype=compute_dtype, bnb_4bit_quant_type=quant_type
    )
    model = AutoModelForCausalLM.from_pretrained(
        path,
        quantization_config=quantization,
        local_files_only=True,
        use_safetensors=True,
        device_map="cuda" if torch.cuda.is_available() else "cpu",
    )
    if not is_4bit(model):
        raise InputError("bitsandbytes quantized no layer of this model", Where(path=path))
    model.train()
    return model


def merge_qlora(peft_model, base_path: str | Path) -> PreTrainedModel:
    """The adapters of a QLoRA model merged into the full-precision base at `base_path`."""
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    require_safetensors(base_path)
    base = AutoModelForCausalLM.from_pretrained(
        base_path, local_files_only=True, use_safetensors=True, dtype=torch.float32
    )
    config = peft_model.peft_config[peft_model.active_adapter]
    with _peft_reads_deprecated_property():
        full = get_peft_model(base, config)
    result = set_peft_model_state_dict(full, get_peft_model_state_dict(peft_model))
    if result.unexpected_keys:
        raise InputError(f"adapter does not fit the base: {result.unexpected_keys[:5]}")
    return full.merge_and_unload()
