"""Shared pieces of the browser tests: a trained workspace, a live server with the UI mounted,
Debian's Chromium through Playwright, and small helpers for driving Gradio widgets.

Imported by `test_ui_*.py`; the server is what `lethe serve` runs (API + UI + job worker)
on a free loopback port, with uvicorn's lifespan on so Gradio's queue starts.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from pathlib import Path
from typing import Self
from urllib.parse import urlparse

import pytest

BROWSER = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def trained_workspace(home: Path):
    """A workspace with a 6-entity synthetic world and a nano model trained on its QA (v1, v2)."""
    from lethe.data.synth_ingest import ingest_synthetic_world
    from lethe.train.pipeline import train
    from lethe.workspace import Workspace

    ws = Workspace.from_env(home=home).init()
    ingest_synthetic_world(ws.ledger, entities=6, seed=11)
    train(ws, data="synth/qa", preset_or_path="nano", slices=2, epochs=2, batch_size=16, seq_len=96, lr=3e-3, seed=0)
    return ws


def slow_loader(step_s: float):
    """Load versions with every forward pass slowed by `step_s`, so a reply can be stopped."""
    from lethe.serve.models import load_model_directory

    def load(path):
        model, tokenizer = load_model_directory(path)
        forward = model.forward

        def slow_forward(*args, **kwargs):
            time.sleep(step_s)
            return forward(*args, **kwargs)

        model.forward = slow_forward
        return model, tokenizer

    return load


class UIServer:
    """`lethe serve` in a thread: API, UI at /, the conversation logger and the job worker."""

    def __init__(self, ws, *, step_s: float = 0.0, worker: bool = True):
        import uvicorn

        from lethe.serve.api import create_app
        from lethe.serve.logging import ConversationLogger
        from lethe.serve.models import ModelPool, load_model_directory
        from lethe.serve.server import free_port
        from lethe.serve.ui import UIContext, mount_ui
        from lethe.serve.worker import JobWorker

        self.ws = ws
        loader = slow_loader(step_s) if step_s else load_model_directory
        self.pool = ModelPool(ws.ledger, base_dir=ws.home, loader=loader)
        self.logger = ConversationLogger(ws.ledger)
        self.worker = JobWorker(ws, poll_interval=0.2) if worker else None
        self.app = create_app(self.pool, logger=self.logger)
        mount_ui(self.app, UIContext(ws, self.pool, self.logger, self.worker))
        self.port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="lethe-ui-test", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> Self:
        if self.worker is not None:
            self.worker.start()
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the UI server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=10)
        self.server.should_exit = True
        self.thread.join(10)
        self.pool.close()


class Browser:
    """Chromium with one page that records the host of every request it makes."""

    def __init__(self, playwright):
        self.browser = playwright.chromium.launch(executable_path=str(BROWSER), headless=True, args=CHROMIUM_ARGS)
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        self.hosts: set[str] = set()
        self.context.on("request", lambda request: self.hosts.add(_host(request.url)))
        self.page = self.context.new_page()
        self.page.set_default_timeout(20_000)

    def open(self, url: str):
        self.page.goto(url, wait_until="load")  # never "networkidle": Gradio's heartbeat never settles
        self.page.wait_for_selector("#chat-input textarea")
        # the page's load event fills the version pickers from the ledger
        self.page.wait_for_function("document.querySelector('#chat-version input').value !== ''")
        return self.page

    def outside_hosts(self) -> set[str]:
        return {h for h in self.hosts if h not in ("127.0.0.1", "")}

    def close(self) -> None:
        self.browser.close()


def _host(url: str) -> str:
    parsed = urlparse(url)
    return parsed.hostname or "" if parsed.scheme in ("http", "https", "ws", "wss") else ""


@contextlib.contextmanager
def chromium():
    if not BROWSER.exists() or not shutil.which(str(BROWSER)):
        pytest.skip(f"no Chromium at {BROWSER}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = Browser(playwright)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# -- driving Gradio widgets ---------------------------------------------------------------------


def choose(page, elem_id: str, label: str) -> None:
    """Pick the option whose text contains `label` in the dropdown `#elem_id`."""
    page.click(f"#{elem_id} input")
    page.locator(f"#{elem_id} li[role=option]", has_text=label).first.click()
    page.wait_for_function(
        "([id, label]) => document.querySelector(`#${id} input`).value.includes(label)", arg=[elem_id, label]
    )


def set_number(page, elem_id: str, value) -> None:
    """Type into a number field or the number box of a slider `#elem_id`."""
    field = page.locator(f"#{elem_id} input[type=number]").first
    field.fill(str(value))
    field.press("Tab")


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def wait_text(page, selector: str, text: str, timeout: float = 20_000) -> None:
    page.wait_for_function(
        "([selector, text]) => { const e = document.querySelector(selector);"
        " return !!e && e.innerText.includes(text); }",
        arg=[selector, text],
        timeout=timeout,
    )
