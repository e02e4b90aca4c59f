"""`lethe tune` on a tiny world: the study is stored, resumable, and `--tuned` applies it."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from lethe.cli import app

runner = CliRunner()
FIXED = ["-p", "forget_batch_size=4", "-p", "eval_every=0"]


def invoke(*args, code=0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.output


def request_collection(ws) -> str:
    trained = set(ws.ledger.collection_ids("synth/qa"))
    names = sorted(c.name for c, _ in ws.ledger.collections() if c.name.startswith("synth/entity/"))
    names = [n for n in names if set(ws.ledger.collection_ids(n)) & trained]
    kinds = {n.rsplit("/", 1)[0] for n in names}
    kind = max(sorted(kinds), key=lambda k: sum(n.startswith(k + "/") for n in names))  # the kind with most
    return next(n for n in names if n.startswith(kind + "/"))


def test_tune_stores_resumes_and_forget_tuned_applies_the_best(trained_workspace, tmp_path):
    ws, _, _ = trained_workspace
    ledger = ws.ledger
    like = request_collection(ws)
    common = ["--like", like, "--calibration", "2", "--no-robustness", *FIXED, "--json"]
    first = json.loads(invoke("tune", "npo", "--trials", "2", *common))[0]
    assert [t["number"] for t in first["trials"]] == [0, 1]
    calibration = first["calibration"]
    assert like not in calibration["subjects"] and len(calibration["subjects"]) == 2
    request_ids = set(ledger.collection_ids(like))
    row = ledger.tuning_calibration_by_id(calibration["id"])
    assert not request_ids & set(row.document_ids)  # calibration is disjoint from the real request
    version_count = len(ledger.list_versions(include_discarded=True))

    # a second call resumes the same study: trial numbers continue, the exact replay is reused
    second = json.loads(invoke("tune", "npo", "--trials", "1", *common))[0]
    assert second["id"] == first["id"] and second["calibration"]["id"] == calibration["id"]
    assert [t["number"] for t in second["trials"]] == [0, 1, 2]
    assert second["trials"][:2] == first["trials"]
    assert len(ledger.list_versions(include_discarded=True)) == version_count
    best = second["best"]
    complete = [t for t in second["trials"] if t["state"] == "complete"]
    assert best["number"] in {t["number"] for t in complete}
    assert all(0 <= t["forget_quality"] <= 1 and t["utility_fraction"] > 0 for t in complete)
    listed = json.loads(invoke("tune", "ls", "--json"))
    assert [(s["name"], s["trials"]) for s in listed] == [(second["name"], 3)]
    shown = json.loads(invoke("tune", "show", str(second["id"]), "--json"))
    assert shown["best"] == best
    chart = tmp_path / "pareto.png"
    invoke("tune", "show", second["name"], "--plot", str(chart))
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    from lethe.report.html import render_report

    assert "Tuning against the exact answer" in render_report(ws)  # the report's Pareto panel

    # --tuned: the request runs with the chosen trial's settings
    out = json.loads(invoke("forget", "--collection", like, "--method", "npo", "--tuned", "--no-publish", "--json"))
    request = ledger.forget_request(out["request_id"])
    for key, value in best["params"].items():
        assert request.config[key] == value
    assert request.config["forget_batch_size"] == 4  # the study's fixed settings come along
    # --method auto picks the tuned method (the only one)
    auto = invoke("forget", "--collection", like, "--method", "auto", "--dry-run")
    assert "method npo" in auto


def test_tune_show_draws_the_pareto_front(tmp_path):
    from lethe.report.tuning import pareto_figure, pareto_front

    assert pareto_front([(0.5, 0.9), (0.9, 0.5), (0.8, 0.4), (1.0, 0.1)]) == [(0.5, 0.9), (0.9, 0.5), (1.0, 0.1)]
    trials = [
        {"number": i, "state": "complete", "forget_quality": q, "utility_fraction": u}
        for i, (u, q) in enumerate([(0.99, 0.2), (1.01, 0.05), (0.9, 0.8)])
    ]
    study = {"method": "npo", "trials": trials, "config": {"utility_fraction": 0.97}, "best": trials[0]}
    fig = pareto_figure([study])
    ax = fig.axes[0]
    assert len(ax.collections) == 2  # the trials and the ring around the chosen one
    assert list(ax.collections[1].get_offsets()[0]) == [0.99, 0.2]
    assert np.allclose(sorted(ax.collections[0].get_offsets()[:, 1]), [0.05, 0.2, 0.8])


def test_bad_tune_input_is_a_sentence_and_changes_nothing(trained_workspace):
    ws, _, _ = trained_workspace
    like = request_collection(ws)
    assert "exact answer itself" in invoke("tune", "exact", "--like", like, code=2)
    out = invoke("tune", "nosuch", "--like", like, code=2)
    assert "nosuch" in out
    out = invoke("tune", "npo", "--like", like, "--calibration", "0", code=2)
    assert "--calibration" in out
    out = invoke("tune", "npo", "--like", like, "-p", "betta=0.1", code=2)
    assert "betta" in out
    out = invoke("forget", "--collection", like, "--method", "npo", "--tuned", code=2)
    assert "no tune of npo" in out
    out = invoke("forget", "--collection", like, "--method", "auto", code=2)
    assert "no tuned method" in out
    assert ws.ledger.tuning_studies() == [] and ws.ledger.forget_requests() == []
    assert "Traceback" not in out
