"""Forget requests end to end on a real nano model and a real ledger."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lethe.errors import ConflictError, InputError
from lethe.eval.suite import SuiteConfig
from lethe.forget import Selector, create_request, discard_request, publish_request, run_request


@pytest.fixture
def trained(trained_workspace):
    return trained_workspace


def entity_collection(ws) -> str:
    names = sorted(c.name for c, _ in ws.ledger.collections() if c.name.startswith("synth/entity/"))
    trained_ids = set(ws.ledger.collection_ids("synth/qa"))
    return next(n for n in names if set(ws.ledger.collection_ids(n)) & trained_ids)


FAST = {"steps": 4, "eval_every": 0, "forget_batch_size": 4, "retain_batch_size": 4}


def test_approximate_forget_publishes_taints_and_erases(trained):
    ws, _, versions = trained
    ledger = ws.ledger
    collection = entity_collection(ws)
    rid = create_request(ws, Selector(collection=collection), method="grad_diff", config=FAST, reason="test")
    trained_ids = [d for d, t in ledger.forget_request_documents(rid) if t]
    assert trained_ids
    answers = [d.data["answer"] for d in ledger.documents(trained_ids)]
    outcome = run_request(ws, rid)
    assert outcome.status == "succeeded"
    new = ledger.resolve_version("latest")
    assert new.name == outcome.version and new.kind == "unlearn" and new.parent_id == versions[-1].id
    # every earlier version that saw the documents is tainted; serving it needs the override
    assert set(outcome.tainted) >= {versions[-1].name}
    with pytest.raises(ConflictError):
        ledger.resolve_version(versions[-1].name)
    for doc in ledger.documents(trained_ids):
        assert doc.content is None and doc.tombstone["request_id"] == rid
    request = ledger.forget_request(rid)
    assert request.status == "succeeded" and request.result_version_id == new.id
    assert request.audit is not None and request.audit["samples_redacted"]
    stored_audit = json.dumps(request.audit)
    assert not any(answer in stored_audit for answer in answers)  # the ledger no longer quotes them
    stored = ledger.evaluations(request_id=rid)
    assert {e.version_id for e in stored} == {versions[-1].id, new.id}
    assert ledger.exposure_count(request.run_id) > 0  # the unlearning run's batches are on record


def test_a_failed_request_changes_nothing(trained, monkeypatch):
    ws, _, versions = trained
    ledger = ws.ledger
    collection = entity_collection(ws)
    # An invalid setting is refused before anything is recorded.
    with pytest.raises(InputError, match="lr"):
        create_request(ws, Selector(collection=collection), method="npo", config={**FAST, "lr": -1.0})
    assert ledger.forget_requests() == []
    # A failure inside the run (after the request and its run were recorded) leaves it failed.
    import lethe.unlearn.loop

    def broken(*args, **kwargs):
        raise InputError("the optimizer diverged (lr too high)")

    monkeypatch.setattr(lethe.unlearn.loop, "unlearn_version", broken)
    rid = create_request(ws, Selector(collection=collection), method="npo", config=FAST)
    with pytest.raises(InputError, match="lr"):
        run_request(ws, rid)
    request = ledger.forget_request(rid)
    assert request.status == "failed" and request.error
    assert ledger.resolve_version("latest").id == versions[-1].id
    assert all(d.content is not None for d in ledger.documents(ledger.collection_ids(collection)))
    assert ledger.run(request.run_id).status == "failed"


def test_exact_replay_yields_a_version_that_never_saw_the_documents(trained):
    ws, _, _ = trained
    ledger = ws.ledger
    collection = entity_collection(ws)
    rid = create_request(ws, Selector(collection=collection), method="exact")
    trained_ids = [d for d, t in ledger.forget_request_documents(rid) if t]
    outcome = run_request(ws, rid, evaluate=False)
    new = ledger.resolve_version("latest")
    assert outcome.status == "succeeded" and new.kind == "replay"
    for doc_id in trained_ids:
        assert new.id not in {v.id for v in ledger.versions_that_saw(doc_id)}
    # every replayed slice's version is published, so its checkpoint is the lineage's clean state now
    replayed = [v for v in ledger.list_versions() if v.run_id == new.run_id]
    assert all(v.status == "published" for v in replayed)
    assert ledger.checkpoint_for(new.lineage_id, new.slice_index).version_id == new.id


def test_selector_errors_and_untrained_documents(trained):
    ws, _, versions = trained
    with pytest.raises(InputError, match="matches no document"):
        create_request(ws, Selector(search="no such text anywhere"), method="npo")
    with pytest.raises(InputError, match="unknown method"):
        create_request(ws, Selector(collection="synth/holdout"), method="nope")
    rid = create_request(ws, Selector(collection="synth/holdout"), method="npo")
    assert all(not t for _, t in ws.ledger.forget_request_documents(rid))
    outcome = run_request(ws, rid)
    assert outcome.status == "succeeded" and outcome.version is None
    assert ws.ledger.resolve_version("latest").id == versions[-1].id  # nothing to unlearn: no new version
    assert all(d.content is None for d in ws.ledger.documents(ws.ledger.collection_ids("synth/holdout")))


def test_unpublished_candidate_then_publish_with_purge(trained):
    ws, _, versions = trained
    rid = create_request(ws, Selector(collection=entity_collection(ws)), method="grad_ascent", config=FAST)
    outcome = run_request(ws, rid, publish=False, evaluate=False)
    assert outcome.status == "evaluated"
    assert ws.ledger.resolve_version("latest").id == versions[-1].id
    assert all(
        d.content is not None for d in ws.ledger.documents([d for d, _ in ws.ledger.forget_request_documents(rid)])
    )
    published = publish_request(ws, rid, purge=True)
    assert published.purged and all(
        not Path(v.path).exists() for v in ws.ledger.list_versions() if v.name in published.purged
    )
    with pytest.raises(ConflictError, match="purged"):
        ws.ledger.resolve_version(published.purged[0], allow_tainted=True)


def test_a_failing_audit_discards_the_candidate(trained, monkeypatch):
    ws, _, versions = trained
    from lethe.forget import audit

    def broken(*args, **kwargs):
        raise RuntimeError("audit broke")

    monkeypatch.setattr(audit, "audit_forget_request", broken)
    rid = create_request(ws, Selector(collection=entity_collection(ws)), method="grad_ascent", config=FAST)
    with pytest.raises(RuntimeError, match="audit broke"):
        run_request(ws, rid)
    request = ws.ledger.forget_request(rid)
    assert request.status == "failed" and "audit broke" in request.error
    assert ws.ledger.resolve_version(request.result_version_id, allow_tainted=True).status == "discarded"
    assert ws.ledger.resolve_version("latest").id == versions[-1].id


def test_after_erasure_the_ledger_no_longer_says_what_the_request_searched_for(trained):
    ws, world, _ = trained
    ledger = ws.ledger
    collection = entity_collection(ws)
    name = world.entity(collection.removeprefix("synth/entity/")).name  # searched for: the person's name
    trained_docs = [
        d
        for d in ledger.collection_ids(collection)
        if d in set(ledger.documents_seen(ledger.resolve_version("latest").id))
    ]
    keys = [ledger.documents([d])[0].key for d in trained_docs[:2]]
    discarded = create_request(ws, Selector(docs=keys), method="grad_diff", config=FAST)
    run_request(ws, discarded, publish=False, evaluate=False)
    discard_request(ws, discarded)
    rid = create_request(ws, Selector(search=name, collection=collection), method="grad_diff", config=FAST)
    assert ledger.forget_request(rid).selector["search"] == name
    run_request(ws, rid, suite=SuiteConfig(max_items=2))

    digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    request = ledger.forget_request(rid)
    assert request.selector == {"search": digest, "collection": collection}  # verifiable, no longer readable
    assert request.audit["request"]["selector"]["search"] == digest
    events = [e for e in ledger.events(kind="forget") if e.subject_id == rid]
    assert "forget.selector_redacted" in {e.kind for e in events}
    assert name not in json.dumps([e.data for e in events]) and name not in json.dumps(request.audit)
    # the earlier, discarded request named two of the same documents by key: redacted as well
    earlier = ledger.forget_request(discarded).selector["docs"]
    assert earlier == ["sha256:" + hashlib.sha256(k.encode()).hexdigest() for k in keys]


def test_an_approximate_request_unlearns_at_the_precision_its_lineage_trained_in(isolated_workspace):
    from lethe.data.synth_ingest import ingest_synthetic_world
    from lethe.train.pipeline import train
    from lethe.workspace import Workspace

    ws = Workspace.from_env().init()
    ingest_synthetic_world(ws.ledger, entities=5, seed=3)
    train(ws, data="synth/qa", preset_or_path="nano", epochs=1, batch_size=16, seq_len=96, bf16=True, seed=0)
    chosen = {}
    for told in ({}, {"bf16": False}):
        rid = create_request(
            ws, Selector(collection=entity_collection(ws)), method="grad_diff", config={**FAST, **told}
        )
        run_request(ws, rid, publish=False, evaluate=False)
        candidate = ws.ledger.resolve_version(ws.ledger.forget_request(rid).result_version_id, allow_tainted=True)
        chosen[bool(told)] = candidate.meta["config"]["bf16"]
        discard_request(ws, rid)
    assert chosen == {False: True, True: False}  # inherited unless the request says otherwise
