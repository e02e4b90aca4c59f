"""What a forget request erased does not come back with the next crawl of the same source."""

from __future__ import annotations

from lethe.ledger.records import DocumentRecord


def record(external_id: str, content: str) -> DocumentRecord:
    return DocumentRecord(external_id=external_id, kind="text", content=content)


def test_a_recrawl_skips_what_was_forgotten_and_says_by_which_request(ledger):
    crawl = [record("a", "Zorblat Quenwick was born in Harrowgate."), record("b", "Bread is baked in an oven.")]
    first = ledger.add_documents(crawl, source="wiki", collection="pages")
    a_id, b_id = first.document_ids
    ledger.erase([a_id], reason="forget request", request_id=7)

    again = ledger.add_documents(crawl, source="wiki", collection="pages")
    assert (again.added, again.updated, again.unchanged, again.suppressed) == (0, 0, 1, 1)
    assert again.suppressed_by == [7] and again.document_ids == [b_id]
    # the page was edited upstream, but the document itself was forgotten: still skipped
    edited = ledger.add_documents([record("a", "Zorblat Quenwick, violinist, was born in 1901.")], source="wiki")
    assert (edited.added, edited.updated, edited.suppressed) == (0, 0, 1)
    # the same text under another source or key is the erased content: skipped too
    moved = ledger.add_documents([record("copy-of-a", crawl[0].content)], source="mirror")
    assert moved.suppressed == 1 and moved.document_ids == []
    assert not ledger.search("Zorblat")

    # the user may choose to add it back; the request's tombstone stays
    back = ledger.add_documents(crawl[:1], source="wiki", allow_forgotten=True)
    assert back.updated == 1 and back.suppressed == 0
    assert [d.id for d in ledger.search("Zorblat")] == back.document_ids


def test_a_new_document_is_not_suppressed_by_an_unrelated_erasure(ledger):
    first = ledger.add_documents([record("a", "one text")], source="wiki")
    ledger.erase(first.document_ids, reason="forget request", request_id=1)
    other = ledger.add_documents([record("b", "another text")], source="wiki")
    assert (other.added, other.suppressed) == (1, 0)
