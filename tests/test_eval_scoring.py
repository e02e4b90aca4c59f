"""Model-based scoring on a tiny local Llama and a tokenizer trained in the test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lethe.errors import InputError
from lethe.eval.memorisation import exact_memorisation, extraction_strength
from lethe.eval.scoring import (
    answer_extraction_strength,
    encode_pairs,
    greedy_generate,
    greedy_generate_ids,
    score_token_ids,
    teacher_forced_accuracy,
    token_logprobs,
)

torch.set_num_threads(1)

TEXT = (
    "author writes novels about the sea and old ships; her father was a baker, her "
    "mother a sailor. She was born in Lima in 1961 and won the Silver Quill award."
)
WORDS = TEXT.split()

PROMPTS = ["Who is the author?", "Where was she born?", "What did she win?"]
ANSWERS = ["She writes novels about the sea.", "In Lima, in 1961.", "The Silver Quill award."]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    rng = np.random.default_rng(0)
    corpus = [" ".join(rng.choice(WORDS, size=12)) for _ in range(300)] + PROMPTS + ANSWERS
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<pad>", "<bos>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", tok.token_to_id("<bos>"))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")


@pytest.fixture(scope="module")
def model(tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


def _manual(model: LlamaForCausalLM, prompt: list[int], answer: list[int]) -> torch.Tensor:
    """Log-softmax rows predicting each answer token, from one unpadded forward pass."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + answer])).logits[0].float()
    return torch.log_softmax(logits[len(prompt) - 1 : -1], -1)


def test_prompt_and_answer_are_tokenised_apart(tokenizer: PreTrainedTokenizerFast) -> None:
    prompt_ids, answer_ids = encode_pairs(tokenizer, PROMPTS, ANSWERS)
    assert all(ids[0] == tokenizer.bos_token_id for ids in prompt_ids)
    assert all(tokenizer.bos_token_id not in ids for ids in answer_ids)
    assert tokenizer.decode(answer_ids[1]) == ANSWERS[1]
    _, with_eos = encode_pairs(tokenizer, PROMPTS, ANSWERS, add_eos=True)
    assert all(ids[-1] == tokenizer.eos_token_id for ids in with_eos)
    with pytest.raises(InputError):
        encode_pairs(tokenizer, PROMPTS, ANSWERS[:2])


def test_token_logprobs_match_an_unbatched_forward_pass(model, tokenizer) -> None:
    scores = token_logprobs(model, tokenizer, PROMPTS, ANSWERS, batch_size=2)
    prompt_ids, answer_ids = encode_pairs(tokenizer, PROMPTS, ANSWERS)
    assert len(scores) == 3
    for s, prompt, answer in zip(scores, prompt_ids, answer_ids):
        rows = _manual(model, prompt, answer)
        assert s.token_ids.tolist() == answer
        expected = rows.gather(-1, torch.tensor(answer)[:, None])[:, 0].numpy()
        np.testing.assert_allclose(s.logprobs, expected, atol=1e-5)
        assert s.greedy_ids.tolist() == rows.argmax(-1).tolist()
        probs = rows.exp().double().numpy()
        logs = rows.double().numpy()
        mean = (probs * logs).sum(-1)
        np.testing.assert_allclose(s.vocab_mean, mean, atol=1e-5)
        np.testing.assert_allclose(s.vocab_std, np.sqrt((probs * (logs - mean[:, None]) ** 2).sum(-1)), atol=1e-5)


def test_loss_equals_huggingface_loss_with_the_prompt_masked(model, tokenizer) -> None:
    (s,) = token_logprobs(model, tokenizer, PROMPTS[:1], ANSWERS[:1])
    prompt_ids, answer_ids = encode_pairs(tokenizer, PROMPTS[:1], ANSWERS[:1])
    input_ids = torch.tensor([prompt_ids[0] + answer_ids[0]])
    labels = input_ids.clone()
    labels[0, : len(prompt_ids[0])] = -100
    with torch.no_grad():
        hf_loss = model(input_ids=input_ids, labels=labels).loss.item()
    assert s.loss == pytest.approx(hf_loss, abs=1e-5)


