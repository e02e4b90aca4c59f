"""The OpenAI-compatible HTTP API: models, chat and text completions, health, metrics.

`create_app` builds the FastAPI app over a `ModelPool` (which versions exist, loaded on
demand) and a `ConversationLogger`. Replies come from each version's `ChatEngine`; the `n`
choices of one request are decoded in the same batch, and a streamed reply is cancelled
through the engine's one mechanism when the client goes away. Every response names the
model version and the weights that produced it (``model``, ``system_fingerprint``, the
``X-Lethe-Model-Version`` / ``X-Lethe-Weights-Sha256`` headers and the ``lethe`` field).
A Bearer key is required whenever the server listens beyond loopback; only loopback names
and the configured host are answered (421 otherwise); failed logins are rate-limited.

Every chat reply is logged as an exchange of a `ChatSession`. A request without an
``X-Lethe-Conversation`` header starts a new conversation, and a non-streamed response names
its id in that header; a request with ``X-Lethe-Conversation: <id>`` continues that
conversation (an unknown id is a 404; a streamed reply that starts a conversation names it in the
``lethe.conversation_id`` of its usage chunk, its headers having left before it was logged): only
the messages after those it shares with the logged
conversation are logged, so a client resending the whole history (as OpenAI clients do) logs
each message once, and an edited turn branches the conversation there.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

import lethe
from lethe.chat.prompt import MAX_CHARS_PER_TOKEN, Prompt
from lethe.chat.session import ChatSession
from lethe.serve.completions import (
    ChoiceRun,
    Reply,
    chat_choice,
    chat_stream,
    completion_choice,
    completion_stream,
    run_choices,
)
from lethe.serve.errors import APIError, install_error_handlers
from lethe.serve.exposure import check_exposure, is_loopback  # noqa: F401 (re-exported)
from lethe.serve.guards import AttemptLimiter, BodyLimit, HostAllowlist, LoginRateLimit, client_of
from lethe.serve.logging import ConversationLogger
from lethe.serve.metrics import ServeMetrics
from lethe.serve.models import LoadedModel, ModelPool
from lethe.serve.openai_schema import (
    ChatCompletion,
    ChatCompletionRequest,
    CompletionRequest,
    LetheStats,
    ModelCard,
    ModelList,
    TextCompletion,
    Usage,
    completion_id,
    now,
)

MAX_BODY_BYTES = 4 * 1024 * 1024
VERSION_HEADER = "X-Lethe-Model-Version"
CONVERSATION_HEADER = "X-Lethe-Conversation"
WEIGHTS_HEADER = "X-Lethe-Weights-Sha256"
STREAM_INTERVAL_S = 0.02


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask of the server."""

    max_body_bytes: int = MAX_BODY_BYTES
    """Request bodies larger than this are refused (413), counted on the bytes read."""
    max_messages: int = 1000
    """Messages per chat request; a longer history is refused (400) before any tokenization."""
    max_n: int = 4
    """Choices per request (`n`)."""
    login_failures_per_minute: int = 10
    """Failed logins (UI password or API key) one client may make per minute before 429."""


def fingerprint(loaded: LoadedModel) -> str:
    """``system_fingerprint``: the version and the start of its weights' sha256."""
    return f"lethe-{loaded.name}-{loaded.weights_sha256[:12]}" if loaded.weights_sha256 else f"lethe-{loaded.name}"


def version_headers(loaded: LoadedModel) -> dict[str, str]:
    headers = {VERSION_HEADER: loaded.name}
    if loaded.weights_sha256:
        headers[WEIGHTS_HEADER] = loaded.weights_sha256
    return headers


def _usage(prompt_tokens: int, replies: list[Reply]) -> Usage:
    completion = sum(r.stats.completion_tokens for r in replies if r.stats)
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion, total_tokens=prompt_tokens + completion)


def _lethe_stats(
    loaded: LoadedModel, replies: list[Reply], dropped: int = 0, conversation: str | None = None
) -> LetheStats:
    stats = replies[0].stats if replies else None
    return LetheStats(
        model_version=loaded.name,
        model_version_id=loaded.id,
        weights_sha256=loaded.weights_sha256,
        time_to_first_token_s=stats.time_to_first_token_s if stats else None,
        tokens_per_second=stats.tokens_per_second if stats else None,
        dropped_messages=dropped,
        conversation_id=int(conversation) if conversation else None,
    )


