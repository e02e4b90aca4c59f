"""The OpenAI-compatible HTTP API: ``/v1/models``, ``/v1/chat/completions``, ``/health``.

`create_app` builds the FastAPI app over a `ModelPool` (which versions exist, loaded on
demand) and a `ConversationLogger`. Replies come from each version's `ChatEngine`; a
streamed reply is cancelled through the engine's one mechanism when the client goes away.
Every response names the model version that produced it (``model``, the
``X-Lethe-Model-Version`` header and the ``lethe`` field). A Bearer key is required
whenever the server listens beyond loopback.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

import lethe
from lethe.chat.prompt import Prompt
from lethe.chat.reply import ReplyStats
from lethe.serve.errors import APIError, error_body, error_response, install_error_handlers
from lethe.serve.exposure import check_exposure, is_loopback  # noqa: F401 (re-exported)
from lethe.serve.logging import ConversationLogger, Exchange
from lethe.serve.models import LoadedModel, ModelPool
from lethe.serve.openai_schema import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    LetheStats,
    ModelCard,
    ModelList,
    Usage,
    completion_id,
    now,
)

MAX_BODY_BYTES = 4 * 1024 * 1024
VERSION_HEADER = "X-Lethe-Model-Version"
STREAM_INTERVAL_S = 0.02


def _usage(stats: ReplyStats) -> Usage:
    return Usage(
        prompt_tokens=stats.prompt_tokens,
        completion_tokens=stats.completion_tokens,
        total_tokens=stats.prompt_tokens + stats.completion_tokens,
    )


def _lethe_stats(loaded: LoadedModel, stats: ReplyStats | None, prompt: Prompt) -> LetheStats:
    return LetheStats(
        model_version=loaded.name,
        model_version_id=loaded.id,
        time_to_first_token_s=stats.time_to_first_token_s if stats else None,
        tokens_per_second=stats.tokens_per_second if stats else None,
        dropped_messages=prompt.dropped,
    )


def _finish_reason(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


def create_app(
    pool: ModelPool,
    *,
    logger: ConversationLogger | None = None,
    api_key: str | None = None,
    host: str = "127.0.0.1",
    max_body_bytes: int = MAX_BODY_BYTES,
    stream_interval_s: float = STREAM_INTERVAL_S,
) -> FastAPI:
    """The API app over `pool`; `logger` records each exchange (None: no logging).

    A streamed reply sends its first text at once, then at most one chunk per
    `stream_interval_s` (tokens in between are joined): each chunk costs a JSON encoding
    and a socket write, which at hundreds of tokens/s is CPU the model could use.
    """
    check_exposure(host, api_key)
    app = FastAPI(title="lethe", version=lethe.__version__, docs_url=None, redoc_url=None)
    app.state.pool = pool
    app.state.logger = logger
    install_error_handlers(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            return error_response(
                413,
                f"the request body is larger than {max_body_bytes} bytes",
                code="request_too_large",
            )
        return await call_next(request)

    async def authorize(request: Request) -> None:
        if not api_key:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), api_key.encode()):
            raise APIError(401, "invalid or missing API key (Authorization: Bearer KEY)", code="invalid_api_key")

    @app.get("/health")
    async def health() -> dict:
        loaded = pool.loaded()
        return {
            "status": "ok",
            "version": lethe.__version__,
            "allow_tainted": pool.allow_tainted,
            "loaded": [
                {
                    "name": m.name,
                    "id": m.id,
                    "tainted": m.tainted,
                    "active": m.engine.scheduler.active,
                    "waiting": m.engine.scheduler.waiting,
                }
                for m in loaded
            ],
            "logging": logger.health() if logger else {"ledger": False, "url": False},
        }

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    async def list_models() -> ModelList:
        versions = await run_in_threadpool(pool.available)
        return ModelList(data=[ModelCard(id=str(v.name)) for v in versions])

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)])
    async def chat_completions(body: ChatCompletionRequest):
        params = body.sampling_params()
        messages = body.message_dicts()
        loaded = await run_in_threadpool(pool.get, body.model)
        prompt = await run_in_threadpool(loaded.engine.prompt, messages, params)
        headers = {VERSION_HEADER: loaded.name}

        def log_exchange(reply: str, stats: ReplyStats | None, reason: str | None) -> None:
            if logger is None:
                return
            logger.log(
                Exchange(
                    messages=messages,
                    reply=reply,
                    model_version=loaded.name,
                    model_version_id=loaded.id,
                    params=params.to_dict(),
                    stats={**(stats.to_dict() if stats else {}), "finish_reason": reason},
                )
            )

        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            events = _stream(loaded, prompt, params, include_usage, log_exchange, stream_interval_s)
            return StreamingResponse(events, media_type="text/event-stream", headers=headers)

        parts: list[str] = []
        async for event in loaded.engine.astream(prompt.ids, params):
            parts.append(event.text)
            if event.done:
                break
        if event.error is not None:
            raise event.error
        assert event.stats is not None
        text = "".join(parts)
        await run_in_threadpool(log_exchange, text, event.stats, event.finish_reason)
        completion = ChatCompletion(
            id=completion_id(),
            created=now(),
            model=loaded.name,
            system_fingerprint=f"lethe-{loaded.name}",
            choices=[Choice(message=AssistantMessage(content=text), finish_reason=_finish_reason(event.finish_reason))],
            usage=_usage(event.stats),
            lethe=_lethe_stats(loaded, event.stats, prompt),
        )
        return JSONResponse(completion.model_dump(), headers=headers)

    return app


def _sse(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _stream(loaded, prompt, params, include_usage, log_exchange, interval_s: float) -> AsyncIterator[str]:
    """SSE chunks of one reply; leaving early (client gone) cancels the reply."""
    base = {
        "id": completion_id(),
        "object": "chat.completion.chunk",
        "created": now(),
        "model": loaded.name,
        "system_fingerprint": f"lethe-{loaded.name}",
    }

    def chunk(delta: dict, finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return _sse({**base, "choices": [choice]})

    yield chunk({"role": "assistant", "content": ""})
    parts: list[str] = []
    held: list[str] = []
    last_sent = -interval_s
    async for event in loaded.engine.astream(prompt.ids, params):
        if event.text:
            parts.append(event.text)
            held.append(event.text)
            if time.monotonic() - last_sent >= interval_s:
                yield chunk({"content": "".join(held)})
                held.clear()
                last_sent = time.monotonic()
        if not event.done:
            continue
        if held:
            yield chunk({"content": "".join(held)})
        if event.error is not None:
            yield _sse(error_body(f"generation failed: {event.error}", "api_error"))
            return
        yield chunk({}, _finish_reason(event.finish_reason))
        if include_usage and event.stats is not None:
            usage = _usage(event.stats).model_dump()
            lethe_stats = _lethe_stats(loaded, event.stats, prompt).model_dump()
            yield _sse({**base, "choices": [], "usage": usage, "lethe": lethe_stats})
        yield "data: [DONE]\n\n"
        await run_in_threadpool(log_exchange, "".join(parts), event.stats, event.finish_reason)
