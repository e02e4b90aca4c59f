"""OpenAI parity, checked with the official client against a real uvicorn server on loopback:
logprobs (streamed and not), n choices, text completions, models.retrieve, /metrics, and
which version and weights answered."""

from __future__ import annotations

import math

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lethe.chat import EngineConfig
from lethe.model.io import weights_sha256
from lethe.serve.api import create_app
from lethe.serve.logging import ConversationLogger
from lethe.serve.models import DirectoryVersions, ModelPool
from lethe.serve.server import BackgroundServer
from test_chat_fixtures import nano, nano_dir  # noqa: F401  (fixtures)
from test_serve_api import MemoryStore

USER = [{"role": "user", "content": "Tell me about the river."}]


@pytest.fixture(scope="module")
def server(nano_dir):  # noqa: F811
    pool = ModelPool(DirectoryVersions({"v1": nano_dir}), engine_config=EngineConfig(max_batch_size=8))
    with BackgroundServer(create_app(pool, logger=ConversationLogger(MemoryStore()))) as running:
        yield running
    pool.close()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=30)


def test_chat_logprobs_non_streamed(client):
    reply = client.chat.completions.create(
        model="v1",
        messages=USER,
        max_tokens=6,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
        extra_body={"ignore_eos": True},
    )
    content = reply.choices[0].logprobs.content
    assert len(content) == reply.usage.completion_tokens == 6
    assert "".join(t.token for t in content) == reply.choices[0].message.content
    for token in content:
        assert token.logprob <= 0 and len(token.top_logprobs) == 2
        # greedy: the chosen token is the most likely one
        assert token.top_logprobs[0].token == token.token
        assert math.isclose(token.top_logprobs[0].logprob, token.logprob, abs_tol=1e-5)
        assert token.top_logprobs[0].logprob >= token.top_logprobs[1].logprob


def test_chat_logprobs_streamed_match(client):
    args = {"model": "v1", "messages": USER, "max_tokens": 6, "temperature": 0, "logprobs": True, "top_logprobs": 1}
    whole = client.chat.completions.create(**args, extra_body={"ignore_eos": True}).choices[0].logprobs.content
    streamed = [
        token
        for chunk in client.chat.completions.create(**args, stream=True, extra_body={"ignore_eos": True})
        if chunk.choices and chunk.choices[0].logprobs
        for token in chunk.choices[0].logprobs.content
    ]
    assert [t.token for t in streamed] == [t.token for t in whole]
    assert all(math.isclose(a.logprob, b.logprob, abs_tol=1e-5) for a, b in zip(streamed, whole, strict=True))


def test_n_choices_are_decoded_together_and_seeded(client):
    args = {"model": "v1", "messages": USER, "max_tokens": 8, "temperature": 1.0, "seed": 3, "n": 3}
    reply = client.chat.completions.create(**args)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    texts = [c.message.content for c in reply.choices]
    assert len(set(texts)) > 1  # each choice has its own seed
    assert [c.message.content for c in client.chat.completions.create(**args).choices] == texts
    assert reply.usage.completion_tokens >= 3  # every choice's tokens, the prompt's once
    streamed = client.chat.completions.create(**args, stream=True)
    parts = {0: "", 1: "", 2: ""}
    for chunk in streamed:
        for choice in chunk.choices:
            parts[choice.index] += choice.delta.content or ""
    assert [parts[i] for i in range(3)] == texts


def test_n_above_the_server_maximum_is_400(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="v1", messages=USER, max_tokens=2, n=5)
    assert raised.value.body["param"] == "n"


def test_text_completions_with_logprobs(client):
    reply = client.completions.create(
        model="v1", prompt="The author wrote", max_tokens=5, temperature=0, logprobs=2, extra_body={"ignore_eos": True}
    )
    choice = reply.choices[0]
    assert reply.object == "text_completion" and reply.model == "v1"
    assert len(choice.logprobs.tokens) == 5 and "".join(choice.logprobs.tokens) == choice.text
    assert all(len(top) <= 2 for top in choice.logprobs.top_logprobs)
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model="v1",
            prompt="The author wrote",
            max_tokens=5,
            temperature=0,
            stream=True,
            extra_body={"ignore_eos": True},
        )
        if c.choices
    )
    assert streamed == choice.text


def test_models_retrieve(client):
    assert client.models.retrieve("v1").id == "v1"
    assert client.models.retrieve("latest").id == "v1"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("v404")


def test_version_and_weights_in_headers_and_fingerprint(client, server, nano_dir):  # noqa: F811
    sha = weights_sha256(nano_dir)
    raw = client.chat.completions.with_raw_response.create(model="latest", messages=USER, max_tokens=2)
    assert raw.headers["x-lethe-model-version"] == "v1"
    assert raw.headers["x-lethe-weights-sha256"] == sha
    reply = raw.parse()
    assert reply.system_fingerprint == f"lethe-v1-{sha[:12]}"
    assert reply.lethe["weights_sha256"] == sha


def test_metrics_parse_as_prometheus_text(client, server):
    client.chat.completions.create(model="v1", messages=USER, max_tokens=3)
    response = httpx.get(f"{server.url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name in [
        "lethe_http_requests",
        "lethe_prompt_tokens",
        "lethe_completion_tokens",
        "lethe_time_to_first_token_seconds",
        "lethe_time_per_output_token_seconds",
        "lethe_queue_depth",
        "lethe_batch_size",
        "lethe_logging_pending",
    ]:
        assert name in families, name
    requests = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["lethe_http_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[("/v1/chat/completions", "200")] >= 1
    completion = [s for s in families["lethe_completion_tokens"].samples if s.name.endswith("_total")]
    assert completion and completion[0].value >= 1
