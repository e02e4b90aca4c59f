"""Named points where a test can kill the process, to prove every operation is atomic.

`kill_point("publish.tainted")` does nothing unless the environment variable
``LETHE_KILL_AT`` names that point, in which case the process sends itself SIGKILL there:
no cleanup, no `finally`, no flush, as when a machine loses power or the OOM killer strikes.
The kill-point test runs the real commands once per point and checks that the ledger is in
the old state or the new one, that `lethe ledger check` reports any half-state, and that
recovery cleans it up. Every point is listed in `POINTS`, so the test and the code agree.
"""

from __future__ import annotations

import os
import signal

ENV = "LETHE_KILL_AT"

POINTS: dict[str, str] = {
    "train.started": "a training run is recorded and its first resume state written, before step 1",
    "train.resume_state_written": "a resume state's files are written under a temporary name, not yet renamed",
    "train.slice_saved": "a slice's version and checkpoint files are on disk, the ledger does not know them yet",
    "train.slice_recorded": "a slice's version and checkpoint are committed, its resume state not yet advanced",
    "train.before_publish": "every slice is trained; the versions are candidates",
    "train.published": "the run's versions are published; its resume state is still on disk",
    "forget.candidate": "a forget request's candidate version is registered, not yet evaluated",
    "forget.evaluated": "the request is evaluated (candidate and audit committed), not yet published",
    "publish.versions": "inside the publish transaction: versions published, nothing tainted or erased",
    "publish.tainted": "inside the publish transaction: versions tainted, documents not erased",
    "publish.erased": "inside the publish transaction: documents erased, status not yet succeeded",
    "publish.committed": "the publish transaction committed; weights not yet purged",
}


def kill_point(name: str) -> None:
    """SIGKILL this process if ``LETHE_KILL_AT`` names this point (see the module docstring)."""
    if name not in POINTS:
        raise ValueError(f"unknown kill point {name!r}")
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
