"""Stop strings, incremental detokenization and sampling, as units."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lethe.chat.detokenizer import IncrementalDetokenizer
from lethe.chat.sampling import BatchSampler, SamplingParams
from lethe.chat.stops import StopMatcher
from lethe.errors import InputError
from test_chat_fixtures import nano  # noqa: F401  (fixture)


def run_matcher(pieces, stops):
    matcher = StopMatcher(stops)
    shown = "".join(matcher.feed(p) for p in pieces)
    return shown + matcher.flush(), matcher.stopped


def test_stop_split_across_pieces_is_trimmed_and_never_shown():
    matcher = StopMatcher(["END"])
    assert matcher.feed("hello E") == "hello "  # "E" could start END: held back
    assert matcher.feed("N") == ""
    assert matcher.feed("D and more") == ""
    assert matcher.stopped and matcher.flush() == ""


def test_false_start_is_released():
    assert run_matcher(["abc E", "Nx", "y"], ["END"]) == ("abc ENxy", False)


@given(
    text=st.text(alphabet="abE N D", max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=8),
)
def test_matcher_equals_cutting_the_whole_text(text, cuts):
    bounds = sorted({0, len(text), *[c for c in cuts if c <= len(text)]})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    stops = ["END", "N D"]
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    expected = text[: min(found)] if found else text
    assert run_matcher(pieces, stops) == (expected, bool(found))


def test_detokenizer_rebuilds_multibyte_text(nano):  # noqa: F811
    _, tokenizer = nano
    text = "Memory — é ü 日本 garden."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    detokenizer = IncrementalDetokenizer(tokenizer)
    deltas = [detokenizer.add(i) for i in ids]
    assert "".join(deltas) + detokenizer.flush() == text
    assert all("\ufffd" not in d for d in deltas)


def test_sampling_params_validate():
    with pytest.raises(InputError):
        SamplingParams(top_p=0)
    with pytest.raises(InputError):
        SamplingParams(max_new_tokens=0)
    assert SamplingParams(stop="x").stop == ("x",)


def test_greedy_top_k_and_repetition_penalty():
    sampler = BatchSampler(vocab_size=5)
    sampler.add(SamplingParams(temperature=0), prompt_ids=[])
    sampler.add(SamplingParams(temperature=5.0, top_k=1, seed=0), prompt_ids=[])
    sampler.add(SamplingParams(temperature=0, repetition_penalty=100.0), prompt_ids=[3])
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0, 0.5]]).repeat(3, 1)
    assert sampler.sample(logits) == [3, 3, 2]


def test_top_p_keeps_the_nucleus_and_seeds_reproduce():
    logits = torch.tensor([[5.0, 4.9, -5.0, -5.0]])
    draws = []
    for _ in range(2):
        sampler = BatchSampler(vocab_size=4)
        sampler.add(SamplingParams(top_p=0.5, seed=11), prompt_ids=[])
        draws.append([sampler.sample(logits)[0] for _ in range(30)])
    assert draws[0] == draws[1]
    assert set(draws[0]) <= {0, 1}


def test_frequency_and_presence_penalties_count_only_the_reply():
    logits = torch.tensor([[3.0, 2.5, 0.0]])
    sampler = BatchSampler(vocab_size=3)
    sampler.add(SamplingParams(temperature=0, presence_penalty=1.0), prompt_ids=[0])
    assert sampler.sample(logits) == [0]  # the prompt does not count
    assert sampler.sample(logits) == [1]  # 3.0 - 1.0 < 2.5
    frequent = BatchSampler(vocab_size=3)
    frequent.add(SamplingParams(temperature=0, frequency_penalty=0.2), prompt_ids=[])
    assert [frequent.sample(logits)[0] for _ in range(4)] == [0, 0, 0, 1]  # 3.0 - 3 * 0.2 < 2.5
