"""Where a lineage keeps its training state on disk, and how it is written and read back.

```
checkpoints/<lineage>/
  spec/                     the architecture (config.json, generation_config.json) and the
                            tokenizer: enough to rebuild any model of the lineage from weights
  slice-<i>-run<r>/         the state after slice i of run r (weights, optimizer, scheduler, RNG)
  resume/                   the state of the job in progress, rewritten every N steps
models/<lineage>-s<i>-r<r>/ the model version published after slice i of run r (HF layout)
```

Every directory is written atomically (`lethe.model.io.atomic_directory`): a crash leaves the
previous state or the new one, never a mix.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from lethe.errors import NotFoundError, Where
from lethe.model.io import (
    MODEL_TENSORS,
    STATE_JSON,
    atomic_directory,
    load_training_state,
    recover_directory,
    require_safetensors,
    save_training_state,
)


@dataclass(frozen=True)
class LineagePaths:
    """The on-disk places of one lineage inside a workspace."""

    root: Path
    models: Path
    name: str

    @classmethod
    def of(cls, workspace: Any, lineage_name: str) -> LineagePaths:
        root = workspace.path("checkpoints", lineage_name)
        return cls(root=root, models=workspace.models_dir(), name=lineage_name)

    @property
    def spec(self) -> Path:
        return self.root / "spec"

    @property
    def resume(self) -> Path:
        return self.root / "resume"

    def slice_checkpoint(self, slice_index: int, run_id: int) -> Path:
        return self.root / f"slice-{slice_index}-run{run_id}"

    def version(self, slice_index: int, run_id: int) -> Path:
        return self.models / f"{self.name}-s{slice_index}-r{run_id}"


def save_spec(paths: LineagePaths, model: torch.nn.Module, tokenizer: Any) -> None:
    """Record the lineage's architecture and tokenizer (no weights) once, atomically."""
    with atomic_directory(paths.spec) as tmp:
        model.config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def load_tokenizer_of(paths: LineagePaths) -> Any:
    recover_directory(paths.spec)
    if not (paths.spec / "config.json").is_file():
        raise NotFoundError("this lineage has no recorded architecture (spec/)", Where(path=paths.spec))
    return AutoTokenizer.from_pretrained(paths.spec, local_files_only=True)


def empty_model(paths: LineagePaths) -> torch.nn.Module:
    """A model of the lineage's architecture with throwaway weights, to load a state into."""
    recover_directory(paths.spec)
    config = AutoConfig.from_pretrained(paths.spec, local_files_only=True)
    with torch.random.fork_rng(devices=[]):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig.from_pretrained(paths.spec, local_files_only=True)
    return model


def load_weights(model: torch.nn.Module, directory: Path) -> torch.nn.Module:
    """Load the safetensors weights of a version or checkpoint directory into `model` (strict)."""
    recover_directory(directory)
    require_safetensors(directory)
    load_model(model, str(Path(directory) / MODEL_TENSORS), strict=True)
    return model


def save_slice_checkpoint(path: Path, model, optimizer, scheduler, step: int, extra: dict) -> None:
    """The state after a slice: what exact replay restores."""
    save_training_state(path, model, optimizer, scheduler, step, extra=extra)


def save_resume_state(paths: LineagePaths, model, optimizer, scheduler, step: int, extra: dict) -> None:
    """The state of the job in progress; `extra` says where in the job it stands."""
    save_training_state(
        paths.resume, model, optimizer, scheduler, step, extra=extra, kill_at="train.resume_state_written"
    )


def read_resume_state(paths: LineagePaths) -> dict | None:
    """The `extra` of the lineage's resume state (where the job stood), or None if there is none.

    The trainer keeps `extra` to plain JSON (string keys, no tensors), so it reads back as is.
    """
    recover_directory(paths.resume)
    if not (paths.resume / STATE_JSON).is_file():
        return None
    return json.loads((paths.resume / STATE_JSON).read_text())["extra"]


def load_resume_state(paths: LineagePaths, model, optimizer=None, scheduler=None):
    """Restore the job-in-progress state into the given objects (weights only without optimizer)."""
    return load_training_state(paths.resume, model, optimizer, scheduler, restore_rng=optimizer is not None)


def clear_resume_state(paths: LineagePaths) -> None:
    shutil.rmtree(paths.resume, ignore_errors=True)
