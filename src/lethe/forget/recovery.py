"""Recovering from a process that died mid-operation: resume or discard its forget request,
close its runs, discard orphaned candidates, remove the files of interrupted saves.

What counts as dead is decided in `lethe.ledger.half_states` (a `running` row whose
process is gone on this host); `lethe ledger check` lists the same things this module
repairs, each with the command that does it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lethe.errors import ConflictError
from lethe.forget.cleanup import abandon_request
from lethe.ledger.half_states import dead_requests, dead_runs, orphaned_candidates, stray_directories
from lethe.ledger.states import RequestStatus, RunStatus

if TYPE_CHECKING:
    from lethe.forget.requests import ForgetOutcome
    from lethe.workspace import Workspace

DIED = "its process died before it finished"


def _require_dead(workspace: Workspace, request_id: int) -> None:
    request = workspace.ledger.forget_request(request_id)
    if request.status == RequestStatus.RUNNING and request_id not in {r.id for r in dead_requests(workspace.ledger)}:
        raise ConflictError(f"forget request {request_id} is running in a live process; wait for it or cancel it")


def resume_request(
    workspace: Workspace,
    request_id: int,
    *,
    publish: bool = True,
    purge: bool = False,
    callback: Callable | None = None,
    evaluate: bool = True,
) -> ForgetOutcome:
    """Run a request again whose process died (or that failed), from its recorded selector,
    method and settings; its half-made candidates are discarded first."""
    from lethe.forget.requests import run_request

    _require_dead(workspace, request_id)
    if workspace.ledger.forget_request(request_id).status == RequestStatus.RUNNING:
        abandon_request(workspace.ledger, request_id, RequestStatus.FAILED, DIED)
    clean(workspace)  # e.g. the replay run of an exact request killed mid-slice, and its versions
    return run_request(workspace, request_id, publish=publish, purge=purge, callback=callback, evaluate=evaluate)


def discard_dead_request(workspace: Workspace, request_id: int) -> None:
    """Drop a request whose process died: its candidates are discarded, it ends cancelled."""
    _require_dead(workspace, request_id)
    abandon_request(workspace.ledger, request_id, RequestStatus.CANCELLED, f"discarded by the user ({DIED})")
    clean(workspace)


@dataclass
class Cleaned:
    """What `clean` did."""

    runs: list[int] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def clean(workspace: Workspace) -> Cleaned:
    """Close dead runs (requests are left to `resume`/`discard`: that is the user's call),
    discard orphaned candidates and remove the files of interrupted saves."""
    ledger = workspace.ledger
    request_runs = {r.run_id for r in dead_requests(ledger)}
    done = Cleaned()
    for run in dead_runs(ledger):
        if run.id not in request_runs:
            ledger.finish_run(run.id, RunStatus.FAILED, error=DIED)
            done.runs.append(run.id)
    for version in orphaned_candidates(ledger):
        ledger.discard_version(version.id)
        done.candidates.append(version.name)
    for path in stray_directories(ledger, workspace.home):
        shutil.rmtree(path, ignore_errors=True)
        done.paths.append(str(path.relative_to(workspace.home)))
    return done
