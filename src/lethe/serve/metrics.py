"""Prometheus metrics of one API app, in its own registry (``GET /metrics``).

Requests by route and status; prompt and completion tokens; time to first token and time
per output token; and, read when scraped, the queue depth and batch size of every loaded
engine and the logging queue.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from lethe.serve.completions import Reply
    from lethe.serve.logging import ConversationLogger
    from lethe.serve.models import ModelPool

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class ServeMetrics:
    """The app's collectors, and the ASGI middleware that counts its requests."""

    def __init__(self, pool: ModelPool, logger: ConversationLogger | None):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lethe_http_requests", "HTTP requests answered", ["route", "status"], registry=self.registry
        )
        self.request_seconds = Histogram(
            "lethe_http_request_duration_seconds",
            "Time to answer a request (to the end of a stream)",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.prompt_tokens = Counter("lethe_prompt_tokens", "Prompt tokens read", ["model"], registry=self.registry)
        self.completion_tokens = Counter(
            "lethe_completion_tokens", "Tokens generated", ["model"], registry=self.registry
        )
        self.ttft = Histogram(
            "lethe_time_to_first_token_seconds",
            "From a choice's submission to its first token",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tpot = Histogram(
            "lethe_time_per_output_token_seconds",
            "Decoding time per token after the first",
            ["model"],
            buckets=TOKEN_BUCKETS,
            registry=self.registry,
        )
        queue = Gauge("lethe_queue_depth", "Replies waiting for a place in a batch", registry=self.registry)
        queue.set_function(lambda: sum(m.engine.scheduler.waiting for m in pool.loaded()))
        batch = Gauge("lethe_batch_size", "Replies being decoded together", registry=self.registry)
        batch.set_function(lambda: sum(m.engine.scheduler.active for m in pool.loaded()))
        loaded = Gauge("lethe_loaded_versions", "Model versions in memory", registry=self.registry)
        loaded.set_function(lambda: len(pool.loaded()))
        if logger is not None:
            for key, text in [
                ("pending", "Exchanges waiting to be posted to LOGGING_URL"),
                ("dropped", "Exchanges dropped because the logging queue was full"),
                ("post_failures", "Failed posts to LOGGING_URL"),
                ("ledger_failures", "Exchanges the ledger could not record"),
            ]:
                gauge = Gauge(f"lethe_logging_{key}", text, registry=self.registry)
                gauge.set_function(lambda key=key: logger.health()[key])

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def observe_reply(self, model: str, reply: Reply) -> None:
        stats = reply.stats
        if stats is None:
            return
        self.prompt_tokens.labels(model).inc(stats.prompt_tokens)
        self.completion_tokens.labels(model).inc(stats.completion_tokens)
        self.ttft.labels(model).observe(stats.time_to_first_token_s)
        if stats.completion_tokens > 1 and stats.tokens_per_second > 0:
            self.tpot.labels(model).observe(1.0 / stats.tokens_per_second)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """An ASGI middleware counting every HTTP request by route template and status."""

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            status = 500
            started = time.perf_counter()

            async def watch(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, watch)
            finally:
                route = scope.get("route")
                name = getattr(route, "path", None) or ("/v1/other" if scope["path"].startswith("/v1/") else "ui")
                self.requests.labels(name, str(status)).inc()
                self.request_seconds.labels(name).observe(time.perf_counter() - started)

        return counted
