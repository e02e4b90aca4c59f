"""Chat logs as a message tree: every reply knows its parent and the version that wrote it."""

from __future__ import annotations

from sqlalchemy import func, select

from lethe.errors import NotFoundError
from lethe.ledger import repository
from lethe.ledger.schema import Conversation, Message, utcnow


class ConversationsMixin:
    def add_conversation(self, title: str | None, version_id: int | None) -> int:
        with self.transaction() as s:
            conversation = Conversation(title=title, version_id=version_id, created_at=utcnow())
            s.add(conversation)
            s.flush()
            repository.record_event(s, "conversation.started", "conversation", conversation.id, version_id=version_id)
            return conversation.id

    def add_message(
        self,
        conversation_id: int,
        parent_id: int | None,
        role: str,
        content: str,
        version_id: int | None = None,
        params: dict | None = None,
        stats: dict | None = None,
    ) -> int:
        with self.transaction() as s:
            if s.get(Conversation, conversation_id) is None:
                raise NotFoundError(f"no conversation {conversation_id}")
            message = Message(
                conversation_id=conversation_id,
                parent_id=parent_id,
                role=role,
                content=content,
                version_id=version_id,
                params=params,
                stats=stats,
                created_at=utcnow(),
            )
            s.add(message)
            s.flush()
            return message.id

    def log_exchange(
        self,
        conversation_id: int | None,
        parent_id: int | None,
        messages: list[dict[str, str]],
        reply: str,
        *,
        version_id: int | None = None,
        params: dict | None = None,
        stats: dict | None = None,
        title: str | None = None,
    ) -> tuple[int, int]:
        """One exchange in one transaction: the new `messages` (each answering the one before,
        the first answering `parent_id`), then the assistant's `reply` with its sampling
        `params` and `stats`; a new conversation when `conversation_id` is None.
        Returns (conversation id, reply id)."""
        with self.transaction() as s:
            if conversation_id is None:
                conversation = Conversation(title=title, version_id=version_id, created_at=utcnow())
                s.add(conversation)
                s.flush()
                conversation_id = conversation.id
                repository.record_event(
                    s, "conversation.started", "conversation", conversation_id, version_id=version_id
                )
            elif s.get(Conversation, conversation_id) is None:
                raise NotFoundError(f"no conversation {conversation_id}")
            rows = [(m["role"], m["content"], None, None) for m in messages] + [("assistant", reply, params, stats)]
            for role, content, message_params, message_stats in rows:
                message = Message(
                    conversation_id=conversation_id,
                    parent_id=parent_id,
                    role=role,
                    content=content,
                    version_id=version_id,
                    params=message_params if message_params is not None else {},
                    stats=message_stats if message_stats is not None else {},
                    created_at=utcnow(),
                )
                s.add(message)
                s.flush()
                parent_id = message.id
            return conversation_id, parent_id

    def list_conversations(self, limit: int = 50) -> list[dict]:
        with self.reading() as s:
            rows = s.execute(
                select(Conversation, func.count(Message.id))
                .outerjoin(Message, Message.conversation_id == Conversation.id)
                .group_by(Conversation.id)
                .order_by(Conversation.id.desc())
                .limit(limit)
            )
            return [
                {"id": c.id, "title": c.title, "version_id": c.version_id, "created_at": c.created_at, "messages": n}
                for c, n in rows
            ]

    def conversation_messages(self, conversation_id: int) -> list[Message]:
        with self.reading() as s:
            return list(
                s.scalars(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id))
            )
