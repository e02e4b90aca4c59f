"""One slice of LoRA or QLoRA training: wrap the model, train, keep the adapter, merge.

A version is always a complete full-precision model; the adapter that produced it is kept
beside it in PEFT's own layout (``adapter_config.json`` + ``adapter_model.safetensors``), so
``PeftModel.from_pretrained(parent, version_dir / "adapter")`` rebuilds the version from the
model it was trained on, without lethe.

QLoRA trains the adapter on a 4-bit NF4 copy of the weights (bitsandbytes, which runs on the
CPU too) and merges it into the full-precision weights the slice started from, so the 4-bit
rounding never reaches a version.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from lethe.model.lora import apply_lora, merge_lora

ADAPTER_DIR = "adapter"
"""Subdirectory of a version directory holding the adapter that produced it."""


@dataclass
class Adapter:
    """A trained LoRA adapter: its PEFT config and weights (PEFT's state-dict names)."""

    config: object
    """The `peft.LoraConfig` it was trained with."""
    weights: dict[str, torch.Tensor]
    base: str | None = None
    """The model directory the adapter applies to (recorded as ``base_model_name_or_path``)."""

    def save(self, directory: str | Path) -> Path:
        """Write the adapter in PEFT's layout into `directory` (created)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        config = self.config.to_dict()
        config["base_model_name_or_path"] = self.base
        (path / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=list))
        weights = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.weights.items()}
        save_file(weights, str(path / "adapter_model.safetensors"), metadata={"format": "pt"})
        return path


def _quantized_copy(model: torch.nn.Module, compute_dtype: torch.dtype) -> torch.nn.Module:
    """A fresh 4-bit (NF4) copy of `model`'s current weights, for QLoRA."""
    from lethe.model.lora import load_4bit

    with tempfile.TemporaryDirectory(prefix="lethe-qlora-") as tmp:
        model.save_pretrained(tmp)
        return load_4bit(tmp, compute_dtype=compute_dtype)


class AdapterTraining:
    """LoRA (or QLoRA with `quantized`) around one slice; `model` is what the optimizer trains."""

    def __init__(self, model: torch.nn.Module, *, r: int, alpha: float, seed: int, quantized: bool, bf16: bool):
        self.full = model if quantized else None
        base = _quantized_copy(model, torch.bfloat16 if bf16 else torch.float32) if quantized else model
        self.model = apply_lora(base, r=r, alpha=alpha, seed=seed)

    def finish(self) -> tuple[torch.nn.Module, Adapter]:
        """(the full-precision merged model, the adapter), once training is done."""
        from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

        config = self.model.peft_config[self.model.active_adapter]
        weights = {k: v.detach().clone() for k, v in get_peft_model_state_dict(self.model).items()}
        adapter = Adapter(config=config, weights=weights)
        if self.full is None:
            return merge_lora(self.model), adapter
        with torch.random.fork_rng(devices=[]):  # the fresh adapter's init is overwritten at once
            full = get_peft_model(self.full, config)
        result = set_peft_model_state_dict(full, weights)
        if result.unexpected_keys:
            raise RuntimeError(f"adapter does not fit the full-precision model: {result.unexpected_keys[:5]}")
        return full.merge_and_unload(), adapter
