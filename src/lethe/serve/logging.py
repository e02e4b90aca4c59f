"""Conversation logging: every exchange to the ledger, and optionally POSTed to a URL.

Ledger rows form a tree (each message links to its parent) and name the model version
that produced them. With ``LOGGING_URL`` set, each finished exchange is also POSTed as JSON
by a background thread with a timeout, through a bounded queue: a dead or slow logging
server never blocks or breaks a chat. Failures (ledger or POST) are counted, not raised, and
shown by `health()` (and so by ``GET /health``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from lethe.chat.session import Exchange, Logged

__all__ = ["ConversationLogger", "ConversationStore", "Exchange", "Logged", "LoggingConfig"]

log = logging.getLogger(__name__)


class ConversationStore(Protocol):
    """Where conversations are kept (the ledger fits)."""

    def log_exchange(
        self,
        conversation_id: int | None,
        parent_id: int | None,
        messages: list[dict[str, str]],
        reply: str,
        *,
        version_id: int | None,
        params: dict,
        stats: dict,
        title: str,
    ) -> tuple[int, int]:
        """Record the messages and the reply in one transaction; (conversation id, reply id)."""
        ...


@dataclass(frozen=True)
class LoggingConfig:
    """Where and how conversations are logged besides the ledger."""

    url: str | None = None
    """POST each exchange here as JSON (``LOGGING_URL``); None posts nothing."""
    timeout_s: float = 2.0
    """Give up on one POST after this long (``LOGGING_TIMEOUT``)."""
    max_pending: int = 1000
    """Exchanges waiting to be posted; beyond that new ones are dropped (and counted)."""

    @classmethod
    def from_env(cls) -> LoggingConfig:
        return cls(
            url=os.environ.get("LOGGING_URL") or None,
            timeout_s=float(os.environ.get("LOGGING_TIMEOUT", "2.0")),
        )


class ConversationLogger:
    """Writes exchanges to a `ConversationStore` and POSTs them in the background."""

    def __init__(self, store: ConversationStore | None, config: LoggingConfig | None = None):
        self.store = store
        self.config = config or LoggingConfig()
        self.store_failures = 0
        self.post_failures = 0
        self.posted = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._pending: queue.Queue[dict | None] = queue.Queue(self.config.max_pending)
        self._thread: threading.Thread | None = None
        if self.config.url:
            self._thread = threading.Thread(target=self._post_loop, name="lethe-log-post", daemon=True)
            self._thread.start()

    def log(self, exchange: Exchange) -> Logged:
        """Record `exchange`; never raises."""
        logged = self._store(exchange)
        if self.config.url:
            payload = {
                "conversation_id": logged.conversation_id,
                "timestamp": datetime.now(UTC).isoformat(),
                "model": exchange.model_version,
                "model_version_id": exchange.model_version_id,
                "messages": [*exchange.messages, {"role": "assistant", "content": exchange.reply}],
                "parameters": exchange.params,
                "stats": exchange.stats,
            }
            try:
                self._pending.put_nowait(payload)
            except queue.Full:
                with self._lock:
                    self.dropped += 1
        return logged

    def _store(self, exchange: Exchange) -> Logged:
        if self.store is None:
            return Logged(exchange.conversation_id, None)
        try:
            first_user = next((m["content"] for m in exchange.messages if m["role"] == "user"), "")
            conversation_id, reply_id = self.store.log_exchange(
                exchange.conversation_id,
                exchange.parent_id,
                exchange.messages,
                exchange.reply,
                version_id=exchange.model_version_id,
                params=exchange.params,
                stats=exchange.stats,
                title=exchange.title or " ".join(first_user.split())[:80] or "conversation",
            )
            return Logged(conversation_id, reply_id)
        except Exception:
            log.exception("could not log a conversation to the ledger")
            with self._lock:
                self.store_failures += 1
            return Logged(exchange.conversation_id, None)

    def _post_loop(self) -> None:
        assert self.config.url is not None
        with httpx.Client(timeout=self.config.timeout_s) as client:
            while True:
                payload = self._pending.get()
                if payload is None:
                    return
                try:
                    response = client.post(self.config.url, json=payload)
                    ok = response.status_code < 400
                except Exception:  # noqa: BLE001  (any failure is counted, never raised)
                    ok = False
                with self._lock:
                    if ok:
                        self.posted += 1
                    else:
                        self.post_failures += 1

    def health(self) -> dict[str, Any]:
        """Counters for ``/health``."""
        with self._lock:
            return {
                "ledger": self.store is not None,
                "url": self.config.url is not None,
                "ledger_failures": self.store_failures,
                "post_failures": self.post_failures,
                "posted": self.posted,
                "dropped": self.dropped,
                "pending": self._pending.qsize(),
            }

    def close(self, timeout: float | None = None) -> None:
        """Stop the POST thread after what is queued (waiting at most `timeout` seconds)."""
        if self._thread is not None:
            try:
                self._pending.put(None, timeout=timeout)
            except queue.Full:
                return
            self._thread.join(timeout)
