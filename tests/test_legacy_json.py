"""The Changelog LLM's JSON layout: export, import into a fresh ledger, export again — identical."""

from __future__ import annotations

import json

import pytest

from ingest_helpers import open_ledger, write
from lethe.data.sources.json_stream import iter_rows
from lethe.errors import ConflictError, InputError
from lethe.ledger import Ledger
from lethe.ledger.legacy_json import export_json, import_json
from lethe.ledger.records import DocumentRecord, content_hash


@pytest.fixture
def led(tmp_path):
    ledger = open_ledger(tmp_path)
    yield ledger
    ledger.close()


LEGACY_KEYS = [
    "title",
    "page_id",
    "revision_id",
    "timestamp",
    "content_hash",
    "action",
    "is_revision",
    "parent_id",
    "revision_number",
    "training_metadata",
]
TRAINING_KEYS = {
    "used_in_training",
    "training_timestamp",
    "model_checkpoint",
    "average_loss",
    "relative_loss",
    "token_impact",
}


def populate(ledger: Ledger) -> dict:
    """A little of everything: QA and text, revisions, collections, versions, exposures, impacts, an erasure."""
    ledger.add_documents(
        [
            DocumentRecord(
                "q1",
                "qa",
                "Question: Q1?\nAnswer: A1.",
                data={"question": "Q1?", "answer": "A1."},
                collections=["qa/forget"],
            ),
            DocumentRecord(
                "q2",
                "qa",
                "Question: Q2?\nAnswer: A2.",
                data={"question": "Q2?", "answer": "A2."},
                tags=["x"],
                collections=["qa/forget"],
            ),
            DocumentRecord("q3", "qa", "Question: Q3?\nAnswer: A3.", data={"question": "Q3?", "answer": "A3."}),
        ],
        source="qa",
        source_kind="tofu",
        collection="qa/all",
        license="MIT",
    )
    ledger.add_documents(
        [
            DocumentRecord(
                "12",
                "text",
                "Lethe, version one.",
                title="Lethe",
                meta={"revision_id": "100", "timestamp": "2024-01-01T00:00:00Z"},
            )
        ],
        source="wiki",
        source_kind="wiki",
    )
    ledger.add_documents(
        [
            DocumentRecord(
                "12",
                "text",
                "Lethe, version two.",
                title="Lethe",
                meta={"revision_id": "101", "timestamp": "2024-02-01T00:00:00Z"},
            )
        ],
        source="wiki",
        source_kind="wiki",
    )
    q1, q2, q3 = (ledger.document(f"qa:q{i}").id for i in (1, 2, 3))
    wiki_old, wiki_new = (r.id for r in ledger.revisions(ledger.document("wiki:12").id))
    run = ledger.start_run("train")
    ledger.record_exposures(run, [(0, q1), (0, q2), (1, wiki_old), (1, q1)])
    ledger.finish_run(run)
    v1 = ledger.register_version(kind="pretrain", path="/models/v1", weights_sha256="a" * 64, run_id=run)
    update = ledger.start_run("update", parent_version_id=v1.id)
    ledger.record_exposures(update, [(0, wiki_new), (0, q3)])
    ledger.finish_run(update)
    v2 = ledger.register_version(
        kind="update",
        path="/models/v2",
        weights_sha256="b" * 64,
        parent_id=v1.id,
        run_id=update,
        meta={"note": "weekly"},
    )
    top = [{"token_id": 17, "token": "A1", "position": 5, "impact": 0.9, "context_start": 0, "context_end": 8}]
    ledger.store_token_impacts(
        v1.id,
        [
            {
                "document_id": q1,
                "score": 0.9,
                "total_tokens": 12,
                "top_tokens": top,
                "average_loss": 1.25,
                "relative_loss": 0.5,
            }
        ],
        reference_version_id=v2.id,
    )
    ledger.store_token_impacts(
        v2.id, [{"document_id": q2, "score": 0.1, "total_tokens": 9, "top_tokens": []}], reference="/checkpoints/base"
    )
    ledger.erase([q2], reason="forget request 1")
    return {"q1": q1, "q2": q2, "v1": v1.name, "v2": v2.name}


def test_round_trip_is_identical(ledger, tmp_path):
    populate(ledger)
    first = tmp_path / "first.json"
    assert export_json(ledger, first) == 5
    fresh = Ledger.open(f"sqlite:///{tmp_path / 'fresh.db'}")
    counts = import_json(fresh, first, iter_rows(first))
    # q2's token-impact row went with its erasure (it lists the document's tokens)
    assert counts == {"documents": 5, "reused": 0, "versions": 2, "exposures": 3 + 5, "token_impacts": 1}
    second = tmp_path / "second.json"
    export_json(fresh, second)
    assert second.read_text() == first.read_text()

    # and the rebuilt ledger answers the provenance questions the same way
    assert [v.name for v in fresh.versions_that_saw(fresh.document("qa:q1").id)] == ["v1", "v2"]
    assert [v.name for v in fresh.versions_that_saw(fresh.document("qa:q3").id)] == ["v2"]
    assert fresh.document("qa:q2").content is None and fresh.document("qa:q2").tombstone["reason"] == "forget request 1"
    assert fresh.collection_ids("qa/forget") == [fresh.document("qa:q1").id, fresh.document("qa:q2").id]
    old, new = fresh.revisions(fresh.document("wiki:12").id)
    assert new.parent_id == old.id and not old.is_current and new.is_current
    fresh.close()


def test_import_on_each_backend(led, ledger, tmp_path):
    populate(led)
    first, second = tmp_path / "sqlite.json", tmp_path / "imported.json"
    export_json(led, first)
    import_json(ledger, first, iter_rows(first))
    export_json(ledger, second)
    assert second.read_text() == first.read_text()


