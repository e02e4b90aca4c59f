"""Which process owns a running run: recorded at its start, checked when it looks abandoned.

A run (and the job or forget request it serves) is `running` from its start until it
finishes. A process that was killed never gets to say so; its host and PID, recorded with
the run, let a later command on the same host tell that nobody is working on it any more.
On another host the PID means nothing here, so liveness is unknown there.
"""

from __future__ import annotations

import os
import socket
from typing import Any


def this_process() -> dict[str, Any]:
    """The owner record of this process: host name and PID."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def owner_alive(owner: dict[str, Any] | None) -> bool | None:
    """True if the owner's process runs, False if it is gone, None if this host cannot tell
    (another host, or no owner recorded)."""
    if not owner or owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return None
    return pid_alive(owner["pid"])
