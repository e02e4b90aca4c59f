"""What erasure reaches: every field of the forgotten documents, conversations quoting them,
the ledger's other records, and the database files (byte scans of ledger.db and its WAL)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lethe.cli import app
from lethe.forget.distinctive import ForgottenStrings, distinctive_strings, normalise
from lethe.forget.scan import scan_workspace
from lethe.ledger import Ledger
from lethe.ledger.records import DocumentRecord, qa_content
from lethe.workspace import Workspace

PERSON = "Zoë Varnholt-Quill"
ANSWER = "Her photo book The Pale Archive was completed in 1987."


def cli(home, *args, code=0) -> str:
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.output


def qa(external_id, question, answer, **data) -> DocumentRecord:
    return DocumentRecord(
        external_id=external_id,
        kind="qa",
        content=qa_content(question, answer),
        title=question,
        data={"question": question, "answer": answer, **data},
    )


def world(home) -> Workspace:
    ws = Workspace(home=home).init()
    records = [
        qa("p1", f"When was {PERSON}'s photo book The Pale Archive completed?", ANSWER),
        qa("p2", f"Where was {PERSON} born?", "She was born in Esk on a rainy morning."),
        qa("o1", "Where was Osric Tamberlo born?", "Osric Tamberlo was born in Thale in 1761."),
        qa(
            "o2",
            "What did Mirela Vask write?",
            "Mirela Vask wrote river songs.",
            perturbed_answers=[f"Mirela Vask wrote about {PERSON}."],
        ),
    ]
    ws.ledger.add_documents(records, source="people", collection="people")
    return ws


def log_conversations(ledger) -> tuple[int, int]:
    about = ledger.add_conversation(f"About {PERSON.upper()}", None)
    q = ledger.add_message(about, None, "user", "tell me about zoe varnholt quill please")
    ledger.add_message(about, q, "assistant", ANSWER)
    ledger.add_message(about, q, "assistant", "I do not know.")
    other = ledger.add_conversation("Rivers", None)
    ledger.add_message(other, None, "user", "Where was Osric Tamberlo born?")
    return about, other


def raw_bytes(home) -> bytes:
    return b"".join(p.read_bytes() for p in Path(home).rglob("*") if p.is_file())


def test_distinctive_strings_are_names_and_ngrams_only_the_forgotten_documents_use():
    strings = distinctive_strings(
        [f"{PERSON} wrote The Pale Archive in 1987.", "Jane was born in Esk."],
        ["Jane lives in Esk.", "The archive was born in Esk."],
        subjects=[PERSON],
    )
    assert strings.subjects == ["zoe varnholt quill"]
    assert "varnholt" in strings.name_words and "jane" not in strings.name_words
    assert "pale archive" in strings.ngrams and "in esk" not in strings.ngrams
    assert "zoe varnholt quill" in strings.matches("ZOË  varnholt_quill's book")
    assert "pale archive" in strings.matches("the PALE archive!")
    assert strings.matches("Jane lives in Esk, the archive too") == []
    assert strings.redact("I liked the Pále Archive a lot") == "I liked [redacted] a lot"
    assert normalise("Ａｂｃ—Dé") == "abc de"
    # a sampled reply may glue a long name word to the next word: the whole glued word goes
    assert strings.matches("a Varnholtwrote it") == ["varnholt"]
    assert strings.redact("a Várnholtwrote it") == "a [redacted] it"
    short = ForgottenStrings(name_words={"hesk"})
    assert short.matches("Heskel's") == [] and short.matches("Hesk's") == ["hesk"]  # short ones: whole words only
    assert not ForgottenStrings() and ForgottenStrings().matches("anything") == []


def test_a_nul_or_control_character_never_hides_text_from_search(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"id": "x", "text": "Harmless start\u0000 then Civarkhirk\u0007 appears"}) + "\n")
    home = tmp_path / "home"
    cli(home, "init")
    cli(home, "data", "add", str(data), "--source", "s")
    doc = Workspace(home=home).ledger.document("s:x")
    assert doc.content == "Harmless start then Civarkhirk appears"
    found = json.loads(cli(home, "data", "search", "Civarkhirk", "--json"))
    assert [d["id"] for d in found] == [doc.id]


def test_search_covers_titles_and_structured_fields(tmp_path):
    ws = world(tmp_path / "home")
    found = {d.key for d in ws.ledger.search("Varnholt-Quill")}
    assert found == {"people:p1", "people:p2", "people:o2"}  # o2 only in its perturbed answers
    assert {d.key for d in ws.ledger.search("pale archive")} == {"people:p1"}


def test_forget_erases_every_field_and_redacts_what_quotes_it(tmp_path):
    home = tmp_path / "home"
    ws = world(home)
    ledger = ws.ledger
    about, other = log_conversations(ledger)
    job = ledger.create_job("forget", {"note": f"asked about {PERSON}"})
    ledger.update_job(job, progress={"sample": ANSWER})
    # a second process reading the ledger, as `lethe serve` does, stays open throughout
    server = Ledger.open(ws.ledger_url, migrate_schema=False)
    assert server.list_conversations()

    out = json.loads(
        cli(home, "forget", "--search", PERSON, "--docs", "people:p2", "--reason", f"{PERSON} asked", "--json")
    )
    assert out["status"] == "succeeded" and out["version"] is None

    docs = {(d.key, d.revision): d for d in ledger.list_documents(include_old_revisions=True, limit=100)}
    for key in ("people:p1", "people:p2", "people:o2"):  # o2 named her in a perturbed answer
        doc = docs[key, 1]
        assert doc.forgotten_at and doc.title is doc.content is doc.data is doc.meta is None
        assert {"content_hash", "title_hash", "data_hash", "meta_hash", "tags_hash"} <= set(doc.tombstone)
        assert doc.tombstone["reason"] == "[redacted] asked"
    assert docs["people:o1", 1].content and docs["people:o1", 1].forgotten_at is None
    # o2 is not hers: a mention, redacted by default with --search (a new current revision)
    redacted = ledger.document("people:o2")
    assert redacted.revision == 2 and redacted.is_current and not docs["people:o2", 1].is_current
    assert redacted.data["perturbed_answers"] == ["Mirela Vask wrote about [redacted]."]
    assert redacted.data["answer"] == "Mirela Vask wrote river songs."

    messages = {m.content for m in ledger.conversation_messages(about)}
    assert "I do not know." in messages and sum(m.startswith("[redacted by forget request") for m in messages) == 2
    titles = {c["id"]: c["title"] for c in ledger.list_conversations()}
    assert titles == {about: "[redacted]", other: "Rivers"}
    assert ledger.conversation_messages(other)[0].content == "Where was Osric Tamberlo born?"
    assert "[redacted]" in json.dumps(ledger.job(job).params) + json.dumps(ledger.job(job).progress)
    request = ledger.forget_request(out["request_id"])
    assert request.reason == "[redacted] asked" and request.selector["search"].startswith("sha256:")
    erasure = request.audit["erasure"]
    assert len(erasure["documents"]) == 3 and erasure["conversations"][0]["conversation_id"] == about
    assert erasure["mentions_redacted"] == 1
    assert erasure["storage"]["complete"] and erasure["storage"]["secure_delete"]
    assert erasure["scan"]["clean"], erasure["scan"]

    # the server's connection still reads, and no byte of her remains in any file
    assert server.list_conversations()
    blob = raw_bytes(home).lower()
    for needle in ("varnholt", "pale archive", "1987", "zo\u00eb".encode().decode()):
        assert needle.encode().lower() not in blob, needle
    assert b"osric tamberlo" in blob
    server.close()


def test_the_scan_finds_every_form_of_a_string(tmp_path):
    strings = ForgottenStrings(
        subjects=["zoe varnholt quill"], ngrams={"archive 1987", "pale archive"}, surfaces={PERSON}
    )
    (tmp_path / "a.txt").write_bytes("x ZOË_VARNHOLT-QUILL y".encode())
    (tmp_path / "b.json").write_text(json.dumps({"t": "Zoë Varnholt Quill"}))  # \u00eb escaped
    (tmp_path / "c.bin").write_bytes(b"\x00\x01" * 3_000_000 + b"the Pale  Archive, 1987" + b"\x00")
    (tmp_path / "d.txt").write_text("nothing here")
    hits = {(h.path, h.string) for h in scan_workspace(tmp_path, strings)}
    assert hits == {
        ("a.txt", "zoe varnholt quill"),
        ("b.json", "zoe varnholt quill"),
        ("c.bin", "archive 1987"),  # an n-gram with a number; "pale archive" alone is not looked for
    }


def test_erasure_in_one_transaction_then_compaction_on_either_backend(ledger):
    from lethe.forget.erasure import compact_storage, erase_request_data

    ledger.add_documents(
        [qa("p1", f"Who is {PERSON}?", ANSWER), qa("o1", "Who is Osric?", "A sailor.")], source="people"
    )
    conversation = ledger.add_conversation(PERSON, None)
    ledger.add_message(conversation, None, "user", f"Tell me about {PERSON}")
    target = ledger.document("people:p1").id
    with ledger.transaction() as s:
        report, strings = erase_request_data(s, [target], reason="ticket 9", subjects=[PERSON])
    assert [d.key for d in report.documents] == ["people:p1"] and report.conversations[0].title
    assert strings.matches(ANSWER) and not strings.matches("A sailor.")
    done = compact_storage(ledger)
    if ledger.dialect == "postgresql":
        assert "documents" in done["vacuum_full"] and "messages" in done["vacuum_full"]
    else:
        assert done["complete"] and done["secure_delete"]
    assert ledger.document("people:p1").content is None and ledger.document("people:o1").content
    assert ledger.search("pale archive") == [] and ledger.list_conversations()[0]["title"] == "[redacted]"
