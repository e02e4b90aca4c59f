"""Chat history to prompt: template, dropping the oldest turns, keeping the system prompt."""

from __future__ import annotations

import pytest

from lethe.chat.prompt import fit_prompt, split_turns
from lethe.errors import InputError


def encode(messages):
    # One "token" per character of content, plus one per message: easy to reason about.
    return [0] * sum(len(m["content"]) + 1 for m in messages)


def history(turns: int):
    messages = [{"role": "system", "content": "S" * 5}]
    for i in range(turns):
        messages += [{"role": "user", "content": f"u{i}" * 5}, {"role": "assistant", "content": f"a{i}" * 5}]
    messages.append({"role": "user", "content": "last"})
    return messages


def test_split_turns_groups_from_each_user_message():
    system, turns = split_turns(history(2))
    assert [m["role"] for m in system] == ["system"]
    assert [[m["role"] for m in t] for t in turns] == [["user", "assistant"]] * 2 + [["user"]]


def test_fits_everything_when_there_is_room():
    prompt = fit_prompt(history(2), encode, budget=1000)
    assert prompt.dropped == 0 and len(prompt.ids) == len(encode(history(2)))


def test_oldest_turns_go_first_and_system_stays():
    prompt = fit_prompt(history(5), encode, budget=60)
    assert prompt.messages[0]["role"] == "system"
    assert prompt.messages[-1]["content"] == "last"
    assert prompt.dropped % 2 == 0 and prompt.dropped > 0
    kept_users = [m["content"] for m in prompt.messages if m["role"] == "user"][:-1]
    originals = [f"u{i}" * 5 for i in range(5)]
    assert kept_users == originals[len(originals) - len(kept_users) :]
    assert len(prompt.ids) <= 60


def test_last_message_too_long_is_an_error_without_tokenizing_megabytes():
    calls = []

    def counting(messages):
        calls.append(sum(len(m["content"]) for m in messages))
        return encode(messages)

    huge = [{"role": "user", "content": "x" * 1_000_000}]
    with pytest.raises(InputError, match="does not fit"):
        fit_prompt(huge, counting, budget=100)
    assert calls == []


@pytest.mark.parametrize(
    "messages", [[], [{"role": "system", "content": "only"}], [{"role": "robot", "content": "hi"}]]
)
def test_unusable_histories_are_input_errors(messages):
    with pytest.raises(InputError):
        fit_prompt(messages, encode, budget=100)
