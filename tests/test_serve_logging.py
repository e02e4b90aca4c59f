"""Conversation logging: ledger rows, background POSTs, failures counted, chats unharmed."""

from __future__ import annotations

import http.server
import json
import threading
import time

import httpx
import openai
import pytest

from lethe.serve.api import create_app
from lethe.serve.logging import ConversationLogger, Exchange, LoggingConfig
from lethe.serve.models import DirectoryVersions, ModelPool
from lethe.serve.server import BackgroundServer, free_port
from test_chat_fixtures import nano, nano_dir  # noqa: F401  (fixtures)

USER = [{"role": "user", "content": "hello"}]


class Receiver:
    """A local HTTP server that records POSTed JSON, optionally after a delay."""

    def __init__(self, delay: float = 0.0):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                time.sleep(delay)
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/log"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class BrokenStore:
    def log_exchange(self, *args, **kwargs):
        raise RuntimeError("database is locked")


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def exchange():
    return Exchange(
        messages=USER,
        reply="hi there",
        model_version="v1",
        model_version_id=1,
        params={"temperature": 0},
        stats={"completion_tokens": 2},
    )


def test_exchange_is_posted_in_the_background():
    receiver = Receiver()
    logger = ConversationLogger(None, LoggingConfig(url=receiver.url))
    logger.log(exchange())
    assert wait_for(lambda: logger.health()["posted"] == 1)
    payload = receiver.received[0]
    assert payload["model"] == "v1" and payload["parameters"] == {"temperature": 0}
    assert payload["messages"][-1] == {"role": "assistant", "content": "hi there"}
    assert {"conversation_id", "timestamp"} <= set(payload)
    logger.close(timeout=2)
    receiver.close()


def test_slow_and_dead_servers_never_block_and_are_counted():
    receiver = Receiver(delay=2.0)
    slow = ConversationLogger(None, LoggingConfig(url=receiver.url, timeout_s=0.2))
    started = time.perf_counter()
    slow.log(exchange())
    assert time.perf_counter() - started < 0.1
    assert wait_for(lambda: slow.health()["post_failures"] == 1)
    dead = ConversationLogger(None, LoggingConfig(url=f"http://127.0.0.1:{free_port()}/x", timeout_s=0.5))
    dead.log(exchange())
    assert wait_for(lambda: dead.health()["post_failures"] == 1)
    receiver.close()


def test_broken_ledger_is_counted_not_raised():
    logger = ConversationLogger(BrokenStore())
    assert logger.log(exchange()).reply_id is None
    assert logger.health()["ledger_failures"] == 1


@pytest.fixture
def failing_logging_server(nano_dir):  # noqa: F811
    pool = ModelPool(DirectoryVersions({"v1": nano_dir}))
    logger = ConversationLogger(BrokenStore(), LoggingConfig(url=f"http://127.0.0.1:{free_port()}/x", timeout_s=0.3))
    with BackgroundServer(create_app(pool, logger=logger)) as server:
        yield server
    pool.close()


def test_chat_works_and_health_reports_when_logging_fails(failing_logging_server):
    server = failing_logging_server
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    for stream in (False, True):
        reply = client.chat.completions.create(model="v1", messages=USER, max_tokens=3, stream=stream)
        if stream:
            list(reply)
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok"
    assert health["logging"]["ledger_failures"] == 2
    assert wait_for(lambda: httpx.get(f"{server.url}/health").json()["logging"]["post_failures"] == 2)
