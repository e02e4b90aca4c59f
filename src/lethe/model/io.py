"""Saving and loading models and training checkpoints: atomic, hashed, never pickled.

A model version is a standard Hugging Face directory (``model.safetensors``, ``config.json``,
``generation_config.json``, tokenizer files with the chat template), so vLLM or plain
transformers can serve it. A training checkpoint adds what exact resumption needs: the
optimizer and scheduler state and every RNG state, as safetensors plus one JSON file.

Both are written into a temporary sibling directory, fsynced, then moved into place in one
rename, so a crash leaves the old directory or the new one, never a half-written mix.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import random
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.utils import logging as _hf_logging

from lethe import digests
from lethe.errors import InputError, NotFoundError, Where
from lethe.killpoints import kill_point

_hf_logging.disable_progress_bar()  # weight-loading bars would interleave with lethe's own progress and --json

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
STATE_JSON = "training_state.json"
STATE_TENSORS = "training_state.safetensors"
MODEL_TENSORS = "model.safetensors"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- atomic dirs


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux renameat2(RENAME_EXCHANGE); False if unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


@contextmanager
def atomic_directory(target: str | Path, *, kill_at: str | None = None) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces `target` in one step.

    `kill_at` names the kill point (`lethe.killpoints`) between writing and renaming.

    On Linux an existing target is swapped out with an atomic exchange. Elsewhere the old
    directory is first renamed aside (``.<name>.old-*``) and `recover_directory` puts it
    back if a crash happened between the two renames. On error the temporary is removed
    and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        yield tmp
        if kill_at:
            kill_point(kill_at)
        _fsync_tree(tmp)
        if not target.exists():
            os.rename(tmp, target)
        elif _exchange(tmp, target):
            shutil.rmtree(tmp)  # tmp now holds the old contents
        else:
            aside = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}"
            os.rename(target, aside)
            os.rename(tmp, target)
            shutil.rmtree(aside)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def recover_directory(target: str | Path) -> None:
    """Undo a crash between the two renames of the non-Linux fallback; remove temporaries."""
    target = Path(target)
    if not target.parent.is_dir():
        return
    for leftover in target.parent.glob(f".{target.name}.old-*"):
        if target.exists():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            os.rename(leftover, target)
    for leftover in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)


# ------------------------------------------------------------------------ model versions


def require_safetensors(directory: str | Path) -> list[Path]:
    """The safetensors weight files of a model directory, refusing pickle-only directories."""
    path = Path(directory)
    if not path.is_dir():
        raise NotFoundError("no such model directory", Where(path=path))
    weights = sorted(path.glob("*.safetensors"))
    if weights:
        return weights
    pickled = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise InputError(
            f"only pickle weights here ({', '.join(pickled)}); lethe never unpickles model "
            "files because loading them can run arbitrary code. Convert them to safetensors "
            "first (e.g. load them yourself in a sandbox and save_pretrained)",
            Where(path=path),
        )
    raise InputError("no *.safetensors weights in this directory", Where(path=path))


def weights_sha256(directory: str | Path) -> str:
    """`lethe.digests.weights_sha256` of a model directory (refusing pickle-only ones)."""
    require_safetensors(directory)
    return digests.weights_sha256(directory)


def save_version(model: PreTrainedModel, tokenizer: Any, directory: str | Path, *, adapter: Any = None) -> str:
    """Write `model` and `tokenizer` as one HF directory, atomically; return the weights hash.

    A PEFT model must be merged first (`lethe.model.lora.merge_lora`): a version is always a
    complete model that loads without lethe. `adapter` (a `lethe.model.adapters.Adapter`), the
    LoRA adapter the weights were merged from, is kept in the ``adapter/`` subdirectory.
    """
    if hasattr(model, "peft_config"):
        raise InputError(
            "this is a PEFT model with adapters; merge them (lethe.model.lora.merge_lora) "
            "before saving a model version",
            Where(path=directory),
        )
    if getattr(model.config, "quantization_config", None) is not None:
        raise InputError(
            "this model is quantized; a version is saved in full precision (for QLoRA use "
            "lethe.model.lora.merge_qlora, which merges into the full-precision base)",
            Where(path=directory),
        )
    with atomic_directory(directory) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        require_safetensors(tmp)
        if adapter is not None:
            from lethe.model.adapters import ADAPTER_DIR

            adapter.save(tmp / ADAPTER_DIR)
    return weights_sha256(directory)


def load_version(directory: str | Path, *, dtype: torch.dtype | str = torch.float32) -> tuple[PreTrainedModel, Any]:
    """The (model, tokenizer) of a saved version, read offline from safetensors only."""
    path = Path(directory)
    recover_directory(path)
    require_safetensors(path)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, use_safetensors=True, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model, tokenizer


# ------------------------------------------------------------------ training checkpoints


class _Flattener:
    """Split a nested state dict into JSON structure and named tensors (no pickle)."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def encode(self, value: Any, key: str) -> Any:
        if isinstance(value, torch.Tensor):
            self.tensors[key] = value.detach().cpu().contiguous()
            return {"__tensor__": key}
        if isinstance(value, np.ndarray):
            self.tensors[key] = torch.from_numpy(value.copy())
            return {"__ndarray__": key}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{key}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{key}.{i}") for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: self.encode(v, f"{key}.{k}") for k, v in value.items()}
            return {"__items__": [[k, self.encode(v, f"{key}.{k}")] for k, v in value.items()]}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise InputError(
            f"cannot store a {type(value).__name__} in a training checkpoint (no pickle); "
            "keep checkpoint state to tensors, numbers, strings, lists and dicts",
            Where(field=key),
        )


