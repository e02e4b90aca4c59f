"""Hostile or careless clients against a live server: every one refused with a 4xx, quickly.

Strict types and ranges (each error names its field), unknown fields, invalid Unicode,
histories too long to read, bodies too large to hold (declared or chunked), foreign Host
headers, and what `/health` tells a stranger.
"""

from __future__ import annotations

import json
import resource
import time

import httpx
import pytest

from lethe.chat import EngineConfig
from lethe.chat.prompt import fit_prompt
from lethe.serve.api import ServeLimits, create_app
from lethe.serve.logging import ConversationLogger
from lethe.serve.models import DirectoryVersions, ModelPool
from lethe.serve.server import BackgroundServer
from test_chat_fixtures import nano, nano_dir  # noqa: F401  (fixtures)
from test_serve_api import MemoryStore

KEY = "k3y"
AUTH = {"authorization": f"Bearer {KEY}"}
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def store():
    return MemoryStore()


@pytest.fixture(scope="module")
def server(nano_dir, store):  # noqa: F811
    pool = ModelPool(DirectoryVersions({"v1": nano_dir}), engine_config=EngineConfig(max_batch_size=4))
    limits = ServeLimits(max_body_bytes=1024 * 1024, max_messages=1000)
    app = create_app(pool, logger=ConversationLogger(store), limits=limits)
    with BackgroundServer(app) as running:
        yield running
    pool.close()


def post(server, body: dict | bytes, **kw) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json", **kw.pop("headers", {})}
    return httpx.post(f"{server.base_url}/chat/completions", content=content, headers=headers, timeout=30, **kw)


BASE = {"model": "v1", "messages": USER, "max_tokens": 2}


@pytest.mark.parametrize(
    "change, param",
    [
        ({"max_tokens": "10"}, "max_tokens"),
        ({"stream": "yes"}, "stream"),
        ({"top_k": 1e12}, "top_k"),
        ({"top_k": 10**12}, "top_k"),
        ({"repetition_penalty": 1e308}, "repetition_penalty"),
        ({"seed": 2**80}, "seed"),
        ({"max_tokens": 1e30}, "max_tokens"),
        ({"max_tokens": 10**30}, "max_tokens"),
        ({"temperature": "0.5"}, "temperature"),
        ({"n": 1.0}, "n"),
        ({"frequency_penalty": 3}, "frequency_penalty"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 99}, "top_logprobs"),
        ({"n": 50}, "n"),
        ({"tools": [{"type": "function"}]}, "tools"),
        ({"frobnicate": 1}, "frobnicate"),
        ({"messages": [{"role": "user", "content": "hi", "mood": "x"}]}, "messages.0.mood"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ],
)
def test_loose_types_and_unknown_fields_are_400_naming_the_field(server, change, param):
    response = post(server, {**BASE, **change})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and param.split(".")[-1] in error["message"]


@pytest.mark.parametrize(
    "raw, param",
    [
        (b'{"model": "v1", "messages": [{"role": "user", "content": "\\ud800"}]}', "messages.0.content"),
        (b'{"model": "v1", "messages": [{"role": "user", "content": "a\\udfffb"}]}', "messages.0.content"),
        (
            b'{"model": "v1", "messages": [{"role": "user", "content": "hi"}], "repetition_penalty": Infinity}',
            "repetition_penalty",
        ),
        (b'{"model": "v1", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', "temperature"),
        (b'{"model": "v1", "messages": [{"role": "user", "content": "hi"}], "stop": "\\ud83d"}', "stop"),
    ],
)
def test_invalid_unicode_and_non_finite_numbers_are_400(server, raw, param):
    response = post(server, raw)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_invalid_utf8_bytes_are_400(server):
    response = post(server, b'{"model": "v1", "messages": [{"role": "user", "content": "\xff\xfe"}]}')
    assert response.status_code == 400