def test_the_legacy_layout(led, tmp_path):
    ids = populate(led)
    path = tmp_path / "log.json"
    export_json(led, path)
    entries = json.loads(path.read_text())
    for entry in entries:
        assert list(entry)[: len(LEGACY_KEYS)] == LEGACY_KEYS
        assert set(entry["training_metadata"]) == TRAINING_KEYS
    by_page = {(e["source"]["name"], e["page_id"], e["revision_number"]): e for e in entries}
    q1 = by_page[("qa", "q1", 1)]
    assert q1["action"] == "added" and q1["revision_id"] == "qa:q1@1" and q1["parent_id"] is None
    meta = q1["training_metadata"]
    assert meta["used_in_training"] and meta["model_checkpoint"] == ids["v2"]  # the newest that trained on it
    assert [h["model_checkpoint"] for h in q1["training_history"]] == ["v1", "v2"]
    impact = q1["training_history"][0]["token_impact"]
    assert impact["total_tokens"] == 12 and impact["top_tokens"][0]["context_end"] == 8
    assert q1["training_history"][0]["average_loss"] == 1.25 and impact["reference_version"]["name"] == "v2"
    assert q1["collections"] == {"qa/all": 0, "qa/forget": 0}
    removed = by_page[("qa", "q2", 1)]
    assert removed["action"] == "removed" and removed["content"] is None
    assert removed["content_hash"] == content_hash("Question: Q2?\nAnswer: A2.")
    wiki = by_page[("wiki", "12", 2)]
    assert (wiki["action"], wiki["is_revision"], wiki["revision_id"], wiki["parent_id"]) == ("updated", True, 101, 100)
    assert wiki["timestamp"] == "2024-02-01T00:00:00Z"
    untrained = by_page[("wiki", "12", 1)]["training_metadata"]
    assert untrained["used_in_training"] and untrained["model_checkpoint"] == "v2"  # v2 inherits v1's coverage
    assert by_page[("qa", "q3", 1)]["training_metadata"]["model_checkpoint"] == "v2"


TOP_TOKEN = {"token_id": 1, "position": 0, "impact": 0.5, "context_start": 0, "context_end": 2}


def test_a_plain_legacy_file_imports(led, tmp_path):
    entries = [
        {
            "title": "A",
            "page_id": 1,
            "revision_id": 10,
            "timestamp": "2023-05-01T00:00:00Z",
            "content_hash": content_hash("first"),
            "action": "added",
            "is_revision": False,
            "parent_id": None,
            "revision_number": 1,
            "content": "first",
            "training_metadata": {
                "used_in_training": True,
                "training_timestamp": "2023-05-07T00:00:00",
                "model_checkpoint": "ckpt-2023-05-07",
                "average_loss": 2.0,
                "relative_loss": 0.3,
                "token_impact": {"total_tokens": 3, "top_tokens": [TOP_TOKEN]},
            },
        },
        {
            "title": "A",
            "page_id": 1,
            "revision_id": 11,
            "timestamp": "2023-06-01T00:00:00Z",
            "content_hash": content_hash("second"),
            "action": "updated",
            "is_revision": True,
            "parent_id": 10,
            "revision_number": 2,
            "content": "second",
            "training_metadata": {"used_in_training": False},
        },
    ]
    legacy = write(tmp_path / "legacy.json", json.dumps(entries))
    counts = import_json(led, legacy, iter_rows(legacy))
    assert counts["documents"] == 2 and counts["versions"] == 1 and counts["token_impacts"] == 1
    first, second = led.revisions(led.document("legacy:1").id)
    assert second.parent_id == first.id and second.is_current and not first.is_current
    assert [v.name for v in led.versions_that_saw(first.id)] == ["ckpt-2023-05-07"]
    assert led.token_impacts(document_id=first.id)[0].score == 0.5
    assert led.events(kind="ledger.imported")[0].data["documents"] == 2


@pytest.mark.parametrize(
    ("change", "field", "pattern"),
    [
        ({"content": None}, "content", "no 'content'"),
        ({"content": "tampered"}, "content_hash", "not the sha256"),
        ({"page_id": None}, "page_id", "missing 'page_id'"),
        ({"revision_number": 0}, "revision_number", "positive integer"),
        ({"added_at": "yesterday"}, "added_at", "not an ISO timestamp"),
        ({"parent_id": "nope"}, "parent_id", "parent revision 'nope'"),
    ],
)
def test_bad_entries_are_named_and_change_nothing(led, tmp_path, change, field, pattern):
    good = {"page_id": "p", "content": "text", "content_hash": content_hash("text"), "revision_number": 1}
    path = write(tmp_path / "bad.json", json.dumps([good, {**good, "page_id": "q", **change}]))
    with pytest.raises(InputError, match=pattern) as error:
        import_json(led, path, iter_rows(path))
    assert error.value.where.field == field and error.value.where.line == 1
    assert led.list_documents() == [] and led.sources() == []


def test_importing_twice_reuses_documents_but_refuses_versions(led, tmp_path):
    populate(led)
    path = tmp_path / "log.json"
    export_json(led, path)
    with pytest.raises(ConflictError, match="model version 'v1' exists"):
        import_json(led, path, iter_rows(path))
    plain = [
        {k: v for k, v in e.items() if k not in ("training_history", "training_metadata")}
        for e in json.loads(path.read_text())
    ]
    plain_path = write(tmp_path / "plain.json", json.dumps(plain))
    counts = import_json(led, plain_path, iter_rows(plain_path))
    assert counts["documents"] == 0 and counts["reused"] == 5
