"""What a LoRA / QLoRA slice leaves besides its merged weights: the adapter, in PEFT's layout.

A version is always a complete full-precision model; the adapter that produced it is kept
beside it (``adapter_config.json`` + ``adapter_model.safetensors`` in ``<version>/adapter``),
so ``PeftModel.from_pretrained(parent, version_dir / "adapter")`` rebuilds the version from the
model it was trained on, without lethe.

QLoRA trains the adapter on a 4-bit NF4 copy of the weights (bitsandbytes, which runs on the
CPU too); `quantized_start` writes the slice's starting weights where the step engine merges
the adapter back at the end, so the 4-bit rounding never reaches a version.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

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


def capture_adapter(peft_model) -> Adapter:
    """A copy of the active adapter of a PEFT model (call before merging it away)."""
    from peft import get_peft_model_state_dict

    config = peft_model.peft_config[peft_model.active_adapter]
    weights = {k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model).items()}
    return Adapter(config=config, weights=weights)


@contextmanager
def quantized_start(model: torch.nn.Module, *, bf16: bool) -> Iterator[tuple[torch.nn.Module, Path]]:
    """(a fresh 4-bit NF4 copy of `model`, the directory of its full-precision weights) for a
    QLoRA slice; the directory lives until the context ends (the merge reads it)."""
    from lethe.model.lora import load_4bit

    with tempfile.TemporaryDirectory(prefix="lethe-qlora-") as tmp:
        model.save_pretrained(tmp)
        yield load_4bit(tmp, compute_dtype=torch.bfloat16 if bf16 else torch.float32), Path(tmp)
