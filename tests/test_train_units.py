"""Slice plans, batch plans, the LR schedule and examples: the pure parts of training."""

import itertools

import pytest

from lethe.data.chat_format import IGNORE_INDEX
from lethe.errors import InputError
from lethe.train.config import TrainConfig
from lethe.train.examples import build_examples
from lethe.train.schedule import Share, WarmupCosine, batch_plan, process_share
from lethe.train.slices import lineage_planner, plan_slices, slice_seed


def test_slice_plan_is_seeded_complete_and_ordered():
    docs = [(i, f"src:doc{i}") for i in range(100, 137)]
    plan = plan_slices(docs, 4, seed=7)
    assert plan == plan_slices(docs, 4, seed=7)
    assert plan != plan_slices(docs, 4, seed=8)
    assert sorted(d for s in plan for d in s) == [i for i, _ in docs]
    assert all(s == sorted(s) for s in plan) and all(plan)
    assert slice_seed(7, 0) != slice_seed(7, 1) and slice_seed(7, 1) == slice_seed(7, 1)
    with pytest.raises(InputError):
        plan_slices([(1, "a"), (2, "b")], 3, seed=0)
    with pytest.raises(InputError, match="unknown slice planner"):
        plan_slices(docs, 2, seed=0, planner="random")


def test_removing_documents_never_moves_another_one():
    docs = [(i, f"wiki:{i * 37}") for i in range(400)]
    plan = plan_slices(docs, 5, seed=3)
    removed = {i for i, _ in docs[::7]}
    smaller = plan_slices([d for d in docs if d[0] not in removed], 5, seed=3)
    assert smaller == [[d for d in s if d not in removed] for s in plan]
    # the slice follows the stable key, not the id: re-ingested under other ids, same slices
    renumbered = plan_slices([(i + 1000, key) for i, key in docs], 5, seed=3)
    assert renumbered == [[d + 1000 for d in s] for s in plan]
    # roughly even: a binomial spread around n/k
    assert all(50 <= len(s) <= 110 for s in plan)
    # every revision of a document (same key) lands in one slice
    with_revision = plan_slices([*docs, (999, docs[0][1])], 5, seed=3)
    assert next(s for s in with_revision if docs[0][0] in s) == next(s for s in with_revision if 999 in s)


def test_the_old_shuffle_planner_is_kept_for_lineages_trained_with_it():
    docs = [(i, f"k{i}") for i in range(100, 137)]
    plan = plan_slices(docs, 4, seed=7, planner="shuffle")
    assert [len(s) for s in plan] in ([9, 9, 10, 9], [9, 10, 9, 9], [10, 9, 9, 9], [9, 9, 9, 10])
    assert lineage_planner({}) == "shuffle" and lineage_planner({"slice_plan": "key-hash"}) == "key-hash"
    # what `shuffle` did wrong: removing one document moves others to another slice
    fewer = plan_slices(docs[1:], 4, seed=7, planner="shuffle")
    assert fewer != [[d for d in s if d != docs[0][0]] for s in plan]


def test_batch_plan_covers_every_example_each_epoch_and_feeds_every_process():
    plan = batch_plan(10, 4, epochs=3, seed=1)
    assert len(plan) == 9
    for epoch in range(3):
        assert sorted(i for batch in plan[epoch * 3 : (epoch + 1) * 3] for i in batch) == list(range(10))
    assert plan[:3] != plan[3:6]  # reshuffled per epoch
    assert plan == batch_plan(10, 4, epochs=3, seed=1)
    # the plan is the data's and the seed's, never the world's: a last batch of one stays one,
    # and a process it leaves without rows computes a stand-in row (training weighs it zero)
    assert [len(b) for b in batch_plan(9, 4, epochs=1, seed=1)] == [4, 4, 1]
    [last] = batch_plan(9, 4, epochs=1, seed=1)[-1:]
    assert process_share(last, 0, 2) == Share(last) and process_share(last, 1, 2) == Share(last, stand_in=True)
    full = batch_plan(9, 4, epochs=1, seed=1)[0]
    assert sorted(process_share(full, 0, 2).rows + process_share(full, 1, 2).rows) == sorted(full)


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