def _session(logger: ConversationLogger | None, conversation: str | None, history: list[dict]) -> ChatSession | None:
    """The chat session a request continues (named by `CONVERSATION_HEADER`), or a new one."""
    if logger is None:
        return None
    if conversation is None:
        return ChatSession(sink=logger, front_end="api")
    if not conversation.strip().isdigit():
        raise APIError(400, f"{CONVERSATION_HEADER} must be a conversation id (an integer)", param=CONVERSATION_HEADER)
    if logger.store is None:  # nothing to continue from: the exchange is only posted on
        return ChatSession(sink=logger, front_end="api")
    return ChatSession.continue_from(logger, logger.store, int(conversation), history, front_end="api")


def create_app(
    pool: ModelPool,
    *,
    logger: ConversationLogger | None = None,
    api_key: str | None = None,
    host: str = "127.0.0.1",
    allowed_hosts: tuple[str, ...] = (),
    limits: ServeLimits | None = None,
    max_body_bytes: int | None = None,
    stream_interval_s: float = STREAM_INTERVAL_S,
) -> FastAPI:
    """The API app over `pool`; `logger` records each exchange (None: no logging).

    A streamed reply sends its first text at once, then at most one chunk per
    `stream_interval_s` (tokens in between are joined): each chunk costs a JSON encoding
    and a socket write, which at hundreds of tokens/s is CPU the model could use.
    """
    check_exposure(host, api_key)
    limits = limits or ServeLimits()
    if max_body_bytes is not None:
        limits = replace(limits, max_body_bytes=max_body_bytes)
    app = FastAPI(
        title="lethe",
        version=lethe.__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.pool = pool
    app.state.logger = logger
    app.state.limits = limits
    metrics = ServeMetrics(pool, logger)
    app.state.metrics = metrics
    install_error_handlers(app)
    failures = AttemptLimiter(limits.login_failures_per_minute, 60.0)
    # Outermost first: Host check, body limit, login limit, request metrics.
    app.add_middleware(metrics.middleware)
    app.add_middleware(LoginRateLimit, limiter=failures)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(HostAllowlist, bind_host=host, allowed=allowed_hosts)

    def key_matches(request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), (api_key or "").encode())

    async def authorize(request: Request) -> None:
        if not api_key:
            return
        client = client_of(request.scope)
        wait = failures.blocked(client)
        if wait:
            raise APIError(429, f"too many failed attempts; try again in {wait:.0f} s", code="rate_limited")
        if not key_matches(request):
            failures.fail(client)
            raise APIError(401, "invalid or missing API key (Authorization: Bearer KEY)", code="invalid_api_key")

    @app.get("/health")
    async def health(request: Request) -> dict:
        if api_key and not key_matches(request):
            return {"status": "ok"}  # nothing about the server to whoever asks
        loaded = pool.loaded()
        return {
            "status": "ok",
            "version": lethe.__version__,
            "allow_tainted": pool.allow_tainted,
            "latest": pool.latest_name(),
            "loaded": [
                {
                    "name": m.name,
                    "id": m.id,
                    "tainted": m.tainted,
                    "weights_sha256": m.weights_sha256,
                    "active": m.engine.scheduler.active,
                    "waiting": m.engine.scheduler.waiting,
                }
                for m in loaded
            ],
            "logging": logger.health() if logger else {"ledger": False, "url": False},
        }

    @app.get("/metrics", dependencies=[Depends(authorize)])
    async def prometheus_metrics() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    async def list_models() -> ModelList:
        versions = await run_in_threadpool(pool.available)
        return ModelList(data=[ModelCard(id=str(v.name)) for v in versions])

    @app.get("/v1/models/{model_id}", dependencies=[Depends(authorize)])
    async def retrieve_model(model_id: str) -> ModelCard:
        version = await run_in_threadpool(pool.resolve, model_id)
        return ModelCard(id=str(version.name))

    def check_n(n: int) -> None:
        if n > limits.max_n:
            raise APIError(400, f"n: at most {limits.max_n} choices per request", param="n", code="invalid_value")

    def log_exchange(
        loaded: LoadedModel, prompt: Prompt, history: list[dict], session: ChatSession | None, reply: Reply
    ) -> int | None:
        """Log one choice as an exchange of (a copy of) `session`; the conversation's id."""
        if session is None:
            return None
        session = replace(session, messages=list(session.messages), unlogged=list(session.unlogged))
        # A new conversation records what the model saw, not the history it was sent; a
        # continued one the messages after those the log holds already.
        new = prompt.messages if session.conversation_id is None else history[len(session.messages) :]
        logged = session.record(
            new,
            reply.text,
            model_version=loaded.name,
            model_version_id=loaded.id,
            params=reply.params.to_dict(),
            stats={**(reply.stats.to_dict() if reply.stats else {}), "finish_reason": reply.finish_reason},
        )
        return logged.conversation_id

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)])
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        if len(body.messages) > limits.max_messages:
            raise APIError(
                400,
                f"messages: at most {limits.max_messages} messages per request (got {len(body.messages)})",
                param="messages",
                code="invalid_value",
            )
        check_n(body.n)
        params = [body.sampling_params(body.logprob_count(), seed_offset=i) for i in range(body.n)]
        loaded = await run_in_threadpool(pool.get, body.model)
        history = body.message_dicts()
        prompt = await run_in_threadpool(loaded.engine.prompt, history, params[0])
        runs = [ChoiceRun(i, p) for i, p in enumerate(params)]
        headers = version_headers(loaded)
        conversation = request.headers.get(CONVERSATION_HEADER)
        session = await run_in_threadpool(_session, logger, conversation, history)
        if session is not None and session.conversation_id is not None:
            headers[CONVERSATION_HEADER] = str(session.conversation_id)

        async def finished(reply: Reply) -> None:
            metrics.observe_reply(loaded.name, reply)
            conversation_id = await run_in_threadpool(log_exchange, loaded, prompt, history, session, reply)
            if conversation_id is not None:
                headers.setdefault(CONVERSATION_HEADER, str(conversation_id))

        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            events = chat_stream(
                loaded,
                prompt.ids,
                runs,
                fingerprint(loaded),
                include_usage,
                stream_interval_s,
                finished,
                lambda replies: (
                    _usage(len(prompt.ids), replies),
                    _lethe_stats(loaded, replies, prompt.dropped, headers.get(CONVERSATION_HEADER)),
                ),
            )
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)

        replies = await run_choices(loaded, prompt.ids, runs)
        for reply in replies:
            await finished(reply)
        completion = ChatCompletion(
            id=completion_id(),
            created=now(),
            model=loaded.name,
            system_fingerprint=fingerprint(loaded),
            choices=[chat_choice(loaded, reply) for reply in replies],
            usage=_usage(len(prompt.ids), replies),
            lethe=_lethe_stats(loaded, replies, prompt.dropped, headers.get(CONVERSATION_HEADER)),
        )
        return JSONResponse(completion.model_dump(), headers=headers)

    @app.post("/v1/completions", dependencies=[Depends(authorize)])
    async def completions(body: CompletionRequest):
        check_n(body.n)
        params = [body.sampling_params(body.logprob_count(), seed_offset=i) for i in range(body.n)]
        loaded = await run_in_threadpool(pool.get, body.model)
        context = loaded.engine.context_length
        if len(body.prompt) > context * MAX_CHARS_PER_TOKEN:
            raise APIError(400, f"prompt: longer than the context window ({context} tokens)", param="prompt")
        ids = await run_in_threadpool(loaded.engine.encode_text, body.prompt)
        if len(ids) >= context:
            raise APIError(400, f"prompt: {len(ids)} tokens; the context window holds {context}", param="prompt")
        runs = [ChoiceRun(i, p) for i, p in enumerate(params)]
        headers = version_headers(loaded)

        async def finished(reply: Reply) -> None:
            metrics.observe_reply(loaded.name, reply)

        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            events = completion_stream(
                loaded,
                ids,
                runs,
                fingerprint(loaded),
                include_usage,
                stream_interval_s,
                finished,
                lambda replies: (_usage(len(ids), replies), _lethe_stats(loaded, replies)),
            )
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)

        replies = await run_choices(loaded, ids, runs)
        for reply in replies:
            await finished(reply)
        completion = TextCompletion(
            id=completion_id("cmpl"),
            created=now(),
            model=loaded.name,
            system_fingerprint=fingerprint(loaded),
            choices=[completion_choice(loaded, reply) for reply in replies],
            usage=_usage(len(ids), replies),
            lethe=_lethe_stats(loaded, replies),
        )
        return JSONResponse(completion.model_dump(), headers=headers)

    return app
