"""One conversation: its history, where it stands in the log, and the logging of each exchange.

Every front end — the terminal chat, the OpenAI-compatible API, the web UI — keeps its
conversations as `ChatSession`s, and a session logs itself: `record` appends an exchange to
the history and hands it, as one `Exchange`, to the session's sink (the server's
`ConversationLogger`, which writes it to the ledger in one transaction and may POST it on).
The log is a tree: each message links to its parent, so a session can continue from any
message (`at`), which is how the UI's regenerate and edit branch, and how the API continues a
conversation a client names (`continue_from`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lethe.errors import NotFoundError, Where


@dataclass
class Exchange:
    """One finished exchange: the new messages, the reply, and who made it how."""

    messages: list[dict[str, str]]
    """Messages to record before the reply (the whole history for a new conversation)."""
    reply: str
    model_version: str
    model_version_id: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    conversation_id: int | None = None
    """Continue this conversation; None starts a new one."""
    parent_id: int | None = None
    """The message the first new message answers (in a continued conversation)."""
    title: str | None = None


@dataclass(frozen=True)
class Logged:
    """Where an exchange landed in the log (None without a store or on failure)."""

    conversation_id: int | None
    reply_id: int | None


class ExchangeSink(Protocol):
    """Where sessions log their exchanges (`lethe.serve.logging.ConversationLogger` fits)."""

    def log(self, exchange: Exchange) -> Logged: ...


class MessageLog(Protocol):
    """Read access to logged conversations (the ledger fits)."""

    def conversation_messages(self, conversation_id: int) -> list[Any]: ...


@dataclass
class ChatSession:
    """A conversation with its history; `record` logs each exchange through `sink`."""

    sink: ExchangeSink | None = None
    """Where exchanges are logged; None logs nothing."""
    front_end: str | None = None
    """Recorded with every reply's stats (`terminal`, `api`, `ui`)."""
    system_prompt: str | None = None
    messages: list[dict[str, str]] = field(default_factory=list)
    """The history as the model sees it (system prompt first, if any)."""
    conversation_id: int | None = None
    """The logged conversation, once its first exchange is logged (or when continued)."""
    last_message_id: int | None = None
    """The logged message the next one answers."""
    unlogged: list[dict[str, str]] = field(default_factory=list)
    """History not in the log yet (the system prompt before the first exchange)."""

    def __post_init__(self) -> None:
        if not self.messages and self.conversation_id is None:
            self.reset()

    def reset(self, system_prompt: str | None = None) -> None:
        """Start a new conversation (with `system_prompt`, if given)."""
        if system_prompt is not None:
            self.system_prompt = system_prompt
        self.messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        self.conversation_id = None
        self.last_message_id = None
        self.unlogged = list(self.messages)

    @classmethod
    def at(
        cls,
        sink: ExchangeSink | None,
        history: Sequence[dict[str, str]],
        *,
        conversation_id: int | None,
        parent_id: int | None,
        front_end: str | None = None,
    ) -> ChatSession:
        """A session continuing from logged message `parent_id` of `conversation_id`, whose
        history up to there is `history`; without both ids, a new conversation with it."""
        continued = conversation_id is not None and parent_id is not None
        return cls(
            sink=sink,
            front_end=front_end,
            messages=[dict(m) for m in history],
            conversation_id=conversation_id if continued else None,
            last_message_id=parent_id if continued else None,
            unlogged=[] if continued else [dict(m) for m in history],
        )

    @classmethod
    def continue_from(
        cls,
        sink: ExchangeSink | None,
        log: MessageLog,
        conversation_id: int,
        history: Sequence[dict[str, str]],
        *,
        front_end: str | None = None,
    ) -> ChatSession:
        """A session for logged conversation `conversation_id`, given the history a client sent.

        The history is matched against the conversation's logged messages along the branch
        it follows; the session continues from the last message they share, so a client that
        resends the whole conversation (as OpenAI clients do) logs only what is new, and one
        that edits an earlier turn starts a branch there. Raises `NotFoundError` when there
        is no such conversation.
        """
        logged = log.conversation_messages(conversation_id)
        if not logged:
            raise NotFoundError(f"no conversation {conversation_id} in the log", Where(field="conversation"))
        children: dict[int | None, list[Any]] = {}
        for message in logged:
            children.setdefault(message.parent_id, []).append(message)
        parent_id, shared = None, 0
        for message in history:
            match = next(
                (
                    m
                    for m in reversed(children.get(parent_id, []))
                    if m.role == message["role"] and m.content == message["content"]
                ),
                None,
            )
            if match is None:
                break
            parent_id, shared = match.id, shared + 1
        return cls(
            sink=sink,
            front_end=front_end,
            messages=[dict(m) for m in history[:shared]],
            conversation_id=conversation_id,
            last_message_id=parent_id,
            unlogged=[dict(m) for m in history[:shared]] if parent_id is None else [],
        )

    def prompt(self, *new_messages: dict[str, str]) -> list[dict[str, str]]:
        """The messages to send the model for a reply to `new_messages`."""
        return [*self.messages, *new_messages]

    def record(
        self,
        new_messages: Sequence[dict[str, str]],
        reply: str,
        *,
        model_version: str,
        model_version_id: int | None = None,
        params: dict[str, Any] | None = None,
        stats: dict[str, Any] | None = None,
    ) -> Logged:
        """Append `new_messages` and the `reply` to the history and log them as one exchange."""
        new = [dict(m) for m in new_messages]
        self.messages += [*new, {"role": "assistant", "content": reply}]
        if self.sink is None:
            return Logged(self.conversation_id, None)
        stats = dict(stats or {})
        if self.front_end is not None:
            stats.setdefault("front_end", self.front_end)
        logged = self.sink.log(
            Exchange(
                messages=[*self.unlogged, *new],
                reply=reply,
                model_version=model_version,
                model_version_id=model_version_id,
                params=dict(params or {}),
                stats=stats,
                conversation_id=self.conversation_id,
                parent_id=self.last_message_id,
            )
        )
        self.unlogged = []
        self.conversation_id = logged.conversation_id
        self.last_message_id = logged.reply_id
        return logged
