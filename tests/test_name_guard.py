"""The name guard: after a forget request, a later ingest does not bring the subject's names back."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lethe.cli import app
from lethe.errors import InputError
from lethe.forget.name_guard import NameGuard, key_path
from lethe.ledger import Ledger
from lethe.ledger.records import DocumentRecord, qa_content
from train_helpers import make_workspace

PERSON = "Osric Tamberlo"  # qa0 of train_helpers.qa_records


def cli(home, *args, code=0) -> str:
    result = CliRunner().invoke(app, ["--home", str(home), *args])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.stdout if code == 0 else result.output


def mention(external_id: str, question: str, answer: str) -> DocumentRecord:
    return DocumentRecord(
        external_id, "qa", qa_content(question, answer), data={"question": question, "answer": answer}
    )


def rows(path, *records: dict) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


@pytest.fixture
def ws(tmp_path):
    ws = make_workspace(tmp_path, n_qa=12)
    ws.ledger.add_documents(
        [
            mention("m1", "Who trained Mirela Vask?", f"Mirela Vask trained under {PERSON}."),
            mention("m2", "Who wrote the Varnholt charter?", "Tavin Vask wrote it."),
        ],
        source="extra",
        collection="qa",
    )
    return ws


def test_an_edited_mention_and_a_new_one_come_back_redacted_and_the_key_is_the_workspaces(ws, tmp_path):
    home = ws.home
    out = json.loads(cli(home, "forget", "--search", PERSON, "--json"))  # no model yet: it only erases
    assert out["status"] == "succeeded"
    request = ws.ledger.forget_request(out["request_id"])
    guard = request.config["name_guard"]
    assert guard["mode"] == "redact" and guard["digests"]
    plain = hashlib.sha256(b"osric tamberlo").hexdigest()
    assert plain not in guard["digests"]  # keyed: the ledger alone cannot confirm a guessed name
    assert stat.S_IMODE(key_path(home).stat().st_mode) == 0o600

    # upstream edits the redacted mention, and a new article names the subject in another case
    crawl = rows(
        tmp_path / "crawl.jsonl",
        {
            "id": "m1",
            "question": "Who trained Mirela Vask?",
            "answer": f"Mirela Vask trained for years under {PERSON}.",
        },
        {"id": "m9", "question": "Who founded Esk?", "answer": "OSRIC  tamberlo founded Esk, it is said."},
        {"id": "m2", "question": "Who wrote the Varnholt charter?", "answer": "Tavin Vask wrote it."},
    )
    added = json.loads(cli(home, "data", "add", crawl, "--source", "extra", "--json"))
    assert (added["guarded"], added["guarded_by"]) == (2, [request.id])
    assert (added["updated"], added["added"], added["unchanged"]) == (1, 1, 1)
    edited, new = ws.ledger.document("extra:m1"), ws.ledger.document("extra:m9")
    assert edited.data["answer"] == "Mirela Vask trained for years under [redacted]."
    assert new.data["answer"].startswith("[redacted] founded Esk")
    assert edited.meta["name_guard"] == [request.id]
    db = (home / "ledger.db").read_bytes().lower()  # other Tamberlos are other people
    assert b"osric tamberlo" not in db and b"osric  tamberlo" not in db
    human = cli(home, "data", "add", crawl, "--source", "extra")
    assert f"redacted: they name the subject of forget request {request.id}" in " ".join(human.split())

    # the receipt says what is kept and where; --allow-forgotten stores a record as given
    written = json.loads(cli(home, "requests", "receipt", str(request.id), "--json"))
    remains = json.loads(Path(written["json"]).read_text())["receipt"]["remains"]
    assert "keyed digest" in remains["name_guard"] and "name-guard.key" in remains["name_guard"]
    given = rows(tmp_path / "given.jsonl", {"id": "m9", "question": "Who founded Esk?", "answer": f"{PERSON} did."})
    assert (
        json.loads(cli(home, "data", "add", given, "--source", "extra", "--allow-forgotten", "--json"))["guarded"] == 0
    )
    assert PERSON in ws.ledger.document("extra:m9").content


def test_drop_skips_a_record_naming_the_subject_and_a_ledger_without_its_key_refuses(ws, tmp_path):
    home = ws.home
    out = json.loads(cli(home, "forget", "--search", PERSON, "--mentions", "drop", "--json"))
    assert ws.ledger.forget_request(out["request_id"]).config["name_guard"]["mode"] == "drop"
    crawl = rows(tmp_path / "crawl.jsonl", {"id": "m7", "question": "Who?", "answer": f"{PERSON}, the founder."})
    added = json.loads(cli(home, "data", "add", crawl, "--source", "extra", "--json"))
    assert (added["suppressed"], added["suppressed_by"], added["added"]) == (1, [out["request_id"]], 0)

    # opened without its workspace (no key), the ledger refuses to ingest rather than let names in
    bare = Ledger.open(f"sqlite:///{home / 'ledger.db'}")
    before = len(bare.list_documents(limit=1000))
    with pytest.raises(InputError, match="guards the names of forget requests"):
        bare.add_documents([mention("m8", "Who?", "Anyone.")], source="extra")
    assert len(bare.list_documents(limit=1000)) == before


def test_keep_records_no_guard_and_a_request_guards_only_once_it_succeeded(ws):
    home = ws.home
    out = json.loads(cli(home, "forget", "--search", PERSON, "--mentions", "keep", "--json"))
    assert "name_guard" not in ws.ledger.forget_request(out["request_id"]).config
    with ws.ledger.reading() as s:
        assert NameGuard.load(s, home) is None


def test_the_guard_matches_whole_names_in_any_case_and_spacing():
    from lethe.forget.name_guard import digest

    key = bytes(32)
    guard = NameGuard(key=key, digests={digest(key, "osric tamberlo"): (4, "redact")}, max_words=2)
    assert guard.matches(["Ask OSRIC  Tamberlo's sister."]) == {"osric tamberlo": (4, "redact")}
    assert guard.matches(["Osric alone", "Tamberlo alone"]) == {}
    verdict = guard.check(mention("x", "Who is Osric Tamberlo?", "A scholar."))
    assert verdict.action == "redact" and verdict.record.data["question"] == "Who is [redacted]?"
