"""The few collective operations training needs, over Accelerate.

One process or many (`accelerate launch`, DDP on gloo for CPUs), the trainer calls the same
functions; with one process they cost nothing. Rule: only the main process writes to the
ledger or the workspace; everything the other processes need from its writes reaches them
through `broadcast`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: the CLI imports this module at start
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
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(unwrap_model(model).state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------- main-driven commands
# `lethe train` runs the same code on every process. A forget request is driven by the main
# process instead (it reads and writes the ledger between the steps), so the other processes
# wait in `follow` and run only the collective parts, which the main process hands out with
# `run_everywhere`.


_calls_in_flight = 0


def launched() -> bool:
    """Whether a launcher started several processes (read from the environment, cheaply)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def run_everywhere(fn: Callable[..., Any], *args: Any, main_only: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """On the main process: call `fn(*args, **kwargs)` on every process and return its result.

    `fn` must be a module-level function and the arguments picklable: the processes waiting
    in `follow` receive them by broadcast. `main_only` keywords (callbacks, cancel flags)
    are passed to the main process's call alone.
    """
    global _calls_in_flight
    if world_size() == 1:
        return fn(*args, **kwargs, **(main_only or {}))
    broadcast(("call", f"{fn.__module__}:{fn.__qualname__}", args, kwargs))
    _calls_in_flight += 1
    result = fn(*args, **kwargs, **(main_only or {}))
    _calls_in_flight -= 1  # not reached on failure: the others may be stuck inside the call
    return result


def follow() -> None:
    """On the other processes: run what the main process hands out until it says it is done."""
    while True:
        message = broadcast(None)
        if message[0] == "done":
            return
        _, name, args, kwargs = message
        module, _, qualname = name.partition(":")
        fn: Any = importlib.import_module(module)
        for part in qualname.split("."):
            fn = getattr(fn, part)
        fn(*args, **kwargs)


def release_followers() -> None:
    """On the main process: let the processes waiting in `follow` return.

    After a call that failed half-way the others are not waiting in `follow`: they are left
    to the launcher, which stops them when the main process exits with an error.
    """
    if world_size() > 1 and is_main_process() and _calls_in_flight == 0:
        broadcast(("done",))


def main_driven(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a CLI command that the main process drives (see `run_everywhere`): under a
    launcher the other processes only `follow` it."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if launched() and not is_main_process():
            follow()
            shutdown()
            return None
        try:
            return command(*args, **kwargs)
        finally:
            if launched():
                release_followers()
                shutdown()

    return wrapper


def shutdown() -> None:
    """Tear the process group down before the interpreter exits: left to exit-time destructors,
    gloo's threads can abort the process ("terminate called without an active exception")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
