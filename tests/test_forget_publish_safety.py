"""Publishing is safe: a candidate built on a version `latest` has left is refused with what to
do, and `--rebase` re-applies the request to `latest`, ending on a usable (untainted) `latest`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lethe.cli import app
from lethe.errors import ConflictError
from lethe.forget import Selector, create_request, publish_request, run_request

FAST = {"steps": 2, "eval_every": 0, "forget_batch_size": 4, "retain_batch_size": 4}


def test_a_stale_candidate_is_refused_and_rebase_publishes_on_latest(trained_workspace):
    ws, _, _ = trained_workspace
    ledger = ws.ledger
    qa = ledger.collection_ids("synth/qa")
    first, second = [str(qa[0])], [str(qa[1])]
    stale = create_request(ws, Selector(docs=first), method="grad_ascent", config=FAST)
    run_request(ws, stale, publish=False, evaluate=False)
    newer = run_request(
        ws, create_request(ws, Selector(docs=second), method="grad_ascent", config=FAST), evaluate=False
    )
    latest = ledger.resolve_version("latest")
    assert latest.name == newer.version

    with pytest.raises(ConflictError, match=r"built on .* but `latest` is now .*--rebase") as refused:
        publish_request(ws, stale)
    assert newer.version in refused.value.message
    assert ledger.resolve_version("latest").id == latest.id  # nothing moved, nothing erased
    assert ledger.forget_request(stale).status == "evaluated"
    assert ledger.document(first[0]).content is not None

    out = CliRunner().invoke(app, ["--home", str(ws.home), "requests", "publish", str(stale)])
    assert out.exit_code == 2 and "Traceback" not in out.output and "--rebase" in out.output

    out = CliRunner().invoke(app, ["--home", str(ws.home), "requests", "publish", str(stale), "--rebase", "--json"])
    assert out.exit_code == 0, out.output
    old = ledger.forget_request(stale)
    assert old.status == "cancelled" and "rebased" in old.error
    [rebased] = [r for r in ledger.forget_requests() if r.id not in (stale, newer.request_id)]
    assert rebased.status == "succeeded" and rebased.base_version_id == latest.id
    final = ledger.resolve_version("latest")  # untainted: serving it needs no override
    assert final.id == rebased.result_version_id and final.parent_id == latest.id
    assert ledger.document(first[0]).content is None
