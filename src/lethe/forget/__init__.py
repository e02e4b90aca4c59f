"""The forget workflow: a request names documents, a strategy makes a candidate version that
no longer knows them, an audit judges it, and publishing moves `latest`, taints what saw
them and erases them.

    from lethe.forget import Selector, create_request, run_request
    request_id = create_request(workspace, Selector(collection="synth/entity/person/0007"), method="exact")
    outcome = run_request(workspace, request_id)

Modules: `selectors` (what a request names), `strategies/` (exact replay, approximate
unlearning), `audit` (which versions and documents an audit compares), `requests` (create,
run, publish, discard), `cleanup` (the one tidy-up after a failure), `job` (the request as a
background job of the server's worker). This package sits above `train`, `unlearn` and
`eval`; none of them imports it.
"""

from lethe.forget.requests import (
    ForgetOutcome,
    create_request,
    discard_request,
    publish_request,
    purge_tainted,
    rebase_request,
    run_request,
)
from lethe.forget.selectors import Selector, resolve
from lethe.forget.strategies import list_strategies, strategy_for

__all__ = [
    "ForgetOutcome",
    "Selector",
    "create_request",
    "discard_request",
    "list_strategies",
    "publish_request",
    "purge_tainted",
    "rebase_request",
    "resolve",
    "run_request",
    "strategy_for",
]
