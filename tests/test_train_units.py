"""Slice plans, batch plans, the LR schedule and examples: the pure parts of training."""

import itertools

import pytest

from lethe.data.chat_format import IGNORE_INDEX
from lethe.errors import InputError
from lethe.train.config import TrainConfig
from lethe.train.examples import build_examples
from lethe.train.schedule import WarmupCosine, batch_plan
from lethe.train.slices import plan_slices, slice_seed


def test_slice_plan_is_seeded_complete_and_ordered():
    ids = list(range(100, 137))
    plan = plan_slices(ids, 4, seed=7)
    assert plan == plan_slices(ids, 4, seed=7)
    assert plan != plan_slices(ids, 4, seed=8)
    assert sorted(d for s in plan for d in s) == ids
    assert [len(s) for s in plan] in ([9, 9, 10, 9], [9, 10, 9, 9], [10, 9, 9, 9], [9, 9, 9, 10])
    assert all(s == sorted(s) for s in plan)
    assert slice_seed(7, 0) != slice_seed(7, 1) and slice_seed(7, 1) == slice_seed(7, 1)
    with pytest.raises(InputError):
        plan_slices([1, 2], 3, seed=0)


def test_batch_plan_covers_every_example_each_epoch_and_feeds_every_process():
    plan = batch_plan(10, 4, epochs=3, seed=1)
    assert len(plan) == 9
    for epoch in range(3):
        assert sorted(i for batch in plan[epoch * 3 : (epoch + 1) * 3] for i in batch) == list(range(10))
    assert plan[:3] != plan[3:6]  # reshuffled per epoch
    assert plan == batch_plan(10, 4, epochs=3, seed=1)
    two = batch_plan(9, 4, epochs=1, seed=1, world_size=2)  # a last batch of 1 joins the one before
    assert [len(b) for b in two] == [4, 5]


def test_warmup_cosine():
    schedule = WarmupCosine.for_slice(total_steps=20, warmup_ratio=0.1, min_ratio=0.1)
    values = [schedule(s) for s in range(20)]
    assert values[0] == pytest.approx(0.5) and values[1] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(values[1:]))


def test_config_validates_and_round_trips():
    config = TrainConfig(epochs=3, lr=2e-3)
    assert TrainConfig.from_dict({**config.to_dict(), "slice_seed": 5}) == config
    assert config.replace(lr=None, epochs=4).epochs == 4 and config.replace(lr=None).lr == 2e-3
    with pytest.raises(InputError, match="task"):
        TrainConfig(task="rlhf")


class Doc:
    def __init__(self, id, kind, content, data=None, forgotten=False):
        self.id, self.kind, self.content, self.data = id, kind, content, data
        self.forgotten_at = "yesterday" if forgotten else None


@pytest.fixture(scope="module")
def tokenizer():
    from lethe.data.tokenizer import train_tokenizer

    return train_tokenizer(["Where was Osric born? Osric was born in Varnholt. " * 20] * 4, vocab_size=300)


def test_examples_keep_document_ids_and_mask_prompts(tokenizer):
    long_text = "Osric was born in Varnholt. " * 30
    docs = [
        Doc(1, "text", long_text),
        Doc(2, "qa", "Q", {"question": "Where was Osric born?", "answer": "In Varnholt."}),
        Doc(3, "qa", "Q", {"question": "Where?", "answer": "Esk."}, forgotten=True),
        Doc(
            4,
            "chat",
            "C",
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello Osric."}]},
        ),
    ]
    examples = build_examples(docs, tokenizer, TrainConfig(seq_len=32))
    ids = [e.document_id for e in examples]
    assert ids.count(1) > 1 and 3 not in ids and ids[-2:] == [2, 4]  # windows keep their id; erased skipped
    qa = examples[-2]
    answer = tokenizer.decode([t for t, l in zip(qa.input_ids, qa.labels) if l != IGNORE_INDEX])
    assert answer.startswith("In Varnholt.") and "Where" not in answer
    with pytest.raises(InputError, match="sft"):
        build_examples(docs[:1], tokenizer, TrainConfig(task="sft"))
    pretrain = build_examples(docs[1:2], tokenizer, TrainConfig(task="pretrain"))
    assert all(l != IGNORE_INDEX for l in pretrain[0].labels)
