"""The one place that tidies up after a forget request that did not run to its end.

A request fails, is cancelled, or its process dies (the server's worker finds the job
orphaned): in every case its unlearning run is closed, every candidate version it
registered is discarded (an exact replay registers one per replayed slice) and the request
records why. Nothing was published, tainted or erased, so nothing else needs undoing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lethe.ledger.states import RunStatus, VersionStatus

if TYPE_CHECKING:
    from lethe.ledger import Ledger


def candidates_of(ledger: Ledger, request_id: int) -> list:
    """The candidate versions a request registered: its result and, for an exact replay, the
    other versions of the same replay run."""
    request = ledger.forget_request(request_id)
    if request.result_version_id is None:
        return []
    result = ledger.resolve_version(request.result_version_id, allow_tainted=True)
    return [
        version
        for version in ledger.list_versions()
        if version.status == VersionStatus.CANDIDATE
        and (version.id == result.id or (result.run_id is not None and version.run_id == result.run_id))
    ]


def abandon_request(ledger: Ledger, request_id: int, status: str, error: str, *, detail: str | None = None) -> None:
    """End request `request_id` as `status` (failed or cancelled) with `error`: close its run if
    still running, discard its candidates. `detail` (a traceback) goes to the run only."""
    with ledger.transaction():
        request = ledger.forget_request(request_id)
        if request.run_id is not None and ledger.run(request.run_id).status == RunStatus.RUNNING:
            ledger.finish_run(request.run_id, status, error=detail or error)
        for version in candidates_of(ledger, request_id):
            ledger.discard_version(version.id)
        ledger.update_forget_request(request_id, status=status, error=error)
