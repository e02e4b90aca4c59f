"""The Chat tab in Chromium against a live server: streaming, stop, version switch, edits.

One trained nano workspace and one server for the module; replies are slowed per forward pass
so that a reply can be watched while it streams and stopped before it ends.
"""

from __future__ import annotations

import pytest

from ui_helpers import (
    UIServer,
    choose,
    chromium,
    screenshot,
    set_number,
    trained_workspace,
    wait_text,
)

pytestmark = pytest.mark.browser

BOT = "#chat-log [data-testid=bot]"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ws = trained_workspace(tmp_path_factory.mktemp("ui-chat") / "home")
    with UIServer(ws, step_s=0.03) as running:
        yield running


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as running:
        running.open(server.url)
        yield running


def last_reply(page) -> str:
    replies = page.locator(BOT)
    return replies.nth(replies.count() - 1).inner_text() if replies.count() else ""


def send(page, text: str) -> None:
    page.fill("#chat-input textarea", text)
    page.press("#chat-input textarea", "Enter")


def test_a_reply_streams_with_stats_under_it(browser, server):
    page = browser.page
    assert page.input_value("#chat-version input").startswith("latest")
    # Every rendering of the reply, recorded by the page itself (polling could miss a short one).
    page.evaluate(f"""() => {{
        window.__replies = [];
        new MutationObserver(() => {{
            const reply = [...document.querySelectorAll('{BOT}')].pop();
            if (reply) window.__replies.push(reply.innerText);
        }}).observe(document.querySelector('#chat-log'), {{subtree: true, childList: true, characterData: true}});
    }}""")
    send(page, "When was Bedrork Bathzi born?")
    page.wait_for_function(
        f"(() => {{ const r = [...document.querySelectorAll('{BOT}')].pop();"
        " return r && r.innerText.includes('tokens/s'); })()"
    )
    text = last_reply(page)
    partial = [t for t in page.evaluate("window.__replies") if t.strip() and "…" in t and "tokens/s" not in t]
    assert partial, "the reply never showed while it was being generated"
    assert text.strip().splitlines()[-1].startswith("v2 · ")  # the version that answered
    screenshot(page, "ui-chat")
    conversations = server.ws.ledger.list_conversations()
    assert conversations, "the exchange was logged to the ledger"


def test_stop_ends_a_reply_midway(browser):
    page = browser.page
    page.get_by_text("Sampling").click()
    set_number(page, "chat-temperature", 5)  # flat distribution: no early end of turn
    set_number(page, "chat-max-tokens", 220)  # ~7 s at the slowed pace
    set_number(page, "chat-seed", 3)
    send(page, "Tell me everything.")
    page.wait_for_function(
        f"(() => {{ const r = [...document.querySelectorAll('{BOT}')].pop();"
        " return r && r.innerText.includes('…') && r.innerText.trim().length > 12; })()"
    )
    page.click("#chat-stop")
    wait_text(page, "#chat-log", "stopped", timeout=5_000)
    reply = last_reply(page)
    assert "stopped" in reply and "tokens/s" in reply
    tokens = int(reply.strip().splitlines()[-1].split(" · ")[1].split()[0])
    assert 0 < tokens < 220
    set_number(page, "chat-max-tokens", 24)


def test_regenerate_edit_and_clear(browser):
    page = browser.page
    before = page.locator(BOT).count()
    page.click("#chat-regenerate")
    # the stopped reply is replaced by a new one (not added after it), which runs to its end
    page.wait_for_function(
        f"(() => {{ const all = [...document.querySelectorAll('{BOT}')], r = all.pop();"
        f" return all.length === {before - 1} && r.innerText.includes('tokens/s')"
        " && !r.innerText.includes('stopped'); })()"
    )
    page.click("#chat-edit")
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length === {before - 1}")
    assert page.input_value("#chat-input textarea") == "Tell me everything."
    page.click("#chat-clear")
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length === 0")


def test_switching_the_model_version(browser):
    page = browser.page
    choose(page, "chat-version", "v1")
    send(page, "What is Bedrork Bathzi's occupation?")
    page.wait_for_function(
        f"(() => {{ const r = [...document.querySelectorAll('{BOT}')].pop();"
        " return r && r.innerText.includes('tokens/s'); })()"
    )
    assert last_reply(page).strip().splitlines()[-1].startswith("v1 · ")


def test_the_page_calls_no_one_but_the_server(browser):
    assert browser.hosts, "no request was recorded"
    assert browser.outside_hosts() == set()
