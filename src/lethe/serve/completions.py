"""Running the `n` choices of one request through the engine, and their wire shapes.

Chat and text completions share this: every choice is its own engine request (its own seed,
the same prompt), all decoded in the engine's batch at once; their events are merged into
one stream of (choice index, event). Non-streamed replies are collected; streamed ones are
sent as SSE chunks, at most one per choice per interval, with the log probabilities of the
tokens each chunk carries.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from lethe.chat.reply import ReplyEvent, ReplyStats, TokenLogprob
from lethe.chat.sampling import SamplingParams
from lethe.serve.errors import error_body
from lethe.serve.models import LoadedModel
from lethe.serve.openai_schema import (
    AssistantMessage,
    Choice,
    ChoiceLogprobs,
    CompletionChoice,
    CompletionLogprobs,
    LetheStats,
    TopLogprob,
    Usage,
    completion_id,
    now,
)
from lethe.serve.openai_schema import (
    TokenLogprob as WireTokenLogprob,
)


@dataclass(frozen=True)
class ChoiceRun:
    """One choice to generate: its index in the response and its sampling settings."""

    index: int
    params: SamplingParams


@dataclass
class Reply:
    """A finished choice."""

    index: int
    params: SamplingParams
    text: str = ""
    finish_reason: str | None = None
    stats: ReplyStats | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)


def finish_reason(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


async def merged_events(
    loaded: LoadedModel, ids: list[int], runs: list[ChoiceRun]
) -> AsyncIterator[tuple[int, ReplyEvent]]:
    """(choice index, event) of every run, as they come; leaving early cancels them all."""
    if len(runs) == 1:
        async for event in loaded.engine.astream(ids, runs[0].params):
            yield runs[0].index, event
        return
    events: asyncio.Queue[tuple[int, ReplyEvent]] = asyncio.Queue()

    async def pump(run: ChoiceRun) -> None:
        try:
            async for event in loaded.engine.astream(ids, run.params):
                events.put_nowait((run.index, event))
        except Exception as error:  # noqa: BLE001  (reported as this choice's failure)
            events.put_nowait((run.index, ReplyEvent(done=True, finish_reason="error", error=error)))

    tasks = [asyncio.create_task(pump(run)) for run in runs]
    remaining = len(runs)
    try:
        while remaining:
            index, event = await events.get()
            yield index, event
            remaining -= event.done
    finally:
        for task in tasks:
            task.cancel()


async def run_choices(loaded: LoadedModel, ids: list[int], runs: list[ChoiceRun]) -> list[Reply]:
    """Every choice, finished; an engine failure is raised."""
    replies = {run.index: Reply(run.index, run.params) for run in runs}
    parts: dict[int, list[str]] = {run.index: [] for run in runs}
    async for index, event in merged_events(loaded, ids, runs):
        parts[index].append(event.text)
        replies[index].logprobs.extend(event.logprobs)
        if event.done:
            if event.error is not None:
                raise event.error
            replies[index].finish_reason = event.finish_reason
            replies[index].stats = event.stats
    for index, reply in replies.items():
        reply.text = "".join(parts[index])
    return [replies[run.index] for run in runs]


# -- log probabilities on the wire -----------------------------------------------------------


def _top(loaded: LoadedModel, token_id: int, logprob: float) -> TopLogprob:
    text = loaded.engine.token_text(token_id)
    return TopLogprob(token=text, logprob=logprob, bytes=list(text.encode("utf-8", "replace")))


def chat_logprobs(loaded: LoadedModel, logprobs: list[TokenLogprob] | tuple[TokenLogprob, ...]) -> ChoiceLogprobs:
    content = []
    for item in logprobs:
        chosen = _top(loaded, item.token_id, item.logprob)
        top = [_top(loaded, t, lp) for t, lp in item.top]
        content.append(WireTokenLogprob(**chosen.model_dump(), top_logprobs=top))
    return ChoiceLogprobs(content=content)


def completion_logprobs(loaded: LoadedModel, logprobs, offset: int = 0) -> CompletionLogprobs:
    tokens = [loaded.engine.token_text(item.token_id) for item in logprobs]
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token)
    return CompletionLogprobs(
        tokens=tokens,
        token_logprobs=[item.logprob for item in logprobs],
        top_logprobs=[{loaded.engine.token_text(t): lp for t, lp in item.top} for item in logprobs],
        text_offset=offsets,
    )


def chat_choice(loaded: LoadedModel, reply: Reply) -> Choice:
    logprobs = chat_logprobs(loaded, reply.logprobs) if reply.params.logprobs is not None else None
    return Choice(
        index=reply.index,
        message=AssistantMessage(content=reply.text),
        finish_reason=finish_reason(reply.finish_reason),
        logprobs=logprobs,
    )


def completion_choice(loaded: LoadedModel, reply: Reply) -> CompletionChoice:
    logprobs = completion_logprobs(loaded, reply.logprobs) if reply.params.logprobs is not None else None
    return CompletionChoice(
        index=reply.index, text=reply.text, finish_reason=finish_reason(reply.finish_reason), logprobs=logprobs
    )


# -- streaming -------------------------------------------------------------------------------


def sse(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


Summary = Callable[[list[Reply]], tuple[Usage, LetheStats]]


async def _stream(
    loaded: LoadedModel,
    ids: list[int],
    runs: list[ChoiceRun],
    interval_s: float,
    finished: Callable[[Reply], Awaitable[None]],
    start: Callable[[int], str | None],
    delta: Callable[[Reply, str, list[TokenLogprob]], str],
    end: Callable[[Reply], str],
    tail: Callable[[list[Reply]], str | None],
) -> AsyncIterator[str]:
    replies = {run.index: Reply(run.index, run.params) for run in runs}
    held: dict[int, list[str]] = {run.index: [] for run in runs}
    held_logprobs: dict[int, list[TokenLogprob]] = {run.index: [] for run in runs}
    last_sent = dict.fromkeys(replies, -interval_s)
    for run in runs:
        first = start(run.index)
        if first:
            yield first
    async for index, event in merged_events(loaded, ids, runs):
        reply = replies[index]
        reply.text += event.text
        reply.logprobs.extend(event.logprobs)
        if event.text or event.logprobs:
            held[index].append(event.text)
            held_logprobs[index].extend(event.logprobs)
            if time.monotonic() - last_sent[index] >= interval_s and not event.done:
                yield delta(reply, "".join(held[index]), held_logprobs[index])
                held[index], held_logprobs[index] = [], []
                last_sent[index] = time.monotonic()
        if not event.done:
            continue
        if held[index] or held_logprobs[index]:
            yield delta(reply, "".join(held[index]), held_logprobs[index])
        if event.error is not None:
            yield sse(error_body(f"generation failed: {event.error}", "api_error"))
            return
        reply.finish_reason, reply.stats = event.finish_reason, event.stats
        yield end(reply)
    final = [replies[run.index] for run in runs]
    for reply in final:  # logged before the tail, so the tail can name the conversation
        await finished(reply)
    last = tail(final)
    if last:
        yield last
    yield "data: [DONE]\n\n"


def chat_stream(
    loaded: LoadedModel,
    ids: list[int],
    runs: list[ChoiceRun],
    system_fingerprint: str,
    include_usage: bool,
    interval_s: float,
    finished: Callable[[Reply], Awaitable[None]],
    summary: Summary,
) -> AsyncIterator[str]:
    """SSE chunks of a chat completion (``chat.completion.chunk``)."""
    base = {
        "id": completion_id(),
        "object": "chat.completion.chunk",
        "created": now(),
        "model": loaded.name,
        "system_fingerprint": system_fingerprint,
    }

    def chunk(index: int, delta: dict, reason: str | None = None, logprobs: dict | None = None) -> str:
        return sse(
            {**base, "choices": [{"index": index, "delta": delta, "finish_reason": reason, "logprobs": logprobs}]}
        )

    def delta(reply: Reply, text: str, logprobs: list[TokenLogprob]) -> str:
        wire = chat_logprobs(loaded, logprobs).model_dump() if reply.params.logprobs is not None else None
        return chunk(reply.index, {"content": text}, logprobs=wire)

    def tail(replies: list[Reply]) -> str | None:
        if not include_usage:
            return None
        usage, stats = summary(replies)
        return sse({**base, "choices": [], "usage": usage.model_dump(), "lethe": stats.model_dump()})

    return _stream(
        loaded,
        ids,
        runs,
        interval_s,
        finished,
        start=lambda index: chunk(index, {"role": "assistant", "content": ""}),
        delta=delta,
        end=lambda reply: chunk(reply.index, {}, finish_reason(reply.finish_reason)),
        tail=tail,
    )


def completion_stream(
    loaded: LoadedModel,
    ids: list[int],
    runs: list[ChoiceRun],
    system_fingerprint: str,
    include_usage: bool,
    interval_s: float,
    finished: Callable[[Reply], Awaitable[None]],
    summary: Summary,
) -> AsyncIterator[str]:
    """SSE chunks of a text completion (``text_completion``)."""
    base = {
        "id": completion_id("cmpl"),
        "object": "text_completion",
        "created": now(),
        "model": loaded.name,
        "system_fingerprint": system_fingerprint,
    }

    def chunk(index: int, text: str, reason: str | None = None, logprobs: dict | None = None) -> str:
        return sse({**base, "choices": [{"index": index, "text": text, "finish_reason": reason, "logprobs": logprobs}]})

    def delta(reply: Reply, text: str, logprobs: list[TokenLogprob]) -> str:
        wire = completion_logprobs(loaded, logprobs).model_dump() if reply.params.logprobs is not None else None
        return chunk(reply.index, text, logprobs=wire)

    def tail(replies: list[Reply]) -> str | None:
        if not include_usage:
            return None
        usage, stats = summary(replies)
        return sse({**base, "choices": [], "usage": usage.model_dump(), "lethe": stats.model_dump()})

    return _stream(
        loaded,
        ids,
        runs,
        interval_s,
        finished,
        start=lambda index: None,
        delta=delta,
        end=lambda reply: chunk(reply.index, "", finish_reason(reply.finish_reason)),
        tail=tail,
    )
