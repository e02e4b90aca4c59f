"""With an API key, both the API and the web UI refuse anyone without it (real server, real HTTP)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

KEY = "s3cret-key"


@pytest.fixture
def keyed_server(trained_workspace):
    import uvicorn

    from lethe.serve.api import create_app
    from lethe.serve.logging import ConversationLogger
    from lethe.serve.models import ModelPool
    from lethe.serve.server import free_port
    from lethe.serve.ui import UIContext, mount_ui

    ws, _, _ = trained_workspace
    pool = ModelPool(ws.ledger, base_dir=ws.home)
    logger = ConversationLogger(ws.ledger)
    app = create_app(pool, logger=logger, api_key=KEY, host="127.0.0.1")
    mount_ui(app, UIContext(ws, pool, logger, None), api_key=KEY)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_the_api_and_the_ui_need_the_key(keyed_server):
    with httpx.Client(base_url=keyed_server, timeout=30) as client:
        assert client.get("/v1/models").status_code == 401
        assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert client.get("/config").status_code == 401  # the UI's app config, before logging in
        assert client.post("/login", data={"username": "me", "password": "wrong"}).status_code >= 400
        assert client.get("/config").status_code == 401
        assert client.post("/login", data={"username": "me", "password": KEY}).status_code == 200
        assert client.get("/config").status_code == 200  # the session cookie now opens the UI


def test_failed_logins_are_rate_limited_per_client(keyed_server):
    with httpx.Client(base_url=keyed_server, timeout=30) as client:
        statuses = [
            client.post("/login", data={"username": "me", "password": f"guess{i}"}).status_code for i in range(12)
        ]
        assert all(400 <= s < 429 for s in statuses[:10]) and statuses[10:] == [429, 429]
        # even the right key waits: the limit is on the client, not on the guess
        assert client.post("/login", data={"username": "me", "password": KEY}).status_code == 429
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 429
