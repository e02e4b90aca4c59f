"""Exact replay: retraining from the checkpoint before a document equals training without it."""

from pathlib import Path

import pytest
import torch

from lethe.train import replay, train
from train_helpers import FAST, make_workspace, weights

torch.set_num_threads(1)


@pytest.fixture
def ws(tmp_path):
    torch.use_deterministic_algorithms(True)
    yield make_workspace(tmp_path, n_qa=18, n_text=3)
    torch.use_deterministic_algorithms(False)


def _identical(a, b) -> bool:
    wa, wb = weights(Path(a.path)), weights(Path(b.path))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_replay_equals_fresh_training_without_the_documents(ws):
    original = train(ws, data=["qa", "text"], preset_or_path="nano", slices=3, config=FAST, seed=5, lineage="orig")
    ledger = ws.ledger
    plan = [ids for _, ids in ledger.slices(original[0].lineage_id)]
    forgotten = plan[1][:2]
    replayed = replay(ws, "orig", forgotten)
    assert [v.slice_index for v in replayed] == [1, 2] and all(v.kind == "replay" for v in replayed)
    assert replayed[0].parent_id == original[0].id  # restored from the checkpoint after slice 0
    assert ledger.aliases()["latest"] == replayed[-1].id

    fresh = train(
        ws,
        data=["qa", "text"],
        preset_or_path="nano",
        config=FAST,
        seed=5,
        lineage="fresh",
        slice_plan=[plan[0], [d for d in plan[1] if d not in forgotten], plan[2]],
    )
    assert _identical(replayed[0], fresh[1]) and _identical(replayed[1], fresh[2])
    assert replayed[-1].weights_sha256 == fresh[-1].weights_sha256
    assert not _identical(replayed[-1], original[-1])

    # The ledger knows the replayed versions never saw the forgotten documents.
    for doc in forgotten:
        saw = {v.id for v in ledger.versions_that_saw(doc)}
        assert {original[1].id, original[2].id} <= saw and not saw & {v.id for v in replayed}
    seen = set(ledger.documents_seen(replayed[-1].id))
    assert seen == set(plan[0] + plan[1] + plan[2]) - set(forgotten)
    assert set(ledger.coverage(replayed[0].id)) == set(ledger.coverage(original[0].id)) | {replayed[0].run_id}


def test_replay_of_an_erased_first_slice_document_restarts_from_the_base_model(ws):
    original = train(ws, data="qa", preset_or_path="nano", slices=2, config=FAST, seed=1, lineage="orig")
    plan = [ids for _, ids in ws.ledger.slices(original[0].lineage_id)]
    gone = plan[0][0]
    ws.ledger.erase([gone], reason="request")
    replayed = replay(ws, "orig", [], publish=False)  # erased documents are always left out
    assert [v.slice_index for v in replayed] == [0, 1] and replayed[0].parent_id is None
    assert all(v.status == "candidate" for v in replayed)
    assert ws.ledger.aliases()["latest"] == original[-1].id
    fresh = train(ws, data="qa", preset_or_path="nano", config=FAST, seed=1, lineage="fresh", slice_plan=plan)
    assert _identical(replayed[-1], fresh[-1])  # `fresh` skipped the erased document as well
    assert gone not in ws.ledger.documents_seen(replayed[-1].id)
