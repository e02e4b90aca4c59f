"""Plots and the self-contained HTML report."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
import torch

from eval_helpers import documents, workspace_with_models
from lethe.eval.audit import AuditConfig, build_audit
from lethe.eval.mia import roc_points
from lethe.eval.suite import SuiteConfig
from lethe.report import plots
from lethe.report.html import render_report, write_report

torch.set_num_threads(1)
PNG = b"\x89PNG\r\n\x1a\n"


def _history(sign: float) -> list[dict]:
    return [
        {
            "step": i + 1,
            "losses": {"loss": sign * float(np.log(i + 2))},
            "metrics": {"forget_loss": 0.1 + 0.1 * i, "retain_loss": 0.1} if i % 3 == 0 else None,
        }
        for i in range(10)
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda: plots.tradeoff(
            [
                {"method": "npo", "forget_quality": 0.2, "model_utility": 0.4},
                {"method": "ga", "forget_quality": 0.0, "model_utility": 0.1},
            ],
            retain={"model_utility": 0.5},
            target={"model_utility": 0.55, "forget_quality": 1e-9},
        ),
        lambda: plots.tradeoff([]),
        lambda: plots.before_after(
            {"loss": 0.1, "exact_match": 1.0}, {"loss": 2.0, "exact_match": 0.1}, {"loss": 2.5, "exact_match": 0.0}
        ),
        lambda: plots.before_after({}, {}),
        lambda: plots.loss_curves({"npo": _history(1), "ga": _history(-1)}),
        lambda: plots.loss_curves({}),
        lambda: plots.roc(
            {"before": roc_points([3, 4, 5], [0, 1, 2]), "after": {"fpr": [0, 1], "tpr": [0, 1], "auc": 0.5}}
        ),
        lambda: plots.truth_ratio_histograms({"target": [0.1, 0.2, 0.05], "retain model": [0.9, 1.1, 1.0]}),
        lambda: plots.truth_ratio_histograms({"x": [1.0, 1.0]}),
    ],
    ids=["tradeoff", "tradeoff-empty", "bars", "bars-empty", "loss", "loss-empty", "roc", "hist", "hist-flat"],
)
def test_every_plot_renders_to_png(make) -> None:
    png = plots.png_bytes(make())
    assert png.startswith(PNG) and len(png) > 2000


def test_the_report_is_self_contained(tmp_path) -> None:
    ws, ids, target, retain, (tokenizer, target_model, retain_model) = workspace_with_models(tmp_path)
    ledger = ws.ledger
    docs = documents()
    audit = build_audit(
        target_model,
        retain_model,
        tokenizer,
        forget=docs["forget"],
        retain=docs["retain"],
        holdout=docs["holdout"],
        reference_model=retain_model,
        config=AuditConfig(suite=SuiteConfig(generate=False), samples=0),
        info={"request": {"id": 1}},
    )
    request_id = ledger.create_forget_request(
        selector={"collection": "test/forget"},
        document_ids=ids["forget"],
        trained_ids=ids["forget"],
        method="npo <b>",
        base_version_id=target.id,
        reason="right to be <forgotten>",
    )
    run_id = ledger.start_run("unlearn", config={"method": "npo"})
    ledger.finish_run(run_id, metrics={"history": _history(1)})
    ledger.update_forget_request(
        request_id, audit=audit, result_version_id=retain.id, run_id=run_id, status="succeeded"
    )
    ledger.add_evaluations(target.id, "suite", audit["metrics"]["before"])
    bench = ws.home / "bench" / "tofu-abc"
    bench.mkdir(parents=True)
    (bench / "results.json").write_text(
        '{"benchmark": "tofu", "config_hash": "abc", "rows": '
        '[{"method": "npo", "forget_quality": 0.5}], "timings": {"train": 1.5}}'
    )
    plots.save_png(plots.tradeoff([]), bench / "tradeoff.png")

    path = write_report(ws, tmp_path / "out")
    html = path.read_text()
    assert path.name == "report.html" and html.startswith("<!DOCTYPE html>")
    # nothing to fetch: no scripts, no external links or sources
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 6  # 2 bars, ROC, truth ratios, loss curves, the benchmark's own PNG
    assert all(base64.b64decode(data).startswith(PNG) for data in images)
    # user text is escaped
    assert "right to be &lt;forgotten&gt;" in html and "npo &lt;b&gt;" in html
    for heading in (
        "Model versions",
        "Forget requests",
        "Audit of forget request",
        "Unlearning runs",
        "Evaluations",
        "Benchmarks",
    ):
        assert heading in html
    assert "abc" in html and "target" in html
    assert render_report(ws).count("<table") >= 5
