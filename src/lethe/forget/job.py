"""A forget request as a background job: what the server's worker runs for kind `forget`.

The worker (`lethe.serve.worker`) owns claiming, progress records and cancel flags; this
module says what a forget job does and how it is tidied up when its process died, through
the one failure cleanup of `lethe.forget.cleanup`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from lethe.forget.cleanup import abandon_request
from lethe.ledger.states import RequestStatus

if TYPE_CHECKING:
    from lethe.ledger import Ledger
    from lethe.workspace import Workspace

KIND = "forget"


class JobContext(Protocol):
    """What a running job handler sees (the worker's `JobContext`)."""

    params: dict[str, Any]
    progress: Callable[[Any], None]
    cancelled: Callable[[], bool]


def run_forget_job(workspace: Workspace, context: JobContext) -> dict:
    """Run a recorded forget request into an evaluated candidate (publishing is the user's call)."""
    from lethe.forget.requests import run_request

    request_id = int(context.params["request_id"])
    suite = None
    if context.params.get("audit_items"):
        from lethe.eval.suite import SuiteConfig

        suite = SuiteConfig(max_items=int(context.params["audit_items"]))
    outcome = run_request(
        workspace,
        request_id,
        publish=False,
        callback=context.progress,
        cancel=context.cancelled,
        evaluate=bool(context.params.get("evaluate", True)),
        suite=suite,
    )
    if context.params.get("robustness") and outcome.audit is not None:
        from lethe.eval.robustness import ProbeConfig
        from lethe.forget.audit import audit_request

        audit_request(workspace, request_id, robustness=ProbeConfig())  # adds the attacks to the stored audit
    return {
        "request_id": request_id,
        "status": outcome.status,
        "version": outcome.version,
        "trained_documents": outcome.trained_documents,
        "seconds": round(outcome.seconds, 2),
    }


def abandon_forget_job(workspace: Workspace, job: Any, status: str, error: str) -> None:
    """After a forget job ended without running to its end: end its request the same way."""
    request_id = (job.params or {}).get("request_id")
    if request_id is None:
        return
    if workspace.ledger.forget_request(request_id).status in (RequestStatus.PENDING, RequestStatus.RUNNING):
        abandon_request(workspace.ledger, request_id, status, error)


def queue_forget(
    ledger: Ledger, request_id: int, *, evaluate: bool = True, audit_items: int | None = None, robustness: bool = False
) -> int:
    """Queue a job that runs forget request `request_id`; the job id.

    `evaluate`: audit base and candidate when unlearning is done; `audit_items`: questions per
    split in that audit (None: the audit's default); `robustness`: add the robustness suite
    (`lethe.eval.robustness`) to that audit.
    """
    params = {"request_id": request_id, "evaluate": evaluate, "audit_items": audit_items, "robustness": robustness}
    return ledger.create_job(KIND, params)
