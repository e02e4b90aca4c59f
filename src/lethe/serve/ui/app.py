"""The Gradio app: five tabs over one engine pool, one ledger and one job worker.

    api = create_app(pool, logger=logger)                       # the OpenAI-compatible API
    mount_ui(api, UIContext(workspace, pool, logger, worker))   # the web UI at /

The API's routes are registered first, so ``/v1/...`` and ``/health`` keep answering and
everything else is the UI. Beyond loopback the UI asks for the API key as its password.
"""

from __future__ import annotations

import hmac

import gradio as gr
from fastapi import FastAPI

from lethe.serve.ui.changelog_tab import build_changelog_tab
from lethe.serve.ui.chat_tab import build_chat_tab
from lethe.serve.ui.common import UIContext, alias_names, version_choices
from lethe.serve.ui.compare_tab import build_compare_tab
from lethe.serve.ui.data_tab import build_data_tab
from lethe.serve.ui.forget_tab import build_forget_tab

__all__ = ["UIContext", "build_ui", "mount_ui"]

CSS = """
#chat-log em, #compare-left-out em, #compare-right-out em { opacity: 0.7; font-size: 0.9em; }
.lethe-impact mark { border-radius: 2px; padding: 0 1px; }
"""


def picker_updates(ctx: UIContext, chat: str | None, base: str | None, left: str | None, right: str | None) -> tuple:
    """Fresh choices for every version picker, keeping each selection that is still servable.

    Chat and the forget base list published versions; Compare lists candidates too and starts
    with the newest version on the right and the one before it on the left.
    """
    published = version_choices(ctx)
    everything = version_choices(ctx, candidates=True)

    def pick(choices, current, fallback):
        values = [value for _, value in choices]
        chosen = current if current in values else fallback
        return gr.update(choices=choices, value=chosen if chosen in values else None)

    aliases = alias_names(ctx)
    concrete = [value for _, value in everything if value not in aliases]
    newest = concrete[0] if concrete else None
    previous = concrete[1] if len(concrete) > 1 else newest
    default = published[0][1] if published else None
    return (
        pick(published, chat, default),
        pick(published, base, default),
        pick(everything, left, previous),
        pick(everything, right, newest),
    )


def build_ui(ctx: UIContext) -> gr.Blocks:
    """The Blocks app (not yet mounted or launched)."""
    with gr.Blocks(title="lethe", analytics_enabled=False) as blocks:
        gr.Markdown("## lethe · chat with a model version, make it forget, see what changed")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat") as chat_tab:
                chat = build_chat_tab(ctx)
            with gr.Tab("Forget", id="forget"):
                forget = build_forget_tab(ctx)
            with gr.Tab("Compare", id="compare") as compare_tab:
                compare = build_compare_tab(ctx)
            with gr.Tab("Changelog", id="changelog") as changelog_tab:
                changelog = build_changelog_tab(ctx)
            with gr.Tab("Data", id="data"):
                data = build_data_tab(ctx)

        pickers = [chat.version, forget.base, compare.left, compare.right]

        def refresh(*current):
            return picker_updates(ctx, *current)

        for loader in (forget.load, changelog, data):
            blocks.load(loader.fn, loader.inputs, loader.outputs, queue=False)
        blocks.load(refresh, pickers, pickers, queue=False)
        for tab in (chat_tab, compare_tab):
            tab.select(refresh, pickers, pickers, queue=False)
        for decision in forget.decisions:  # a published version appears in every picker
            decision.then(refresh, pickers, pickers, queue=False)
        changelog_tab.select(changelog.fn, changelog.inputs, changelog.outputs, queue=False)
    blocks.queue(default_concurrency_limit=8)
    return blocks


def mount_ui(api: FastAPI, ctx: UIContext, *, api_key: str | None = None, path: str = "/") -> FastAPI:
    """Mount the UI on the API app at `path`; with `api_key`, the UI's login asks for it."""
    auth = None
    if api_key:

        def auth(_user: str, password: str) -> bool:
            return hmac.compare_digest(password.encode(), api_key.encode())

    return gr.mount_gradio_app(
        api,
        build_ui(ctx),
        path=path,
        auth=auth,
        footer_links=["api", "settings"],
        css=CSS,
        auth_message="Log in with any user name and the server's API key as the password." if auth else None,
        ssr_mode=False,
    )
