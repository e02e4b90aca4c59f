"""The Compare tab: one prompt, two model versions side by side, both streaming at once.

Typical use: the version before a forget request and its candidate, asked about what was
forgotten. Each side is one reply of the shared engines, so both stream together (and are
batched with any other user's replies to the same version).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

import gradio as gr

from lethe.errors import LetheError
from lethe.serve.ui.common import (
    CancelTokens,
    ReplyProgress,
    SamplingControls,
    UIContext,
    error_text,
    sampling_params,
    session_of,
    stats_line,
    stream_reply,
)


@dataclass
class CompareTab:
    left: Any
    right: Any


def _shown(side: ReplyProgress | str | None) -> list[dict]:
    """One side's reply with its stats line (the prompt is shown once, above both sides)."""
    if isinstance(side, str):
        return [{"role": "assistant", "content": f"*{side}*"}]
    if side is None:
        return []
    return [{"role": "assistant", "content": f"{side.text}\n\n*{stats_line(side)}*"}]


def build_compare_tab(ctx: UIContext) -> CompareTab:
    tokens = CancelTokens()
    gr.Markdown(
        "Ask two versions the same thing, e.g. before and after a forget request "
        "(candidates awaiting publication are listed too)."
    )
    prompt = gr.Textbox(label="Prompt", lines=2, elem_id="compare-prompt")
    system = gr.Textbox(label="System prompt", lines=1, placeholder="optional")
    with gr.Row():
        with gr.Column():
            left = gr.Dropdown(
                label="Left version", choices=[], value=None, elem_id="compare-left", allow_custom_value=True
            )
            left_out = gr.Chatbot(
                label="Left", height=320, elem_id="compare-left-out", feedback_options=None, buttons=["copy"]
            )
        with gr.Column():
            right = gr.Dropdown(
                label="Right version", choices=[], value=None, elem_id="compare-right", allow_custom_value=True
            )
            right_out = gr.Chatbot(
                label="Right", height=320, elem_id="compare-right-out", feedback_options=None, buttons=["copy"]
            )
    with gr.Row():
        run = gr.Button("Compare", variant="primary", elem_id="compare-run")
        stop = gr.Button("Stop", variant="stop", elem_id="compare-stop")
    sampling = SamplingControls.build(prefix="compare-")

    def compare(
        text,
        system_prompt,
        left_version,
        right_version,
        temperature,
        top_k,
        top_p,
        repetition,
        max_tokens,
        seed,
        stop_strings,
        request: gr.Request = None,
    ):
        if not text or not text.strip():
            raise gr.Error("Type a prompt.")
        if not left_version or not right_version:
            raise gr.Error("Pick two versions.")
        try:
            params = sampling_params(temperature, top_k, top_p, repetition, max_tokens, seed, stop_strings)
        except LetheError as error:
            raise gr.Error(error_text(error)) from None
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            {"role": "user", "content": text}
        ]
        session = session_of(request)
        events: queue.SimpleQueue = queue.SimpleQueue()
        sides: list[ReplyProgress | str | None] = [None, None]
        held = [tokens.new(session), tokens.new(session)]

        def pump(index: int, version: str) -> None:
            try:
                for progress in stream_reply(ctx, version, messages, params, held[index]):
                    events.put((index, progress))
            except Exception as error:  # noqa: BLE001  (shown on its side; the other carries on)
                events.put((index, f"error: {error_text(error)}"))
            finally:
                events.put((index, None))

        threads = [
            threading.Thread(target=pump, args=(i, v), daemon=True) for i, v in enumerate((left_version, right_version))
        ]
        for thread in threads:
            thread.start()
        running = 2
        try:
            while running:
                index, item = events.get()
                if item is None:
                    running -= 1
                    continue
                sides[index] = item
                yield _shown(sides[0]), _shown(sides[1])
        finally:
            for token in held:
                if running:  # the page went away mid-reply
                    token.cancel()
                tokens.release(session, token)

    def stop_replies(request: gr.Request = None):
        tokens.cancel(session_of(request))

    run.click(
        compare,
        [prompt, system, left, right, *sampling.components],
        [left_out, right_out],
        concurrency_limit=None,
        show_progress="hidden",
    )
    prompt.submit(
        compare,
        [prompt, system, left, right, *sampling.components],
        [left_out, right_out],
        concurrency_limit=None,
        show_progress="hidden",
    )
    stop.click(stop_replies, None, None, queue=False)
    return CompareTab(left=left, right=right)
