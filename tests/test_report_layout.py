"""The report fits the page: tables scroll in their box, NLL on a log scale, training curves,
erased samples in one line; checked in Chromium at a laptop's width."""

from __future__ import annotations

import pytest

from lethe.report import plots
from lethe.report.html import write_report
from ui_helpers import chromium, screenshot

WIDE = "x" * 40 + " " + "a-very-long-selector-value/" * 12


def test_loss_panel_is_log_scale_so_a_tiny_before_stays_visible():
    fig = plots.before_after({"loss": 0.005, "exact_match": 1.0}, {"loss": 6.75, "exact_match": 0.0})
    loss_axis = next(ax for ax in fig.axes if "NLL" in ax.get_title())
    assert loss_axis.get_yscale() == "log"
    low, high = loss_axis.get_ylim()
    assert low < 0.005 and high > 6.75


def _request_with_erased_samples(ws, versions):
    ledger = ws.ledger
    ids = ledger.collection_ids("synth/qa")[:2]
    request_id = ledger.create_forget_request(
        selector={"docs": [str(i) for i in ids]},
        document_ids=ids,
        trained_ids=ids,
        method="grad_diff",
        base_version_id=versions[-1].id,
        reason=WIDE,
    )
    split = {"loss": 0.005, "token_accuracy": 1.0, "exact_match": 1.0}
    audit = {
        "metrics": {"before": {"forget": split}, "after": {"forget": {**split, "loss": 6.75, "exact_match": 0.0}}},
        "samples": [{"question": "[erased]", "answer": "[erased]", "before": "[erased]", "after": "[erased]"}] * 3,
    }
    ledger.update_forget_request(request_id, audit=audit, result_version_id=versions[0].id, status="evaluated")
    return request_id


@pytest.mark.browser
def test_the_report_fits_a_laptop_window(trained_workspace, tmp_path):
    ws, _world, versions = trained_workspace
    _request_with_erased_samples(ws, versions)
    path = write_report(ws, tmp_path / "out")
    html = path.read_text()
    assert "<h2>Training</h2>" in html  # the loss curves of the training slices
    assert "3 sample answers: erased with the documents they quote." in html
    assert "<td>[erased]</td>" not in html
    with chromium() as browser:
        page = browser.page
        page.goto(path.as_uri(), wait_until="load")
        width = page.evaluate("document.documentElement.scrollWidth")
        viewport = page.evaluate("window.innerWidth")
        assert width <= viewport, f"the report is {width}px wide in a {viewport}px window"
        # the wide table scrolls inside its own box instead
        boxes = page.evaluate("[...document.querySelectorAll('.scroll')].map(b => [b.scrollWidth, b.clientWidth])")
        assert boxes and all(client <= viewport for _, client in boxes)
        # no cell is squeezed into a column of single letters
        narrow = page.evaluate(
            "[...document.querySelectorAll('th')].filter(th => th.getBoundingClientRect().width < 20).length"
        )
        assert narrow == 0
        screenshot(page, "report-layout")
