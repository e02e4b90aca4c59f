"""The engine: streaming, batching equals one-at-a-time, stop, cancel, stats, context."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import torch

from lethe.chat import CancelToken, ChatEngine, EngineConfig, SamplingParams, collect
from lethe.errors import InputError
from test_chat_fixtures import engine, nano  # noqa: F401  (fixtures)

GREEDY = SamplingParams(temperature=0, max_new_tokens=24, ignore_eos=True)


def prompt_ids(engine, text="Tell me about the river.", **kw):  # noqa: F811
    return engine.prompt([{"role": "user", "content": text}], **kw).ids


def test_stream_yields_deltas_then_one_final_event(engine):  # noqa: F811
    events = list(engine.stream(prompt_ids(engine), GREEDY))
    assert [e.done for e in events].count(True) == 1 and events[-1].done
    final = events[-1]
    assert final.finish_reason == "length"
    stats = final.stats
    assert stats.completion_tokens == 24 and stats.prompt_tokens == len(prompt_ids(engine))
    assert 0 < stats.time_to_first_token_s <= stats.total_s
    assert stats.tokens_per_second > 0


def test_greedy_batched_replies_equal_one_at_a_time(engine):  # noqa: F811
    prompts = [prompt_ids(engine, "river " * (i + 1)) for i in range(6)]
    alone = [engine.complete(p, GREEDY).text for p in prompts]
    together: list[str | None] = [None] * len(prompts)

    def run(i):
        time.sleep(0.003 * i)  # join the batch at different steps
        together[i] = engine.complete(prompts[i], GREEDY).text

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert together == alone


def test_seed_reproduces_even_when_batched_with_others(engine):  # noqa: F811
    ids = prompt_ids(engine)
    seeded = SamplingParams(temperature=1.0, top_k=50, seed=123, max_new_tokens=20, ignore_eos=True)
    expected = engine.complete(ids, seeded).text
    others = [engine.stream(prompt_ids(engine, f"other {i}"), SamplingParams(max_new_tokens=40)) for i in range(3)]
    assert engine.complete(ids, seeded).text == expected
    for stream in others:
        collect(stream)


def test_stop_string_cuts_the_reply(engine):  # noqa: F811
    ids = prompt_ids(engine)
    full = engine.complete(ids, GREEDY).text
    stop = full[4:7]
    reply = engine.complete(ids, SamplingParams(temperature=0, max_new_tokens=24, stop=(stop,)))
    assert reply.text == full[: full.index(stop)]
    assert reply.finish_reason == "stop"


def test_end_of_turn_token_stops_the_reply(nano):  # noqa: F811
    model, tokenizer = nano
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, return_dict=True
    )["input_ids"]
    with torch.inference_mode():
        greedy_id = int(model(torch.tensor([ids])).logits[0, -1].argmax())
    # Make the model's greedy first token a stop token: the reply is empty and "stop".
    stopping = ChatEngine(model, tokenizer, stop_token_ids={greedy_id})
    reply = collect(stopping.stream(ids, SamplingParams(temperature=0, max_new_tokens=10)))
    stopping.close()
    assert reply.text == "" and reply.finish_reason == "stop"
    assert reply.stats.completion_tokens == 1


def test_cancel_stops_a_running_reply(engine):  # noqa: F811
    cancel = CancelToken()
    stream = engine.stream(prompt_ids(engine), SamplingParams(max_new_tokens=200, ignore_eos=True), cancel)
    next(stream)
    cancel.cancel()
    final = next(e for e in stream if e.done)
    assert final.finish_reason == "cancelled"
    assert final.stats.completion_tokens < 200


def test_closing_the_stream_cancels(engine):  # noqa: F811
    stream = engine.stream(prompt_ids(engine), SamplingParams(max_new_tokens=200, ignore_eos=True))
    next(stream)
    stream.close()
    deadline = time.monotonic() + 5
    while engine.scheduler.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.scheduler.active == 0


def test_async_stream_and_task_cancellation(engine):  # noqa: F811
    ids = prompt_ids(engine)

    async def main():
        texts = [e.text async for e in engine.astream(ids, GREEDY)]
        assert "".join(texts) == engine.complete(ids, GREEDY).text

        async def endless():
            async for _ in engine.astream(ids, SamplingParams(max_new_tokens=250, ignore_eos=True)):
                pass

        task = asyncio.create_task(endless())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    deadline = time.monotonic() + 5
    while engine.scheduler.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.scheduler.active == 0


def test_reply_is_capped_by_the_context_window(nano):  # noqa: F811
    model, tokenizer = nano
    small = ChatEngine(model, tokenizer, EngineConfig(context_length=40))
    ids = prompt_ids(small, "hi")
    reply = collect(small.stream(ids, SamplingParams(max_new_tokens=100, ignore_eos=True)))
    small.close()
    assert reply.finish_reason == "length"
    assert len(ids) + reply.stats.completion_tokens == 40


def test_long_history_drops_old_turns_and_keeps_system(nano):  # noqa: F811
    model, tokenizer = nano
    small = ChatEngine(model, tokenizer, EngineConfig(context_length=80))
    messages = [{"role": "system", "content": "Be brief."}]
    for i in range(20):
        messages += [
            {"role": "user", "content": f"question {i} about the river"},
            {"role": "assistant", "content": f"answer {i} about the garden"},
        ]
    messages.append({"role": "user", "content": "and now?"})
    prompt = small.prompt(messages, SamplingParams(max_new_tokens=16))
    assert prompt.messages[0]["content"] == "Be brief."
    assert prompt.messages[-1]["content"] == "and now?"
    assert prompt.dropped > 0 and len(prompt.ids) <= 80 - 16
    reply = collect(small.chat(messages, SamplingParams(max_new_tokens=16)))
    small.close()
    assert reply.stats.prompt_tokens == len(prompt.ids)


def test_bad_prompts_are_input_errors(engine):  # noqa: F811
    with pytest.raises(InputError):
        engine.stream([], GREEDY)
    with pytest.raises(InputError):
        engine.stream([10**6], GREEDY)
    with pytest.raises(InputError):
        engine.prompt([{"role": "user", "content": "x" * 1_000_000}])


def test_many_concurrent_replies_beyond_the_batch_size(nano):  # noqa: F811
    model, tokenizer = nano
    narrow = ChatEngine(model, tokenizer, EngineConfig(max_batch_size=2))
    streams = [narrow.stream(prompt_ids(narrow, f"q{i}"), SamplingParams(max_new_tokens=5)) for i in range(7)]
    replies = [collect(s) for s in streams]
    narrow.close()
    assert all(r.stats.completion_tokens >= 1 for r in replies)


def test_bf16_serving_is_for_large_models_and_converts_the_weights(nano, monkeypatch):  # noqa: F811
    from lethe.chat import engine as engine_module
    from test_chat_fixtures import make_model_and_tokenizer

    model, _ = nano
    assert not engine_module.serve_bf16(model, EngineConfig())  # ~1M parameters: float32
    assert not engine_module.serve_bf16(model, EngineConfig(bf16=False))
    monkeypatch.setattr(engine_module, "BF16_MIN_PARAMETERS", 1)
    assert engine_module.serve_bf16(model, EngineConfig()) == engine_module.native_bf16(torch.device("cpu"))
    own, tokenizer = make_model_and_tokenizer()
    served = ChatEngine(own, tokenizer, EngineConfig(bf16=True, max_batch_size=4))
    try:
        assert {p.dtype for p in own.parameters()} == {torch.bfloat16}
        params = SamplingParams(temperature=0.0, max_new_tokens=6, ignore_eos=True)
        streams = [served.stream(prompt_ids(served, f"river {i}"), params) for i in range(3)]
        replies = [collect(s) for s in streams]
    finally:
        served.close()
    assert [r.stats.completion_tokens for r in replies] == [6, 6, 6]
    assert all(r.finish_reason == "length" for r in replies)


def test_matrix_vector_decoding_computes_the_same_linear_layers():
    from lethe.chat.engine import matrix_vector_decoding

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.Linear(8, 4, bias=False)).to(torch.bfloat16)
    one, many = torch.randn(1, 1, 16, dtype=torch.bfloat16), torch.randn(3, 5, 16, dtype=torch.bfloat16)
    expected = [model(one), model(many)]
    matrix_vector_decoding(model)
    assert torch.allclose(model(one), expected[0], atol=2e-2) and model(one).shape == (1, 1, 4)
    assert torch.equal(model(many), expected[1])  # several rows: the usual matmul
