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


def _fits_chars(system: list[Message], turns: list[list[Message]], budget: int) -> int:
    """The first turn worth tokenizing: older turns cannot fit on characters alone, nor
    when there are more messages than tokens (every message costs at least one)."""
    max_chars = budget * MAX_CHARS_PER_TOKEN
    chars = sum(len(m["content"]) for m in system)
    count = len(system)
    first = len(turns)
    while first > 0:
        turn = turns[first - 1]
        size = sum(len(m["content"]) for m in turn)
        if chars + size > max_chars or count + len(turn) > budget:
            break
        first -= 1
        chars += size
        count += len(turn)
    return min(first, len(turns) - 1)


def fit_prompt(
    messages: Sequence[Message],
    encode: Callable[[list[Message]], list[int]],
    budget: int,
    count: Callable[[list[Message]], list[int]] | None = None,
) -> Prompt:
    """Encode `messages`, dropping the oldest turns until at most `budget` tokens remain.

    Linear in the history: each message is measured once (`count`, its tokens in the
    template; by default `encode` of the message alone), turns are kept newest first while
    the measured sum fits, and only what is kept is encoded as a whole. Templates are not
    exactly additive, so when the whole comes out longer, the turns covering the excess go
    too, until it fits.
    """
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
    too_long = InputError(
        f"the last message does not fit the context window ({budget} tokens for the "
        "prompt, system prompt included); shorten it",
        Where(field="messages"),
    )
    if sum(len(m["content"]) for m in system + turns[-1]) > budget * MAX_CHARS_PER_TOKEN:
        raise too_long  # judged on characters, before paying for a megabyte's tokenization
    first = _fits_chars(system, turns, budget)
    measure = count or (lambda ms: [len(encode([m])) for m in ms])
    candidates = [m for turn in turns[first:] for m in turn]
    lengths = iter(measure(system + candidates))
    system_cost = sum(next(lengths) for _ in system)
    turn_costs = [max(len(turn), sum(next(lengths) for _ in turn)) for turn in turns[first:]]
    # Newest turns first while the measured sum fits; the last turn is always tried.
    start, total = len(turns), system_cost
    while start > first and total + turn_costs[start - 1 - first] <= budget:
        start -= 1
        total += turn_costs[start - first]
    start = min(start, len(turns) - 1)
    while True:
        kept = system + [m for turn in turns[start:] for m in turn]
        ids = encode(kept)
        if len(ids) <= budget:
            return Prompt(ids=ids, messages=kept, dropped=len(messages) - len(kept))
        if start == len(turns) - 1:
            raise too_long
        excess = len(ids) - budget
        while start < len(turns) - 1 and excess > 0:
            excess -= turn_costs[start - first]
            start += 1