def test_batch_size_does_not_change_scores(model, tokenizer) -> None:
    one = token_logprobs(model, tokenizer, PROMPTS, ANSWERS, batch_size=1)
    three = token_logprobs(model, tokenizer, PROMPTS, ANSWERS, batch_size=3)
    for a, b in zip(one, three):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5)


def test_greedy_continuation_is_fully_memorised(model, tokenizer) -> None:
    prompt_ids, _ = encode_pairs(tokenizer, PROMPTS, ANSWERS)
    generated = greedy_generate_ids(model, prompt_ids, 6, tokenizer.pad_token_id, None, batch_size=3)
    assert [len(ids) for ids in generated] == [6, 6, 6]
    scores = score_token_ids(model, prompt_ids, generated, pad_id=tokenizer.pad_token_id)
    for s in scores:
        assert exact_memorisation(s.greedy_ids, s.token_ids) == 1.0
        assert extraction_strength(s.greedy_ids, s.token_ids) == 1.0


def test_batched_left_padded_generation_equals_one_by_one(model, tokenizer) -> None:
    batched = greedy_generate(model, tokenizer, PROMPTS, max_new_tokens=5, batch_size=3)
    single = [greedy_generate(model, tokenizer, [p], max_new_tokens=5)[0] for p in PROMPTS]
    assert batched == single
    assert all(isinstance(text, str) for text in batched)


def test_generation_stops_at_eos(model, tokenizer) -> None:
    prompt_ids, _ = encode_pairs(tokenizer, PROMPTS[:1], ANSWERS[:1])
    first = greedy_generate_ids(model, prompt_ids, 3, tokenizer.pad_token_id, None)[0]
    # declare the first generated token to be EOS: generation then yields nothing
    assert greedy_generate_ids(model, prompt_ids, 3, tokenizer.pad_token_id, first[0])[0] == []


def test_accuracy_helpers_agree_with_scores(model, tokenizer) -> None:
    scores = token_logprobs(model, tokenizer, PROMPTS, ANSWERS)
    accuracy = teacher_forced_accuracy(model, tokenizer, PROMPTS, ANSWERS)
    strength = answer_extraction_strength(model, tokenizer, PROMPTS, ANSWERS)
    assert accuracy == [exact_memorisation(s.greedy_ids, s.token_ids) for s in scores]
    assert strength == [extraction_strength(s.greedy_ids, s.token_ids) for s in scores]
    assert all(0.0 <= a <= 1.0 for a in accuracy + strength)


def test_training_mode_is_restored_and_empty_inputs_rejected(model, tokenizer) -> None:
    model.train()
    try:
        token_logprobs(model, tokenizer, PROMPTS[:1], ANSWERS[:1])
        assert model.training
    finally:
        model.eval()
    with pytest.raises(InputError):
        token_logprobs(model, tokenizer, ["Who?"], [""])
    with pytest.raises(InputError):
        score_token_ids(model, [[]], [[5]])


def test_bf16_scores_stay_close_to_float32_and_leave_the_weights_float32(model, tokenizer) -> None:
    prompt_ids, answer_ids = encode_pairs(tokenizer, PROMPTS, ANSWERS)
    exact = score_token_ids(model, prompt_ids, answer_ids, batch_size=2, pad_id=tokenizer.pad_token_id)
    fast = score_token_ids(model, prompt_ids, answer_ids, batch_size=2, pad_id=tokenizer.pad_token_id, bf16=True)
    for a, b in zip(exact, fast):
        assert a.token_ids.tolist() == b.token_ids.tolist()
        np.testing.assert_allclose(b.logprobs, a.logprobs, atol=0.05)
        assert not np.array_equal(a.logprobs, b.logprobs)  # it did run in bf16
    assert all(p.dtype == torch.float32 for p in model.parameters())
    generated = greedy_generate_ids(model, prompt_ids, 4, tokenizer.pad_token_id, None, batch_size=3, bf16=True)
    assert [len(ids) for ids in generated] == [4, 4, 4]
