"""The few collective operations training needs, over Accelerate.

One process or many (`accelerate launch`, DDP on gloo for CPUs), the trainer calls the same
functions; with one process they cost nothing. Rule: only the main process writes to the
ledger or the workspace; everything the other processes need from its writes reaches them
through `broadcast`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

_accelerator = None


def accelerator():
    """The process's `accelerate.Accelerator` (created once; reads the launcher's settings)."""
    global _accelerator
    if _accelerator is None:
        from accelerate import Accelerator

        _accelerator = Accelerator()
    return _accelerator


def is_main_process() -> bool:
    return accelerator().is_main_process


def world_size() -> int:
    return accelerator().num_processes


def rank() -> int:
    return accelerator().process_index


def barrier() -> None:
    accelerator().wait_for_everyone()


def broadcast(value: Any) -> Any:
    """`value` as the main process has it, on every process."""
    if world_size() == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]


def gather(items: list) -> list:
    """The lists of every process concatenated in rank order, on every process."""
    if world_size() == 1:
        return list(items)
    from accelerate.utils import gather_object

    return gather_object(list(items))


def wrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model ready for this launch: DistributedDataParallel when there are several processes.

    Wrapped directly rather than with `Accelerator.prepare_model`, which keeps a reference to
    every model it prepares (one per slice here) for the life of the process.
    """
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    accelerator()  # the launcher's process group is set up by the Accelerator
    return DistributedDataParallel(model.to(device()))


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model) if type(model).__name__ == "DistributedDataParallel" else model


def device() -> torch.device:
    return accelerator().device


def parameter_checksum(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter's bytes, by name: equal exactly when the weights are."""
    digest = hashlib.sha256()
    for name, tensor in sorted(unwrap_model(model).state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
