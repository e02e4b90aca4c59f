"""Mentions: other documents naming the subject are listed, and redacted, dropped or kept."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lethe.cli import app
from lethe.errors import InputError
from lethe.forget.mentions import decide, find_mentions, read_choices, subject_names
from lethe.ledger.records import DocumentRecord, qa_content
from lethe.train import train
from train_helpers import FAST, make_workspace

PERSON = "Osric Tamberlo"  # qa0 of train_helpers.qa_records


def cli(home, *args, code=0) -> str:
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.output


def mention(external_id, question, answer, **data) -> DocumentRecord:
    return DocumentRecord(
        external_id, "qa", qa_content(question, answer), data={"question": question, "answer": answer, **data}
    )


@pytest.fixture
def ws(tmp_path):
    ws = make_workspace(tmp_path, n_qa=12)
    ws.ledger.add_documents(
        [
            mention("m1", "Who trained Mirela Vask?", f"Mirela Vask trained under {PERSON}."),
            mention("m2", "Who wrote the Varnholt charter?", "The charter names osric TAMBERLO as its author."),
            mention("m3", "Where was Tavin Vask born?", "Tavin Vask was born in Esk.", perturbed=[f"{PERSON}"]),
        ],
        source="extra",
        collection="qa",
    )
    return ws


def test_subject_names_are_the_phrases_concentrated_in_the_forgotten_documents(ws):
    own = [ws.ledger.document(k).id for k in ("test:qa0", "extra:m1", "extra:m3")]
    with ws.ledger.reading() as s:
        names = subject_names(s, own)
        assert "osric tamberlo" in names  # in all three, and in one other document (m2)
        assert "tamberlo" not in names  # every Tamberlo of test:qa0..qa7 has it
        assert "mirela vask" not in names  # in only one of them
        own = own[:1]
        assert subject_names(s, own, subjects=[PERSON]) == ["osric tamberlo"]
        found = find_mentions(s, own, ["osric tamberlo"])
    assert {m.key: m.fields for m in found} == {
        "extra:m1": ["content", "data"],
        "extra:m2": ["content", "data"],
        "extra:m3": ["data"],
    }
    decided = decide(found, "redact", {"extra:m2": {"decision": "keep", "reason": "public record"}})
    assert [(m.decision, m.reason) for m in decided][1] == ("keep", "public record")
    with pytest.raises(InputError, match="do not mention"):
        decide(found, "redact", {"test:qa3": {"decision": "drop"}})
    with pytest.raises(InputError, match="must be one of"):
        decide(found, "erase")


def test_a_choices_file_is_checked(tmp_path):
    path = tmp_path / "choices.json"
    path.write_text(json.dumps({"extra:m1": "drop", "7": {"decision": "keep", "reason": "consent"}}))
    assert read_choices(path) == {
        "extra:m1": {"decision": "drop", "reason": None},
        "7": {"decision": "keep", "reason": "consent"},
    }
    path.write_text(json.dumps({"extra:m1": "shred"}))
    with pytest.raises(InputError, match="must be one of") as error:
        read_choices(path)
    assert error.value.where.field == "extra:m1"


def test_forget_redacts_mentions_and_replay_trains_on_the_redacted_revision(ws, tmp_path):
    home = ws.home
    train(ws, data="qa", preset_or_path="nano", slices=2, config=FAST, seed=3, lineage="bot")
    conversation = ws.ledger.add_conversation("chat", None)
    ws.ledger.add_message(conversation, None, "user", f"Who is {PERSON}?")

    dry = json.loads(cli(home, "forget", "--search", PERSON, "--dry-run", "--json"))
    assert {m["key"]: m["decision"] for m in dry["mentions"]} == {
        "extra:m1": "redact",
        "extra:m2": "redact",
        "extra:m3": "redact",
    }
    assert dry["conversations"][0]["conversation_id"] == conversation
    assert ws.ledger.document("extra:m1").revision == 1  # a dry run changes nothing
    written = tmp_path / "written.json"
    cli(home, "forget", "--search", PERSON, "--dry-run", "--write-choices", str(written))
    assert read_choices(written) == {
        key: {"decision": "redact", "reason": None} for key in ("extra:m1", "extra:m2", "extra:m3")
    }

    choices = tmp_path / "choices.json"
    choices.write_text(json.dumps({"extra:m2": {"decision": "keep", "reason": "public record"}, "extra:m3": "drop"}))
    out = json.loads(
        cli(home, "forget", "--search", PERSON, "--method", "exact", "--mention-choices", str(choices), "--json")
    )
    assert out["status"] == "succeeded"
    ledger = ws.ledger
    old, new = ledger.revisions(ledger.document("extra:m1").id)
    assert new.is_current and new.data["answer"] == "Mirela Vask trained under [redacted]."
    assert old.forgotten_at and old.content is None
    assert ledger.document("extra:m2").revision == 1 and "TAMBERLO" in ledger.document("extra:m2").content
    assert ledger.document("extra:m3").forgotten_at  # dropped: forgotten whole
    seen = set(ledger.documents_seen(ledger.resolve_version("latest").id))
    assert new.id in seen and old.id not in seen and ledger.document("test:qa0").id not in seen
    recorded = {m["key"]: m for m in ledger.forget_request(out["request_id"]).config["mentions"]}
    assert recorded["extra:m2"]["decision"] == "keep" and recorded["extra:m2"]["reason"] == "public record"
    assert recorded["extra:m1"]["redacted_revision_id"] == new.id and recorded["extra:m1"]["names"] == 1
    assert ledger.conversation_messages(conversation)[0].content.startswith("[redacted")
