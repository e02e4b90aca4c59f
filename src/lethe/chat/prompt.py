"""Chat history to prompt ids through the tokenizer's chat template, within the context.

When the history outgrows the context window the oldest turns go first (a turn is a user
message and the replies after it); system messages at the start always stay. If even the
last turn cannot fit, that is the caller's error, not something to cut silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lethe.errors import InputError, Where

Message = dict[str, str]

#: No tokenizer lethe trains packs this many characters into one token on average; longer
#: messages are judged too long before paying for their tokenization.
MAX_CHARS_PER_TOKEN = 32


@dataclass(frozen=True)
class Prompt:
    """A prompt ready for the engine."""

    ids: list[int]
    """Token ids, ending with the template's generation prompt."""
    messages: list[Message]
    """The messages that made it into the prompt."""
    dropped: int
    """How many messages of the history were left out to fit the context."""


def split_turns(messages: Sequence[Message]) -> tuple[list[Message], list[list[Message]]]:
    """Leading system messages, and the rest grouped into turns that start at a user message."""
    head = 0
    while head < len(messages) and messages[head]["role"] == "system":
        head += 1
    turns: list[list[Message]] = []
    for message in messages[head:]:
        if not turns or message["role"] == "user":
            turns.append([])
        turns[-1].append(message)
    return list(messages[:head]), turns


def fit_prompt(messages: Sequence[Message], encode: Callable[[list[Message]], list[int]], budget: int) -> Prompt:
    """Encode `messages`, dropping the oldest turns until at most `budget` tokens remain."""
    if not messages:
        raise InputError("there are no messages to reply to", Where(field="messages"))
    for i, message in enumerate(messages):
        if not isinstance(message.get("content"), str) or message.get("role") not in ("system", "user", "assistant"):
            raise InputError(
                "each message needs a role (system, user or assistant) and text content",
                Where(field=f"messages[{i}]"),
            )
    system, turns = split_turns(messages)
    if not turns:
        raise InputError("there is no user message to reply to", Where(field="messages"))
    max_chars = budget * MAX_CHARS_PER_TOKEN
    # Cheap first cut on characters, so a megabyte of old history is never tokenized.
    chars = sum(len(m["content"]) for m in system)
    first = len(turns)
    while first > 0 and chars + sum(len(m["content"]) for m in turns[first - 1]) <= max_chars:
        first -= 1
        chars += sum(len(m["content"]) for m in turns[first])
    first = min(first, len(turns) - 1)
    while True:
        kept = system + [m for turn in turns[first:] for m in turn]
        if sum(len(m["content"]) for m in kept) <= max_chars:
            ids = encode(kept)
            if len(ids) <= budget:
                return Prompt(ids=ids, messages=kept, dropped=len(messages) - len(kept))
        if first == len(turns) - 1:
            raise InputError(
                f"the last message does not fit the context window ({budget} tokens for the "
                "prompt, system prompt included); shorten it",
                Where(field="messages"),
            )
        first += 1
