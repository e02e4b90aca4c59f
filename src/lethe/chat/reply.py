"""What the engine hands back while replying: text deltas, then one final event with stats.

`CancelToken` is the single way to stop a reply early; the stop button of a UI, a client
that disconnects and Ctrl-C in the terminal all set the same token, which the engine checks
before every decoding step.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass


class CancelToken:
    """A flag, set from any thread, that ends the reply it was given to."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class ReplyStats:
    """Measurements of one reply."""

    prompt_tokens: int
    """Tokens in the prompt the model saw (after dropping old turns, if any)."""
    completion_tokens: int
    """Tokens generated, the end-of-turn token included when one was produced."""
    time_to_first_token_s: float
    """From submission (queueing included) to the first generated token."""
    total_s: float
    """From submission to the end of the reply."""
    tokens_per_second: float
    """Decoding speed after the first token (completion tokens over total time if only one)."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token's log probability under the model, and the most likely ones."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()
    """(token id, log probability) of the most likely tokens at this position, best first."""


@dataclass(frozen=True)
class ReplyEvent:
    """One step of a streamed reply: a text delta, or the end (with reason and stats)."""

    text: str = ""
    """New text to show; may be empty (e.g. while a possible stop string is held back)."""
    done: bool = False
    """True on the last event of a reply, and only there."""
    finish_reason: str | None = None
    """On the last event: "stop" (end of turn or stop string), "length", "cancelled" or "error"."""
    stats: ReplyStats | None = None
    """On the last event: the reply's measurements."""
    error: BaseException | None = None
    """When `finish_reason` is "error": what went wrong inside the engine."""
    logprobs: tuple[TokenLogprob, ...] = ()
    """When asked for: the tokens consumed since the previous event, with their log probabilities."""


@dataclass(frozen=True)
class Reply:
    """A finished reply, collected from its events."""

    text: str
    finish_reason: str
    stats: ReplyStats
