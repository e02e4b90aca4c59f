"""The terminal chat loop, driven by a list of input lines and a buffer."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lethe.chat import ChatEngine, SamplingParams
from lethe.chat.terminal import TerminalChat, parse_sampling
from lethe.errors import InputError, NotFoundError
from lethe.serve.logging import ConversationLogger
from test_chat_fixtures import engine, nano  # noqa: F401  (fixtures)


@dataclass
class Served:
    name: str
    id: int | None
    engine: ChatEngine


class Lines:
    def __init__(self, lines):
        self.lines = list(lines)

    def __call__(self, prompt: str) -> str:
        if not self.lines:
            raise EOFError
        return self.lines.pop(0)


class Store:
    def __init__(self):
        self.conversations, self.messages = [], []

    def add_conversation(self, title, version_id):
        self.conversations.append((title, version_id))
        return len(self.conversations)

    def add_message(self, conversation_id, parent_id, role, content, version_id, params, stats):
        self.messages.append((conversation_id, parent_id, role, content, version_id))
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


def make_chat(engine, lines, store=None, **kw):  # noqa: F811
    models = {"v1": Served("v1", 1, engine), "v2": Served("v2", 2, engine)}

    def load(name):
        if name not in models:
            raise NotFoundError(f"no model version {name!r}")
        return models[name]

    out: list[str] = []
    chat = TerminalChat(
        load,
        "v1",
        read=Lines(lines),
        write=out.append,
        logger=ConversationLogger(store) if store else None,
        params=SamplingParams(temperature=0, max_new_tokens=6),
        **kw,
    )
    return chat, out


def test_conversation_is_multi_turn_and_logged_as_a_chain(engine):  # noqa: F811
    store = Store()
    chat, out = make_chat(engine, ["hello", "and the river?"], store, system_prompt="Be kind.")
    chat.run()
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert any("tok/s" in line and "v1" in line for line in out)
    assert len(store.conversations) == 1
    roles = [m[2] for m in store.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant"]
    parents = [m[1] for m in store.messages]
    assert parents == [None, 1, 2, 3, 4]  # a chain: each message answers the previous one
    assert all(m[4] == 1 for m in store.messages)


def test_commands_reset_params_model(engine):  # noqa: F811
    store = Store()
    chat, out = make_chat(
        engine,
        [
            "hi",
            "/params temperature=0.5 top_k=7 stop=END,STOP",
            "/model v2",
            "/reset",
            "again",
            "/model nope",
            "/quit",
            "never read",
        ],
        store,
    )
    chat.run()
    assert chat.params.temperature == 0.5 and chat.params.top_k == 7
    assert chat.params.stop == ("END", "STOP")
    assert chat.model.name == "v2"
    assert [m["role"] for m in chat.messages] == ["user", "assistant"]
    assert len(store.conversations) == 2  # /reset starts a new conversation
    assert store.messages[-1][4] == 2  # rows name the version that replied
    assert any("error" in line and "nope" in line for line in out)


def test_no_logger_means_no_log(engine):  # noqa: F811
    chat, _out = make_chat(engine, ["hello"])
    chat.run()
    assert chat.conversation_id is None


def test_parse_sampling_rejects_unknown_names():
    with pytest.raises(InputError):
        parse_sampling(SamplingParams(), ["warmth=3"])
    assert parse_sampling(SamplingParams(), ["seed=4", "ignore_eos=true"]).seed == 4
