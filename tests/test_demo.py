"""`lethe demo --quick`: the whole story end to end, as part of the suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lethe.ledger.integrity import check
from lethe.workspace import Workspace


def test_quick_demo_runs_the_whole_story():
    # the real command in its own process, so every warning a library prints reaches its output
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    result = subprocess.run(
        [sys.executable, "-m", "lethe", "--threads", "1", "demo", "--quick", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    noise = [line for line in result.stderr.splitlines() if "warn" in line.lower() or "deprecat" in line.lower()]
    assert noise == [], noise  # lethe's own use of its libraries draws no warnings
    out = json.loads(result.stdout)
    assert set(out["summary"]) == {"before", "exact", "grad_diff"}
    assert {
        "generate and ingest a fictional world",
        "the weekly update: one more slice",
        "exact unlearning: replay from the last clean checkpoint",
        "write the HTML report",
    } <= set(out["timings"])
    ws = Workspace.from_env()
    ledger = ws.ledger
    published = ledger.resolve_version("latest")
    assert published.name == out["versions"]["published"] and published.kind == "replay"
    exact_request = ledger.forget_request(out["request_ids"]["exact"])
    fast_request = ledger.forget_request(out["request_ids"]["grad_diff"])
    assert exact_request.status == "succeeded" and fast_request.status == "cancelled"
    assert fast_request.error.startswith("discarded by the demo")  # not "by the user"
    forgotten = [d for d, trained in ledger.forget_request_documents(exact_request.id) if trained]
    assert forgotten and all(d.content is None for d in ledger.documents(forgotten))
    assert all(published.id not in {v.id for v in ledger.versions_that_saw(d)} for d in forgotten)
    assert fast_request.audit["reference_comparison"] is not None  # audited against the exact replay
    assert (ws.home / "reports" / "report.html").stat().st_size > 10_000
    written = json.loads((ws.home / "reports" / "demo-summary.json").read_text())
    assert written["summary"] == out["summary"] and written["config"]["preset"] == "nano"
    assert check(ledger) == []
