"""ASGI guards in front of the whole app (API and web UI): Host allowlist, login rate limit.

A keyless server on loopback trusts whoever can reach it, which a web page on another site
can do through DNS rebinding: its requests reach 127.0.0.1 but carry that site's name in
``Host``. `HostAllowlist` therefore answers 421 to any Host but loopback names and the
configured one. `AttemptLimiter` counts failed logins (UI password or API key) per client
and answers 429 past a few a minute, so a key cannot be guessed at network speed.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def _error(status: int, message: str, code: str) -> tuple[dict, bytes]:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}})
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, body.encode()


async def _refuse(scope: Scope, send: Send, status: int, message: str, code: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    start, body = _error(status, message, code)
    await send(start)
    await send({"type": "http.response.body", "body": body})


def host_name(header: str) -> str:
    """The name of a ``Host`` header value, without port or IPv6 brackets, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header[1:]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostAllowlist:
    """Refuse requests whose ``Host`` is not loopback or one of `allowed` (421)."""

    def __init__(self, app: ASGIApp, *, bind_host: str, allowed: Iterable[str] = ()):
        self.app = app
        extra = {host_name(h) for h in allowed}
        bind = host_name(bind_host)
        # A wildcard bind (only ever with an API key) is reachable under names the server
        # cannot know: then only an explicit list restricts them.
        self.any_host = bind in WILDCARD_HOSTS and not extra
        self.allowed = LOOPBACK_NAMES | extra | ({bind} - WILDCARD_HOSTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.any_host:
            headers = dict(scope.get("headers") or [])
            name = host_name(headers.get(b"host", b"").decode("latin-1"))
            if name not in self.allowed:
                await _refuse(scope, send, 421, f"this server does not answer for host {name!r}", "misdirected_request")
                return
        await self.app(scope, receive, send)


class AttemptLimiter:
    """Failed attempts per client in a sliding window; thread-safe."""

    def __init__(self, max_failures: int = 10, window_s: float = 60.0):
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures[client]
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def blocked(self, client: str) -> float:
        """Seconds until `client` may try again (0: it may now)."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.max_failures:
                if not times:
                    self._failures.pop(client, None)
                return 0.0
            return max(0.0, self.window_s - (now - times[0]))

    def fail(self, client: str) -> None:
        with self._lock:
            self._recent(client, time.monotonic()).append(time.monotonic())


def client_of(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class LoginRateLimit:
    """Count failed ``POST .../login`` (the web UI's) per client; refuse with 429 past the limit."""

    def __init__(self, app: ASGIApp, *, limiter: AttemptLimiter):
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_login = (
            scope["type"] == "http"
            and scope.get("method") == "POST"
            and scope.get("path", "").rstrip("/").endswith("/login")
        )
        if not is_login:
            await self.app(scope, receive, send)
            return
        client = client_of(scope)
        wait = self.limiter.blocked(client)
        if wait:
            await _refuse(scope, send, 429, f"too many failed logins; try again in {wait:.0f} s", "rate_limited")
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                self.limiter.fail(client)
            await send(message)

        await self.app(scope, receive, watch)


class BodyLimit:
    """Refuse request bodies over `max_bytes` (413), counted on the bytes actually read.

    A declared ``Content-Length`` over the limit is refused before reading anything; a
    chunked body (or one that lies about its length) is cut off once it passes the limit,
    so the server never holds more than the limit of any request.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        message = f"the request body is larger than the limit ({self.max_bytes} bytes)"
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(scope, send, 413, message, "request_too_large")
            return
        read = 0

        async def counted() -> Message:
            nonlocal read
            received = await receive()
            if received["type"] == "http.request":
                read += len(received.get("body", b""))
                if read > self.max_bytes:
                    raise HTTPException(413, message)
            return received

        await self.app(scope, counted, send)
