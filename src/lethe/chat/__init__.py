"""Chatting with a model version: one engine (streaming, batching, stop, cancel, stats).

The front ends (terminal chat, HTTP API, web UI) drive `ChatEngine` and only render its
`ReplyEvent`s.
"""

from lethe.chat.engine import ChatEngine, EngineConfig, collect
from lethe.chat.prompt import Prompt
from lethe.chat.reply import CancelToken, Reply, ReplyEvent, ReplyStats
from lethe.chat.sampling import SamplingParams

__all__ = [
    "CancelToken",
    "ChatEngine",
    "EngineConfig",
    "Prompt",
    "Reply",
    "ReplyEvent",
    "ReplyStats",
    "SamplingParams",
    "collect",
]
