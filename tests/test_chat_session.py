"""Chat sessions log themselves: one transaction per exchange, a message tree, continued by id."""

from __future__ import annotations

import httpx
import pytest

from lethe.chat import EngineConfig
from lethe.chat.session import ChatSession
from lethe.errors import NotFoundError
from lethe.model.io import weights_sha256
from lethe.serve.api import CONVERSATION_HEADER, create_app
from lethe.serve.logging import ConversationLogger
from lethe.serve.models import ModelPool
from lethe.serve.server import BackgroundServer
from lethe.workspace import Workspace
from test_chat_fixtures import nano, nano_dir  # noqa: F401  (fixtures)


@pytest.fixture
def ledger(tmp_path):
    return Workspace(home=tmp_path / "home").init().ledger


def tree(ledger, conversation_id):
    """(role, content, parent's content) of every logged message, in order."""
    messages = ledger.conversation_messages(conversation_id)
    content = {m.id: m.content for m in messages}
    return [(m.role, m.content, content.get(m.parent_id)) for m in messages]


def test_a_session_logs_each_exchange_as_a_branch_of_one_tree(ledger):
    session = ChatSession(sink=ConversationLogger(ledger), front_end="terminal", system_prompt="Be brief.")
    assert session.prompt({"role": "user", "content": "hi"})[0] == {"role": "system", "content": "Be brief."}
    first = session.record([{"role": "user", "content": "hi"}], "hello", model_version="v1", stats={"tokens": 1})
    second = session.record([{"role": "user", "content": "how are you?"}], "fine", model_version="v1")
    assert first.conversation_id == second.conversation_id == session.conversation_id
    assert tree(ledger, session.conversation_id) == [
        ("system", "Be brief.", None),
        ("user", "hi", "Be brief."),
        ("assistant", "hello", "hi"),
        ("user", "how are you?", "hello"),
        ("assistant", "fine", "how are you?"),
    ]
    reply = ledger.conversation_messages(session.conversation_id)[2]
    assert reply.stats == {"tokens": 1, "front_end": "terminal"}
    assert [m["role"] for m in session.messages] == ["system", "user", "assistant", "user", "assistant"]


def test_an_exchange_is_one_transaction(ledger):
    """A reply that cannot be stored takes its user message and its new conversation with it."""
    session = ChatSession(sink=ConversationLogger(ledger), front_end="ui")
    logged = session.record([{"role": "user", "content": "hi"}], "hello", model_version="v1", stats={"bad": object()})
    assert logged.reply_id is None and session.sink.store_failures == 1
    assert ledger.list_conversations() == []


def test_continuing_matches_the_logged_branch_and_branches_at_an_edit(ledger):
    logger = ConversationLogger(ledger)
    session = ChatSession(sink=logger)
    session.record([{"role": "user", "content": "a"}], "A", model_version="v1")
    session.record([{"role": "user", "content": "b"}], "B", model_version="v1")
    cid = session.conversation_id
    sent = [*session.messages, {"role": "user", "content": "c"}]  # a client resends everything

    again = ChatSession.continue_from(logger, ledger, cid, sent)
    assert again.messages == sent[:-1] and again.conversation_id == cid
    again.record(sent[len(again.messages) :], "C", model_version="v1")
    assert [content for _, content, _ in tree(ledger, cid)] == ["a", "A", "b", "B", "c", "C"]

    edited = [sent[0], sent[1], {"role": "user", "content": "b, edited"}]
    branch = ChatSession.continue_from(logger, ledger, cid, edited)
    branch.record(edited[len(branch.messages) :], "B2", model_version="v1")
    assert tree(ledger, cid)[-2:] == [("user", "b, edited", "A"), ("assistant", "B2", "b, edited")]

    with pytest.raises(NotFoundError):
        ChatSession.continue_from(logger, ledger, cid + 100, sent)


@pytest.fixture
def server(nano_dir, ledger, tmp_path):  # noqa: F811
    ledger.register_version(kind="pretrain", path=str(nano_dir), weights_sha256=weights_sha256(nano_dir), name="v1")
    pool = ModelPool(ledger, base_dir=tmp_path, engine_config=EngineConfig(max_batch_size=4))
    with BackgroundServer(create_app(pool, logger=ConversationLogger(ledger))) as running:
        yield running
    pool.close()


def test_the_api_continues_the_conversation_its_client_names(server, ledger):
    url = f"{server.base_url}/chat/completions"
    body = {"model": "v1", "max_tokens": 4, "temperature": 0}
    turn = [{"role": "user", "content": "Tell me about the river."}]
    first = httpx.post(url, json={**body, "messages": turn}, timeout=60)
    assert first.status_code == 200
    cid = int(first.headers[CONVERSATION_HEADER])
    reply = first.json()["choices"][0]["message"]["content"]

    history = [*turn, {"role": "assistant", "content": reply}, {"role": "user", "content": "And the sea?"}]
    second = httpx.post(url, json={**body, "messages": history}, headers={CONVERSATION_HEADER: str(cid)}, timeout=60)
    assert second.status_code == 200 and second.headers[CONVERSATION_HEADER] == str(cid)
    logged = tree(ledger, cid)
    assert [role for role, _, _ in logged] == ["user", "assistant", "user", "assistant"]  # nothing twice
    assert logged[2] == ("user", "And the sea?", reply)
    assert len(ledger.list_conversations()) == 1

    unknown = httpx.post(url, json={**body, "messages": turn}, headers={CONVERSATION_HEADER: "999"}, timeout=60)
    assert unknown.status_code == 404
    malformed = httpx.post(url, json={**body, "messages": turn}, headers={CONVERSATION_HEADER: "x"}, timeout=60)
    assert malformed.status_code == 400 and CONVERSATION_HEADER in malformed.json()["error"]["message"]
    assert len(ledger.list_conversations()) == 1


def test_a_streamed_reply_that_starts_a_conversation_names_it_in_its_usage_chunk(server, ledger):
    import json

    body = {
        "model": "v1",
        "max_tokens": 4,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Tell me about the river."}],
    }
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200 and CONVERSATION_HEADER not in response.headers
        chunks = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    usage = [c for c in chunks if "usage" in c]
    assert len(usage) == 1 and usage[0]["choices"] == []
    cid = usage[0]["lethe"]["conversation_id"]
    assert [c["id"] for c in ledger.list_conversations()] == [cid]
    assert [role for role, _, _ in tree(ledger, cid)] == ["user", "assistant"]