def test_the_accepted_shapes_still_work(server):
    # What the openai client echoes back when a reply is appended to the history as is.
    echoed = {"role": "assistant", "content": "hello", "refusal": None, "tool_calls": None, "function_call": None}
    body = {**BASE, "messages": [*USER, echoed, *USER], "tools": None, "seed": 2**63 - 1, "stream": False}
    assert post(server, body).status_code == 200


def test_a_4000_message_request_is_refused_within_a_second(server):
    messages = [{"role": "user", "content": ""}] * 4000
    started = time.monotonic()
    response = post(server, {**BASE, "messages": messages})
    elapsed = time.monotonic() - started
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages"
    assert elapsed < 1.0


def test_fit_prompt_measures_each_message_once():
    measured, encoded = [], []

    def encode(messages):
        encoded.append(len(messages))
        return [0] * sum(len(m["content"]) + 1 for m in messages)

    def count(messages):
        measured.append(len(messages))
        return [len(m["content"]) + 1 for m in messages]

    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": "x" * 3} for i in range(100_001)]
    prompt = fit_prompt(history, encode, budget=400, count=count)
    assert len(prompt.ids) <= 400 and prompt.dropped > 99_000
    assert sum(measured) <= 400 and len(encoded) == 1 and encoded[0] == len(prompt.messages)


def test_long_history_is_trimmed_and_only_what_the_model_saw_is_logged(server, store):
    turns = []
    for i in range(300):
        turns += [{"role": "user", "content": f"question {i} river"}, {"role": "assistant", "content": "stone light"}]
    before = len(store.messages)
    response = post(server, {**BASE, "messages": [*turns[:-1]]})
    assert response.status_code == 200, response.text
    dropped = response.json()["lethe"]["dropped_messages"]
    assert dropped > 0
    logged = store.messages[before:]
    assert len(logged) == len(turns) - 1 - dropped + 1  # the kept history and the reply


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_declared_oversized_body_is_413(server):
    response = post(server, {**BASE, "messages": [{"role": "user", "content": "x" * 2_000_000}]})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


def test_a_200_mb_chunked_body_is_cut_off_without_memory_growth(server):
    chunk = b" " * (1024 * 1024)

    def body():
        yield b'{"model": "v1", "messages": [{"role": "user", "content": "'
        for _ in range(200):
            yield chunk
        yield b'"}]}'

    before = _rss_mb()
    try:
        response = httpx.post(
            f"{server.base_url}/chat/completions",
            content=body(),
            headers={"content-type": "application/json"},
            timeout=30,
        )
        status = response.status_code
    except httpx.TransportError:
        status = 413  # the server answered and closed while we were still sending
    assert status == 413
    assert _rss_mb() - before < 64
    assert post(server, BASE).status_code == 200  # and it keeps serving


def test_foreign_host_header_is_421(server):
    evil = httpx.get(f"{server.base_url}/models", headers={"host": "attacker.example"})
    assert evil.status_code == 421 and evil.json()["error"]["code"] == "misdirected_request"
    assert httpx.get(f"{server.base_url}/models", headers={"host": f"localhost:{server.port}"}).status_code == 200
    assert httpx.get(f"{server.base_url}/models").status_code == 200


def test_health_says_only_ok_to_strangers_when_a_key_is_set(nano_dir):  # noqa: F811
    pool = ModelPool(DirectoryVersions({"v1": nano_dir}))
    with BackgroundServer(create_app(pool, api_key=KEY)) as keyed:
        assert httpx.get(f"{keyed.url}/health").json() == {"status": "ok"}
        assert "loaded" in httpx.get(f"{keyed.url}/health", headers=AUTH).json()
        for _ in range(10):
            assert httpx.get(f"{keyed.base_url}/models", headers={"authorization": "Bearer nope"}).status_code == 401
        limited = httpx.get(f"{keyed.base_url}/models", headers={"authorization": "Bearer nope"})
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    pool.close()