def _decode(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__ndarray__" in value:
            return tensors[value["__ndarray__"]].numpy()
        if "__tuple__" in value:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        if "__items__" in value:
            return {k: _decode(v, tensors) for k, v in value["__items__"]}
        return {k: _decode(v, tensors) for k, v in value.items()}
    return value


def rng_states(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Every RNG that training draws from: python, numpy, torch CPU/CUDA, named generators."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "generators": {name: gen.get_state() for name, gen in (generators or {}).items()},
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Mapping[str, Any], generators: Mapping[str, torch.Generator] | None = None) -> None:
    """Restore what `rng_states` captured (named generators are restored in place)."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(states["cuda"]))
    saved = states.get("generators", {})
    for name, gen in (generators or {}).items():
        if name not in saved:
            raise InputError(f"checkpoint holds no state for generator {name!r}")
        gen.set_state(saved[name])


@dataclass
class TrainingState:
    """What `load_training_state` returns besides restoring objects in place."""

    step: int
    """Optimizer steps taken when the checkpoint was written."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Whatever JSON-compatible state the trainer passed to `save_training_state`."""


def save_training_state(
    directory: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
    step: int,
    *,
    generators: Mapping[str, torch.Generator] | None = None,
    extra: Mapping[str, Any] | None = None,
    kill_at: str | None = None,
) -> None:
    """Atomically write everything exact resumption needs into `directory`.

    Model weights go to ``model.safetensors`` (shared tensors stored once); optimizer,
    scheduler and RNG tensors to ``training_state.safetensors``; their structure, the step
    and `extra` to ``training_state.json``. Capture happens before anything is written, so
    saving does not disturb any RNG.
    """
    flat = _Flattener()
    document = {
        "format_version": FORMAT_VERSION,
        "step": int(step),
        "optimizer": flat.encode(optimizer.state_dict(), "optimizer"),
        "scheduler": flat.encode(scheduler.state_dict(), "scheduler") if scheduler else None,
        "rng": flat.encode(rng_states(generators), "rng"),
        "extra": flat.encode(dict(extra or {}), "extra"),
    }
    with atomic_directory(directory, kill_at=kill_at) as tmp:
        save_model(model, str(tmp / MODEL_TENSORS))
        save_file(flat.tensors, str(tmp / STATE_TENSORS))
        (tmp / STATE_JSON).write_text(json.dumps(document, indent=1))


def load_training_state(
    directory: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    *,
    generators: Mapping[str, torch.Generator] | None = None,
    restore_rng: bool = True,
) -> TrainingState:
    """Restore model, optimizer, scheduler and RNGs in place from `save_training_state`.

    The model must have the same architecture (and adapters) as when it was saved.
    """
    path = Path(directory)
    recover_directory(path)
    for name in (MODEL_TENSORS, STATE_TENSORS, STATE_JSON):
        if not (path / name).is_file():
            raise NotFoundError(f"not a training checkpoint: {name} is missing", Where(path=path))
    document = json.loads((path / STATE_JSON).read_text())
    if document.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"checkpoint format {document.get('format_version')} is not {FORMAT_VERSION}",
            Where(path=path / STATE_JSON, field="format_version"),
        )
    tensors = load_file(str(path / STATE_TENSORS))
    try:
        missing, unexpected = load_model(model, str(path / MODEL_TENSORS), strict=False)
    except RuntimeError as error:  # shape mismatches
        first = str(error).split("\n\t")[1:2] or [str(error)]
        raise InputError(
            f"checkpoint does not fit this model: {first[0].strip()}",
            Where(path=path / MODEL_TENSORS),
        ) from None
    if missing or unexpected:
        raise InputError(
            f"checkpoint does not fit this model: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}",
            Where(path=path / MODEL_TENSORS),
        )
    if optimizer is not None:
        optimizer.load_state_dict(_decode(document["optimizer"], tensors))
    if scheduler is not None and document["scheduler"] is not None:
        scheduler.load_state_dict(_decode(document["scheduler"], tensors))
    if restore_rng:
        set_rng_states(_decode(document["rng"], tensors), generators)
    return TrainingState(step=document["step"], extra=_decode(document["extra"], tensors))
