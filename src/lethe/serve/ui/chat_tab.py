"""The Chat tab: streaming chat with any servable version, stop, regenerate, edit, clear.

The conversation lives in a `gr.State` as plain turns (what the model sees); the chatbot
shows them with a stats line under each reply (version, tokens, tokens/s). Stop sets the
reply's `CancelToken`, the engine's one cancel mechanism. Each finished reply is logged as a
branch of the ledger's message tree: regenerating or editing starts a sibling branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from lethe.errors import LetheError
from lethe.serve.ui.common import (
    CancelTokens,
    SamplingControls,
    UIContext,
    error_text,
    sampling_params,
    session_of,
    stats_line,
    stream_reply,
    version_dropdown_update,
)


def display(turns: list[dict]) -> list[dict]:
    """Chatbot messages: the turns, each reply followed by its stats line."""
    shown = []
    for turn in turns:
        content = turn["content"]
        if turn["role"] == "assistant" and turn.get("stats"):
            content = f"{content}\n\n*{turn['stats']}*" if content else f"*{turn['stats']}*"
        shown.append({"role": turn["role"], "content": content})
    return shown


def model_messages(system: str, turns: list[dict]) -> list[dict]:
    head = [{"role": "system", "content": system.strip()}] if system and system.strip() else []
    return head + [{"role": t["role"], "content": t["content"]} for t in turns]


@dataclass
class ChatTab:
    """The tab's components other tabs refresh (the version picker)."""

    version: Any
    chatbot: Any


def build_chat_tab(ctx: UIContext) -> ChatTab:
    tokens = CancelTokens()

    with gr.Row(equal_height=True):
        version = gr.Dropdown(
            label="Model version", choices=[], value=None, scale=2, elem_id="chat-version", allow_custom_value=True
        )
        system = gr.Textbox(
            label="System prompt",
            lines=1,
            max_lines=6,
            elem_id="chat-system",
            scale=5,
            placeholder="optional; always kept, even when old turns are left out",
        )
        refresh = gr.Button("↻ Versions", scale=0, min_width=110, size="sm", elem_id="chat-refresh")
    chatbot = gr.Chatbot(label="Chat", height=420, elem_id="chat-log", buttons=["copy"], feedback_options=None)
    with gr.Row():
        message = gr.Textbox(
            label="Message",
            placeholder="Type a message and press Enter",
            scale=5,
            elem_id="chat-input",
            show_label=False,
        )
        send = gr.Button("Send", variant="primary", scale=1, elem_id="chat-send")
        stop = gr.Button("Stop", variant="stop", scale=1, elem_id="chat-stop")
    with gr.Row():
        regenerate = gr.Button("Regenerate", size="sm", elem_id="chat-regenerate")
        edit = gr.Button("Edit last message", size="sm", elem_id="chat-edit")
        clear = gr.Button("Clear", size="sm", elem_id="chat-clear")
    sampling = SamplingControls.build(prefix="chat-")
    turns = gr.State([])
    conversation = gr.State(None)

    def add_user(text: str, history: list[dict]):
        if not text or not text.strip():
            return gr.update(), history, display(history)
        history = [*history, {"role": "user", "content": text}]
        return "", history, display(history)

    def respond(
        history,
        conversation_id,
        version_name,
        system_prompt,
        temperature,
        top_k,
        top_p,
        repetition,
        max_tokens,
        seed,
        stop_strings,
        request: gr.Request = None,
    ):
        # Explicit parameters, not *args: Gradio injects `request` only into named ones.
        if not history or history[-1]["role"] != "user":
            yield display(history), history, conversation_id
            return
        if not version_name:
            raise gr.Error("Pick a model version first.")
        try:
            params = sampling_params(temperature, top_k, top_p, repetition, max_tokens, seed, stop_strings)
        except LetheError as error:
            raise gr.Error(error_text(error)) from None
        session = session_of(request)
        token = tokens.new(session)
        messages = model_messages(system_prompt, history)
        reply = {"role": "assistant", "content": "", "stats": f"{version_name} · …"}
        progress = None
        try:
            for progress in stream_reply(ctx, version_name, messages, params, token):
                reply = {**reply, "content": progress.text, "stats": stats_line(progress)}
                yield display([*history, reply]), history, conversation_id
        except LetheError as error:
            raise gr.Error(error_text(error)) from None
        finally:
            tokens.release(session, token)
        if progress is None:
            return
        logged = log_exchange(progress, messages, history, conversation_id, params)
        if logged is not None:
            conversation_id, reply["log_id"] = logged.conversation_id, logged.reply_id
        history = [*history, reply]
        yield display(history), history, conversation_id

    def log_exchange(progress, messages, history, conversation_id, params):
        if ctx.logger is None or progress.final is None:
            return None
        from lethe.chat.session import ChatSession

        # The session continues from the message the reply answers: after a regenerate or an
        # edit that is an earlier one, and the log branches there.
        parent = history[-2].get("log_id") if len(history) >= 2 else None
        session = ChatSession.at(
            ctx.logger, messages[:-1], conversation_id=conversation_id, parent_id=parent, front_end="ui"
        )
        stats = progress.final.stats.to_dict() if progress.final.stats else {}
        return session.record(
            [messages[-1]],
            progress.text,
            model_version=progress.loaded.name,
            model_version_id=progress.loaded.id,
            params=params.to_dict(),
            stats={**stats, "finish_reason": progress.final.finish_reason},
        )

    def stop_reply(request: gr.Request = None):
        tokens.cancel(session_of(request))

    def drop_reply(history):
        if history and history[-1]["role"] == "assistant":
            history = history[:-1]
        return history, display(history)

    def edit_last(history):
        last = max((i for i, t in enumerate(history) if t["role"] == "user"), default=None)
        if last is None:
            return gr.update(), history, display(history)
        return history[last]["content"], history[:last], display(history[:last])

    def clear_all():
        return [], None, [], ""

    reply_inputs = [turns, conversation, version, system, *sampling.components]
    reply_outputs = [chatbot, turns, conversation]
    stream = {
        "fn": respond,
        "inputs": reply_inputs,
        "outputs": reply_outputs,
        "concurrency_limit": None,
        "show_progress": "hidden",
    }
    for trigger in (message.submit, send.click):
        trigger(add_user, [message, turns], [message, turns, chatbot], queue=False).then(**stream)
    regenerate.click(drop_reply, [turns], [turns, chatbot], queue=False).then(**stream)
    stop.click(stop_reply, None, None, queue=False)
    edit.click(edit_last, [turns], [message, turns, chatbot], queue=False)
    clear.click(clear_all, None, [turns, conversation, chatbot, message], queue=False)
    chatbot.clear(clear_all, None, [turns, conversation, chatbot, message], queue=False)
    refresh.click(lambda current: version_dropdown_update(ctx, current), [version], [version], queue=False)
    return ChatTab(version=version, chatbot=chatbot)
