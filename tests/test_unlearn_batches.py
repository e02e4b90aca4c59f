"""Collation of unlearning examples, the seeded batch order, and the config's checks."""

from __future__ import annotations

import pytest
import torch

from lethe.errors import InputError
from lethe.train.schedule import batch_stream
from lethe.unlearn.batches import check_examples, collate, with_answer
from lethe.unlearn.config import UnlearnConfig

END = 6  # a special token (<|end|> in lethe tokenizers)


def example(doc, ids, labels, **extra):
    return {"document_id": doc, "input_ids": ids, "labels": labels, **extra}


def test_collate_pads_right_and_masks_padding():
    batch = collate([example(7, [1, 2, 3], [-100, 2, 3]), example(9, [1, 4], [-100, 4])], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [1, 4, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[-100, 2, 3], [-100, 4, -100]]
    assert batch["document_ids"] == [7, 9]
    assert "token_weights" not in batch


def test_collate_pads_token_weights_with_zeros():
    batch = collate(
        [
            example(1, [1, 2, 3], [-100, 2, 3], token_weights=torch.tensor([0.0, 0.5, 2.0])),
            example(2, [1, 4], [-100, 4], token_weights=[0.0, 1.0]),
        ],
        pad_token_id=0,
    )
    assert batch["token_weights"].tolist() == [[0.0, 0.5, 2.0], [0.0, 1.0, 0.0]]


def test_with_answer_keeps_the_prompt_and_the_closing_token():
    original = example(3, [10, 11, 12, 20, 21, END], [-100, -100, -100, 20, 21, END], token_weights=[1] * 6)
    swapped = with_answer(original, [30, 31, 32], special_ids={END})
    assert swapped["input_ids"] == [10, 11, 12, 30, 31, 32, END]
    assert swapped["labels"] == [-100, -100, -100, 30, 31, 32, END]
    assert swapped["document_id"] == 3 and "token_weights" not in swapped


def test_check_examples_names_the_bad_example():
    good = example(1, [1, 2], [-100, 2])
    with pytest.raises(InputError, match=r"forget\[1\].*document_id|document_id"):
        check_examples([good, {"input_ids": [1], "labels": [1]}], "forget")
    with pytest.raises(InputError, match="differ in length"):
        check_examples([example(1, [1, 2], [2])], "retain")
    with pytest.raises(InputError, match="aligned"):
        check_examples([example(1, [1, 2], [-100, 2], token_weights=[1.0])], "forget")
    check_examples([good], "forget")


def test_batch_stream_is_seeded_and_reshuffles_each_epoch():
    def draws(seed, n=6):
        stream = batch_stream(5, 2, seed)
        return [next(stream) for _ in range(n)]

    first = draws(0)
    assert first == draws(0) and first != draws(1)
    assert sorted(i for batch in first[:3] for i in batch) == [0, 1, 2, 3, 4]
    assert [len(batch) for batch in first] == [2, 2, 1, 2, 2, 1]
    assert first[:3] != first[3:]


def test_config_checks_and_records_itself():
    with pytest.raises(InputError, match="beta"):
        UnlearnConfig(beta=0)
    with pytest.raises(InputError, match="eval_every"):
        UnlearnConfig(eval_every=0, forget_loss_target=5.0)
    with pytest.raises(InputError, match="idk_source"):
        UnlearnConfig(idk_source="both")
    config = UnlearnConfig(beta=0.2, lora=True)
    recorded = config.to_dict()
    assert recorded["beta"] == 0.2 and recorded["lora"] is True
    restored = UnlearnConfig.from_dict(recorded)
    assert restored == config
    with pytest.raises(
        InputError, match=r"unknown unlearning setting 'unknown_key'.*valid settings: alpha, beta"
    ) as error:
        UnlearnConfig.from_dict({**recorded, "unknown_key": 1})
    assert error.value.where.field == "unknown_key"
    assert UnlearnConfig.from_dict({"retokenize": True}, also=("retokenize",)) == UnlearnConfig()
    import json

    json.dumps(recorded)


def test_every_config_field_is_documented():
    import ast
    import inspect

    import lethe.unlearn.config as module

    tree = ast.parse(inspect.getsource(module.UnlearnConfig))
    body = tree.body[0].body
    for index, node in enumerate(body):
        if isinstance(node, ast.AnnAssign):
            following = body[index + 1] if index + 1 < len(body) else None
            assert isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant), (
                f"field {node.target.id} has no docstring"
            )
