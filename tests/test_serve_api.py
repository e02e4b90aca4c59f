"""The OpenAI-compatible API against a live server, driven by the official `openai` client."""

from __future__ import annotations

import concurrent.futures
import json

import httpx
import openai
import pytest

from lethe.chat import EngineConfig
from lethe.serve.api import create_app
from lethe.serve.logging import ConversationLogger
from lethe.serve.models import DirectoryVersions, ModelPool
from lethe.serve.server import BackgroundServer
from test_chat_fixtures import nano, nano_dir  # noqa: F401  (fixtures)

USER = [{"role": "user", "content": "Tell me about the river."}]


class MemoryStore:
    """A `ConversationStore` in memory."""

    def __init__(self):
        self.conversations: list[tuple[str, int | None]] = []
        self.messages: list[dict] = []

    def add_conversation(self, title, version_id):
        self.conversations.append((title, version_id))
        return len(self.conversations)

    def add_message(self, conversation_id, parent_id, role, content, version_id, params, stats):
        self.messages.append(
            {
                "conversation": conversation_id,
                "parent": parent_id,
                "role": role,
                "content": content,
                "version": version_id,
                "params": params,
                "stats": stats,
            }
        )
        return len(self.messages)

    def log_exchange(self, conversation_id, parent_id, messages, reply, *, version_id, params, stats, title):
        if conversation_id is None:
            conversation_id = self.add_conversation(title, version_id)
        for message in messages:
            parent_id = self.add_message(
                conversation_id, parent_id, message["role"], message["content"], version_id, {}, {}
            )
        return conversation_id, self.add_message(
            conversation_id, parent_id, "assistant", reply, version_id, params, stats
        )


@pytest.fixture(scope="module")
def store():
    return MemoryStore()


@pytest.fixture(scope="module")
def server(nano_dir, store):  # noqa: F811
    versions = DirectoryVersions({"v1": nano_dir})
    pool = ModelPool(versions, engine_config=EngineConfig(max_batch_size=8))
    app = create_app(pool, logger=ConversationLogger(store))
    with BackgroundServer(app) as running:
        yield running
    pool.close()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=30)


def test_models_lists_versions(client):
    assert [m.id for m in client.models.list().data] == ["v1"]


def test_non_streaming_reply_names_version_and_usage(client, store):
    reply = client.chat.completions.create(model="latest", messages=USER, max_tokens=8, temperature=0)
    assert reply.model == "v1"  # the alias resolves to the version that answered
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens <= 8
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.lethe["model_version"] == "v1"
    assert store.messages[-1]["role"] == "assistant"
    assert store.messages[-1]["content"] == reply.choices[0].message.content


def test_streaming_matches_non_streaming_and_reports_usage(client):
    args = {"model": "v1", "messages": USER, "max_tokens": 12, "temperature": 0}
    whole = client.chat.completions.create(**args).choices[0].message.content
    stream = client.chat.completions.create(**args, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert all(c.model == "v1" for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_sse_framing(server):
    body = {"model": "v1", "messages": USER, "max_tokens": 4, "stream": True}
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body) as response:
        assert response.headers["x-lethe-model-version"] == "v1"
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events[:-1])
    json.loads(events[0][len("data: ") :])


def test_stop_string_is_trimmed(client):
    args = {"model": "v1", "messages": USER, "max_tokens": 24, "temperature": 0}
    full = client.chat.completions.create(**args).choices[0].message.content
    assert len(full) > 6
    stop = full[3:6]
    cut = full[: full.index(stop)]
    reply = client.chat.completions.create(**args, stop=[stop])
    assert reply.choices[0].message.content == cut
    assert reply.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(**args, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == cut


def test_seeded_sampling_with_extensions_is_reproducible(client):
    args = {
        "model": "v1",
        "messages": USER,
        "max_tokens": 10,
        "temperature": 0.9,
        "top_p": 0.9,
        "seed": 5,
        "extra_body": {"top_k": 40, "repetition_penalty": 1.3},
    }
    first = client.chat.completions.create(**args).choices[0].message.content
    assert client.chat.completions.create(**args).choices[0].message.content == first


@pytest.mark.parametrize(
    "change, error",
    [
        ({"model": "v404"}, openai.NotFoundError),
        ({"messages": []}, openai.BadRequestError),
        ({"max_tokens": -1}, openai.BadRequestError),
        ({"temperature": -0.5}, openai.BadRequestError),
        ({"messages": [{"role": "user", "content": "x" * 1_000_000}]}, openai.BadRequestError),
        ({"messages": [{"role": "tool", "content": "hi"}]}, openai.BadRequestError),
    ],
)
def test_bad_requests_get_openai_errors(client, change, error):
    args = {"model": "v1", "messages": USER, "max_tokens": 4, **change}
    with pytest.raises(error) as raised:
        client.chat.completions.create(**args)
    assert 400 <= raised.value.status_code < 500
    assert set(raised.value.body) >= {"message", "type", "param", "code"}
    assert client.chat.completions.create(model="v1", messages=USER, max_tokens=2).choices


def test_invalid_json_and_unknown_route(server):
    response = httpx.post(
        f"{server.base_url}/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    missing = httpx.get(f"{server.base_url}/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"


def test_concurrent_requests_all_complete(client):
    def ask(i):
        return client.chat.completions.create(
            model="v1", messages=[{"role": "user", "content": f"question {i}"}], max_tokens=6
        )

    with concurrent.futures.ThreadPoolExecutor(6) as executor:
        replies = list(executor.map(ask, range(6)))
    assert all(r.model == "v1" and r.usage.completion_tokens >= 1 for r in replies)


def test_health_lists_loaded_versions_and_logging(server):
    health = httpx.get(f"{server.url}/health").json()
    assert health["loaded"][0]["name"] == "v1"
    assert health["logging"]["ledger"] is True
    assert health["logging"]["ledger_failures"] == 0
