"""Forgetting through the web UI, end to end in Chromium on a nano model: a job watched live,
refreshed and cancelled; a forget request run by the worker, compared, published, and the new
version offered in the chat; then the changelog and data tabs. Screenshots of every tab go
to test-artifacts/.
"""

from __future__ import annotations

import re

import pytest

from ui_helpers import (
    UIServer,
    choose,
    chromium,
    open_tab,
    screenshot,
    set_number,
    trained_workspace,
    wait_text,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The trained workspace (token impacts of one entity stored), a server and a browser."""
    from lethe.eval.impact import compute_impacts

    ws = trained_workspace(tmp_path_factory.mktemp("ui-forget") / "home")
    ledger = ws.ledger
    trained = set(ledger.collection_ids("synth/qa"))
    entities = sorted(c.name for c, _ in ledger.collections() if c.name.startswith("synth/entity/"))
    entity_docs = [[d for d in ledger.collection_ids(name) if d in trained] for name in entities]
    forget_doc, shown_doc = (docs[0] for docs in [d for d in entity_docs if d][:2])
    compute_impacts(ws, "latest", document_ids=[shown_doc])
    with UIServer(ws, step_s=0.01) as server, chromium() as browser:
        browser.open(server.url)
        yield ws, server, browser, ledger.document(forget_doc), ledger.document(shown_doc)


def status(page) -> str:
    return page.inner_text("#forget-status")


DRAWN_LINE = """(chart) => [...document.querySelectorAll(`${chart} svg .mark-line path`)]
    .some(p => (p.getAttribute('d') || '').split(/[LM]/).length > 2
               && !['', 'none', 'transparent'].includes(p.getAttribute('stroke') || ''))"""


def wait_drawn(page, chart: str, timeout: float = 60_000) -> None:
    """Wait until the chart has drawn a visible line (a stroked mark of two points or more in its SVG)."""
    page.wait_for_function(DRAWN_LINE, arg=chart, timeout=timeout)


def select_document(page, doc) -> None:
    page.locator("#forget-query").locator("textarea, input").first.fill(doc.data["question"])
    page.click("#forget-search")
    page.wait_for_selector(f"#forget-results label:has-text('#{doc.id} ')")
    box = page.locator(f"#forget-results label:has-text('#{doc.id} ') input[type=checkbox]")
    if not box.is_checked():
        box.check()


def test_a_job_shows_live_progress_survives_a_refresh_and_cancels(setup):
    ws, _server, browser, doc, _ = setup
    page = browser.page
    open_tab(page, "Forget")
    select_document(page, doc)
    set_number(page, "forget-steps", 3000)
    set_number(page, "forget-eval-every", 25)
    page.locator("#forget-evaluate input[type=checkbox]").uncheck()
    page.click("#forget-run")
    page.wait_for_function("/step \\d+\\/3000/.test(document.querySelector('#forget-status').innerText)")
    first = int(re.search(r"step (\d+)/3000", status(page)).group(1))
    page.wait_for_function(
        f"(() => {{ const m = /step (\\d+)\\/3000/.exec(document.querySelector('#forget-status').innerText);"
        f" return m && +m[1] > {first}; }})()"
    )  # the timer keeps reading progress from the ledger
    for chart in ("#forget-loss-plot", "#forget-nll-plot", "#forget-acc-plot"):
        wait_drawn(page, chart)  # drawn while the job runs, not once it has ended
    assert "running" in status(page)
    screenshot(page, "ui-forget-live-charts")
    page.reload(wait_until="load")
    page.wait_for_selector("#chat-input textarea")
    open_tab(page, "Forget")
    wait_text(page, "#forget-status", "running")  # the job was found again in the ledger
    screenshot(page, "ui-forget-running")
    page.click("#forget-cancel")
    wait_text(page, "#forget-status", "cancelled")
    job = ws.ledger.jobs(kind="forget")[0]
    assert job.status == "cancelled"
    assert ws.ledger.forget_request(job.params["request_id"]).status == "cancelled"
    assert ws.ledger.document(doc.id).content is not None  # nothing erased


def test_forget_end_to_end_then_the_new_version_is_in_the_chat(setup):
    ws, _server, browser, doc, _ = setup
    page = browser.page
    open_tab(page, "Forget")
    select_document(page, doc)
    set_number(page, "forget-steps", 4)
    set_number(page, "forget-eval-every", 2)
    set_number(page, "forget-audit-items", 4)
    page.locator("#forget-evaluate input[type=checkbox]").check()
    page.click("#forget-run")
    wait_text(page, "#forget-status", "evaluated", timeout=60_000)
    page.wait_for_function("!document.querySelector('#forget-publish').disabled")
    assert "step 4/4" in status(page)
    assert "forget" in page.inner_text("#forget-table")  # the before / after table
    assert "Audit" in page.inner_text("#forget-audit")
    screenshot(page, "ui-forget")

    # before publishing: the base and the candidate side by side, both streaming
    open_tab(page, "Compare")
    choose(page, "compare-left", "v2 ·")
    choose(page, "compare-right", "v3 ·")  # the candidate, listed here before it is published
    page.locator("#compare-prompt textarea").fill(doc.data["question"])
    page.click("#compare-run")
    for side in ("#compare-left-out", "#compare-right-out"):
        wait_text(page, side, "tokens/s")
    assert page.inner_text("#compare-right-out").count("v3 ·") == 1
    screenshot(page, "ui-compare")

    open_tab(page, "Forget")
    page.click("#forget-publish")
    wait_text(page, "#forget-outcome", "Published")
    assert ws.ledger.resolve_version("latest").name == "v3"
    assert ws.ledger.document(doc.id).content is None  # erased on publication
    # the search results refresh: the erased document (and its text) leaves them
    page.wait_for_function(
        "(id) => ![...document.querySelectorAll('#forget-results label')].some(l => l.innerText.startsWith(`#${id} `))",
        arg=doc.id,
    )

    open_tab(page, "Chat")
    page.wait_for_function("document.querySelector('#chat-version input').value.includes('v3')")
    page.click("#chat-version input")
    options = page.locator("#chat-version li[role=option]").all_inner_texts()
    page.keyboard.press("Escape")
    assert any("v3" in o and "unlearn" in o for o in options)
    assert not any(o.strip().startswith("v2") for o in options)  # tainted now: not servable


def test_changelog_and_data_tabs(setup):
    _, _, browser, forgotten, shown = setup
    page = browser.page
    open_tab(page, "Changelog")
    wait_text(page, "#changelog-events", "forget.succeeded")
    actor = page.locator("#changelog-events th", has_text="actor").first
    assert actor.bounding_box()["width"] >= 60  # readable, not squeezed into vertical letters
    screenshot(page, "ui-changelog")
    page.get_by_role("tab", name="Versions").click()
    wait_text(page, "#changelog-tree", "v3 [unlearn")
    wait_text(page, "#changelog-versions", "tainted")
    screenshot(page, "ui-changelog-versions")
    page.get_by_role("tab", name="Evaluations").click()
    wait_text(page, "#changelog-evaluations", "audit")
    screenshot(page, "ui-changelog-evaluations")

    open_tab(page, "Data")
    row = page.locator("#data-documents").get_by_text(shown.key, exact=True)
    row.filter(visible=True).first.click()  # browse, pick a row
    wait_text(page, "#data-header", f"#{shown.id} ")
    page.locator("#data-doc-id input").fill(str(forgotten.id))
    page.click("#data-open")
    wait_text(page, "#data-header", "Forgotten")
    wait_text(page, "#data-saw", "v2")  # exposures: the versions that saw it
    wait_text(page, "#data-saw", "trained on it")
    page.locator("#data-doc-id input").fill(str(shown.id))
    page.click("#data-open")
    page.wait_for_selector("#data-text mark")  # token-impact highlighting
    screenshot(page, "ui-data")


def test_the_page_calls_no_one_but_the_server(setup):
    _, _, browser, _, _ = setup
    assert browser.hosts and browser.outside_hosts() == set()
