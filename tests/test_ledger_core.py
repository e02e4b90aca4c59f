"""The ledger API on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from lethe.errors import ConflictError, InputError, NotFoundError
from lethe.ledger import DocumentRecord, Ledger, migrate
from lethe.ledger.integrity import check


def docs(*pairs, kind="text"):
    return [DocumentRecord(external_id=i, kind=kind, content=c, title=f"T{i}") for i, c in pairs]


def test_migrations_are_recorded_and_match_the_schema(ledger):
    assert migrate.current_revision(ledger.engine) == migrate.head_revision()
    assert migrate.schema_drift(ledger.engine) == []
    tables = set(inspect(ledger.engine).get_table_names())
    for table in (
        "sources",
        "documents",
        "collections",
        "slices",
        "runs",
        "exposures",
        "model_versions",
        "checkpoints",
        "forget_requests",
        "evaluations",
        "token_impacts",
        "conversations",
        "messages",
        "events",
        "jobs",
        "alembic_version",
    ):
        assert table in tables
    Ledger.open(str(ledger.engine.url.render_as_string(hide_password=False)))  # re-open: no-op upgrade


def test_ingest_reports_added_updated_unchanged_and_keeps_revisions(ledger):
    first = ledger.add_documents(docs(("a", "alpha"), ("b", "beta")), source="s", collection="c")
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    again = ledger.add_documents(docs(("a", "alpha"), ("b", "beta v2")), source="s", collection="c")
    assert (again.added, again.updated, again.unchanged) == (0, 1, 1)
    revisions = ledger.revisions(ledger.document("s:b").id)
    assert [r.revision for r in revisions] == [1, 2]
    assert revisions[1].parent_id == revisions[0].id
    assert [r.is_current for r in revisions] == [False, True]
    assert len(ledger.collection_ids("c")) == 3  # both revisions of b are members
    assert ledger.document("s:b").content == "beta v2"


def test_two_revisions_in_one_batch_are_linked(ledger):
    report = ledger.add_documents(docs(("p", "one"), ("p", "two"), ("p", "three")), source="s")
    assert report.added == 1 and report.updated == 2
    chain = ledger.revisions(ledger.document("s:p").id)
    assert [r.content for r in chain] == ["one", "two", "three"]
    assert chain[2].parent_id == chain[1].id and chain[1].parent_id == chain[0].id


def test_a_failed_ingest_leaves_nothing_behind(ledger):
    def records():
        yield from docs(("x", "fine"), ("y", "also fine"))
        raise InputError("broken row")

    with pytest.raises(InputError):
        ledger.add_documents(records(), source="s", collection="c")
    assert ledger.count_documents() == {}
    assert ledger.sources() == []
    with pytest.raises(NotFoundError):
        ledger.collection_ids("c")


def test_search_is_case_insensitive_and_escapes_wildcards(ledger):
    ledger.add_documents(docs(("1", "The Zorblat river"), ("2", "100% pure"), ("3", "nothing")), source="s")
    assert [d.external_id for d in ledger.search("zorBLAT")] == ["1"]
    assert [d.external_id for d in ledger.search("0%")] == ["2"]
    assert ledger.search("_") == []
    with pytest.raises(InputError):
        ledger.search("  ")


def test_erase_leaves_a_tombstone_and_an_event(ledger):
    ledger.add_documents(docs(("1", "secret text")), source="s")
    doc = ledger.document("s:1")
    assert ledger.erase([doc.id], reason="GDPR", request_id=None) == 1
    erased = ledger.document(doc.id)
    assert erased.content is None and erased.forgotten_at is not None
    assert erased.tombstone["content_hash"] == doc.content_hash and erased.tombstone["reason"] == "GDPR"
    assert ledger.search("secret") == []
    assert ledger.events(kind="documents.erased")[0].data["count"] == 1
    assert check(ledger, verify_weights=False) == []


def _trained_versions(ledger, tmp_path):
    ledger.add_documents(docs(*[(str(i), f"doc {i}") for i in range(6)]), source="s", collection="all")
    ids = ledger.collection_ids("all")
    lineage = ledger.create_lineage("main", "nano")
    run = ledger.start_run("train", lineage_id=lineage.id, seed=1)
    # slice 0 = docs 0-2 at steps 0-1, slice 1 = docs 3-5 at steps 2-3
    ledger.record_exposures(run, [(0, ids[0]), (0, ids[1]), (1, ids[2]), (2, ids[3]), (2, ids[4]), (3, ids[5])])
    v1 = ledger.register_version(
        kind="pretrain",
        path=str(tmp_path),
        weights_sha256="0" * 64,
        lineage_id=lineage.id,
        run_id=run,
        run_max_step=1,
        slice_index=0,
    )
    v2 = ledger.register_version(
        kind="pretrain",
        path=str(tmp_path),
        weights_sha256="1" * 64,
        lineage_id=lineage.id,
        parent_id=v1.id,
        run_id=run,
        run_max_step=3,
        slice_index=1,
    )
    ledger.finish_run(run)
    return ids, lineage, run, v1, v2


def test_provenance_answers_which_versions_saw_a_document(ledger, tmp_path):
    ids, lineage, _, v1, v2 = _trained_versions(ledger, tmp_path)
    assert [v.name for v in ledger.versions_that_saw(ids[0])] == [v1.name, v2.name]
    assert [v.name for v in ledger.versions_that_saw(ids[4])] == [v2.name]
    assert ledger.documents_seen(v1.id) == sorted(ids[:3])
    assert ledger.documents_seen(v2.id, candidates=[ids[0], ids[5]]) == sorted([ids[0], ids[5]])
    coll = next(c for c, _ in ledger.collections() if c.name == "all")
    assert ledger.documents_seen(v1.id, collection_id=coll.id) == sorted(ids[:3])
    assert ledger.resolve_version("latest").id == v2.id
    # a replayed version restores v1's coverage and adds a clean run: it never saw doc 4
    replay = ledger.start_run("replay", lineage_id=lineage.id, parent_version_id=v1.id)
    ledger.record_exposures(replay, [(0, ids[3]), (0, ids[5])])
    v3 = ledger.register_version(
        kind="replay",
        path=str(tmp_path),
        weights_sha256="2" * 64,
        lineage_id=lineage.id,
        parent_id=v2.id,
        coverage=ledger.coverage(v1.id),
        run_id=replay,
    )
    assert v3.id not in [v.id for v in ledger.versions_that_saw(ids[4])]
    assert v3.id in [v.id for v in ledger.versions_that_saw(ids[5])]


def test_exposures_are_recorded_once(ledger, tmp_path):
    ids, _, run, *_ = _trained_versions(ledger, tmp_path)
    assert ledger.exposure_count(run) == 6
    if ledger.dialect == "sqlite":  # duplicate rows are ignored, not doubled
        ledger.record_exposures(run, [(0, ids[0])])
        assert ledger.exposure_count(run) == 6


def test_taint_blocks_serving_without_override(ledger, tmp_path):
    ids, lineage, run, v1, v2 = _trained_versions(ledger, tmp_path)
    ck = ledger.register_checkpoint(
        lineage_id=lineage.id, slice_index=0, path=str(tmp_path), weights_sha256="0" * 64, version_id=v1.id, run_id=run
    )
    tainted = ledger.taint([ids[4]], reason="forget request 1")
    assert [v.name for v in tainted] == [v2.name]
    with pytest.raises(ConflictError, match="tainted"):
        ledger.resolve_version(v2.name)
    assert ledger.resolve_version(v2.name, allow_tainted=True).id == v2.id
    assert ledger.checkpoint_for(lineage.id, 0).id == ck  # v1 never saw doc 4: still clean


def test_forget_requests_evaluations_conversations_jobs(ledger, tmp_path):
    ids, _, _, _, v2 = _trained_versions(ledger, tmp_path)
    rid = ledger.create_forget_request(
        selector={"docs": ids[:2]},
        document_ids=ids[:2],
        trained_ids=ids[:1],
        method="npo",
        reason="test",
        base_version_id=v2.id,
    )
    assert ledger.forget_request_documents(rid) == [(ids[0], True), (ids[1], False)]
    ledger.update_forget_request(rid, status="failed", error="boom")
    assert ledger.forget_request(rid).finished_at is not None
    assert ledger.events(kind="forget")[0].kind == "forget.failed"
    assert ledger.add_evaluations(v2.id, "synth", {"forget": {"loss": 1.5, "acc": 0.25}}, request_id=rid) == 2
    assert {e.metric: e.value for e in ledger.evaluations(version_id=v2.id)} == {"loss": 1.5, "acc": 0.25}
    cid = ledger.add_conversation("hi", v2.id)
    m1 = ledger.add_message(cid, None, "user", "hello")
    ledger.add_message(cid, m1, "assistant", "hi there", v2.id, {"temperature": 0}, {"tokens": 3})
    assert [m.parent_id for m in ledger.conversation_messages(cid)] == [None, m1]
    assert ledger.list_conversations()[0]["messages"] == 2
    job = ledger.create_job("forget", {"request": rid})
    ledger.update_job(job, status="running", progress={"step": 1})
    ledger.request_job_cancel(job)
    assert ledger.job(job).cancel_requested and ledger.job(job).progress == [{"step": 1}]


def test_integrity_check_names_what_is_wrong(ledger, tmp_path):
    ids, *_ = _trained_versions(ledger, tmp_path)
    from sqlalchemy import update

    from lethe.ledger.schema import Document

    with ledger.transaction() as s:
        s.execute(update(Document).where(Document.id == ids[2]).values(content="tampered"))
    problems = check(ledger, verify_weights=False)
    assert [(p.check, p.row) for p in problems] == [("content-hash", str(ids[2]))]


def test_revisions_across_ingest_batches_of_a_new_source(ledger):
    from lethe.ledger.ingest import BATCH

    records = docs(*[(str(i), f"body {i}") for i in range(BATCH + 10)]) + docs(
        ("0", "body 0, revised"), ("5", "body 5")
    )
    report = ledger.add_documents(records, source="fresh")
    assert (report.added, report.updated, report.unchanged) == (BATCH + 10, 1, 1)
    assert [r.content for r in ledger.revisions(ledger.document("fresh:0").id)] == ["body 0", "body 0, revised"]
    again = ledger.add_documents(docs(("0", "body 0, revised"), ("7", "body 7, new")), source="fresh")
    assert (again.added, again.updated, again.unchanged) == (0, 1, 1)


def test_a_revert_to_older_content_is_a_new_current_revision(ledger):
    for content in ("river", "rock", "river"):
        ledger.add_documents(docs(("p", content)), source="s")
    chain = ledger.revisions(ledger.document("s:p").id)
    assert [(r.revision, r.content, r.is_current) for r in chain] == [
        (1, "river", False),
        (2, "rock", False),
        (3, "river", True),
    ]
    assert ledger.add_documents(docs(("p", "river")), source="s").unchanged == 1


def test_integrity_check_finds_orphaned_exposures(ledger, tmp_path):
    _, _, run, *_ = _trained_versions(ledger, tmp_path)
    ledger.record_exposures(run, [(9, 987654)])  # no such document: exposures carry no foreign keys
    problems = check(ledger, verify_weights=False)
    assert [(p.check, p.table, p.row) for p in problems] == [("orphans", "exposures", "document_id=987654")]
