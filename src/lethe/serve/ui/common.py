"""What several tabs share: the context they run in, version pickers, sampling controls, and
streaming one reply from the engine pool.

The UI knows nothing of models: replies come from `ModelPool.get(version).engine` (the same
engines the HTTP API drives), everything else from the ledger and the library.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import gradio as gr

from lethe.chat.reply import CancelToken, ReplyEvent
from lethe.chat.sampling import SamplingParams
from lethe.errors import LetheError


@dataclass
class UIContext:
    """Everything the tabs use: one workspace (ledger), one engine pool, one logger, one worker."""

    workspace: Any
    pool: Any
    """The `ModelPool` the API serves from: one engine per version for every front end."""
    logger: Any = None
    """A `ConversationLogger` (None: chats are not logged)."""
    worker: Any = None
    """The `JobWorker` running queued jobs; woken when the UI queues one."""

    @property
    def ledger(self):
        return self.workspace.ledger


@dataclass
class Loader:
    """What a tab refreshes when the page loads (or the tab is shown): a Gradio event's parts."""

    fn: Any
    inputs: list
    outputs: list


class CancelTokens:
    """The running reply's cancel token of each browser session (and tab), for the stop button."""

    def __init__(self) -> None:
        self._tokens: dict[str, list[CancelToken]] = {}
        self._lock = threading.Lock()

    def new(self, session: str) -> CancelToken:
        token = CancelToken()
        with self._lock:
            self._tokens.setdefault(session, []).append(token)
        return token

    def release(self, session: str, token: CancelToken) -> None:
        with self._lock:
            tokens = self._tokens.get(session, [])
            if token in tokens:
                tokens.remove(token)
            if not tokens:
                self._tokens.pop(session, None)

    def cancel(self, session: str) -> None:
        with self._lock:
            for token in self._tokens.get(session, []):
                token.cancel()


def session_of(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "anonymous"


# -- versions ---------------------------------------------------------------------------------


def alias_names(ctx: UIContext) -> dict[str, int]:
    resolver = ctx.pool.resolver
    return resolver.aliases() if callable(getattr(resolver, "aliases", None)) else {}


def version_choices(ctx: UIContext, *, candidates: bool = False) -> list[tuple[str, str]]:
    """(label, value) pairs of servable versions: aliases first (``latest (v3)``), then newest first."""
    try:
        versions = ctx.pool.available()
    except LetheError:
        return []
    if not candidates:
        versions = [v for v in versions if getattr(v, "status", "published") != "candidate"]
    names = {getattr(v, "id", None): v.name for v in versions}
    choices: list[tuple[str, str]] = []
    aliases = alias_names(ctx)
    bases = ctx.pool.resolver.version_bases() if callable(getattr(ctx.pool.resolver, "version_bases", None)) else {}
    for alias, version_id in sorted(aliases.items()):
        if version_id in names:
            choices.append((f"{alias} ({names[version_id]})", alias))
    for version in reversed(versions):
        status = getattr(version, "status", "published")
        kind = getattr(version, "kind", "")
        label = version.name + (f" · {kind}" if kind else "") + (" · candidate" if status == "candidate" else "")
        if getattr(version, "id", None) in bases:
            label += f" · base {bases[version.id]}"
        choices.append((label, version.name))
    return choices


def version_dropdown_update(ctx: UIContext, current: str | None, *, candidates: bool = False):
    """A dropdown update with fresh choices, keeping `current` when it is still servable."""
    choices = version_choices(ctx, candidates=candidates)
    values = [value for _, value in choices]
    value = current if current in values else (values[0] if values else None)
    return gr.update(choices=choices, value=value)


# -- sampling ---------------------------------------------------------------------------------


@dataclass
class SamplingControls:
    """The sampling widgets of one tab, in the order `params` takes them."""

    components: list[Any] = field(default_factory=list)

    @classmethod
    def build(cls, *, max_new_tokens: int = 128, prefix: str = "") -> SamplingControls:
        with gr.Accordion("Sampling", open=False):
            with gr.Row():
                temperature = gr.Slider(
                    0, 5, value=0.8, step=0.05, label="Temperature", info="0 is greedy", elem_id=f"{prefix}temperature"
                )
                top_k = gr.Slider(0, 200, value=0, step=1, label="Top-k", info="0 keeps all")
                top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="Top-p")
            with gr.Row():
                repetition = gr.Slider(0.5, 2, value=1.0, step=0.05, label="Repetition penalty")
                max_tokens = gr.Slider(
                    1, 1024, value=max_new_tokens, step=1, label="Max new tokens", elem_id=f"{prefix}max-tokens"
                )
                seed = gr.Number(value=None, label="Seed", precision=0, info="empty: random", elem_id=f"{prefix}seed")
            stop = gr.Textbox(label="Stop strings", placeholder="one per line", lines=1, max_lines=4)
        return cls([temperature, top_k, top_p, repetition, max_tokens, seed, stop])


def sampling_params(temperature, top_k, top_p, repetition, max_tokens, seed, stop) -> SamplingParams:
    """Engine settings from the widgets' values (an `InputError` names a bad one)."""
    stops = tuple(s for s in (stop or "").splitlines() if s)
    return SamplingParams(
        temperature=float(temperature),
        top_k=int(top_k),
        top_p=float(top_p),
        repetition_penalty=float(repetition),
        max_new_tokens=int(max_tokens),
        stop=stops,
        seed=None if seed in (None, "") else int(seed),
    )


# -- replies ----------------------------------------------------------------------------------


@dataclass
class ReplyProgress:
    """The reply so far: text, and on the last update the final event."""

    version: str
    text: str = ""
    final: ReplyEvent | None = None
    dropped: int = 0
    loaded: Any = None


def stream_reply(
    ctx: UIContext, version: str, messages: Sequence[dict], params: SamplingParams, cancel: CancelToken
) -> Iterator[ReplyProgress]:
    """Stream one reply of `version` to `messages`; closing the iterator cancels the reply."""
    loaded = ctx.pool.get(version)
    prompt = loaded.engine.prompt(list(messages), params)
    progress = ReplyProgress(version=loaded.name, dropped=prompt.dropped, loaded=loaded)
    stream = loaded.engine.stream(prompt.ids, params, cancel)
    try:
        for event in stream:
            progress.text += event.text
            if event.done:
                progress.final = event
            yield progress
    finally:
        stream.close()


def stats_line(progress: ReplyProgress) -> str:
    """The line under a reply: version, tokens, speed, and why it ended."""
    final = progress.final
    if final is None:
        return f"{progress.version} · …"
    if final.finish_reason == "error":
        return f"{progress.version} · error: {final.error}"
    stats = final.stats
    parts = [progress.version]
    if stats is not None:
        parts += [
            f"{stats.completion_tokens} tokens",
            f"{stats.tokens_per_second:.1f} tokens/s",
            f"first token {stats.time_to_first_token_s:.2f} s",
        ]
    reason = {"cancelled": "stopped", "length": "length limit"}.get(final.finish_reason or "")
    if reason:
        parts.append(reason)
    if progress.dropped:
        parts.append(f"{progress.dropped} old messages left out")
    return " · ".join(parts)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def error_text(error: BaseException) -> str:
    return error.message if isinstance(error, LetheError) else f"{type(error).__name__}: {error}"
