"""A tokenizer's merges remember its training texts: the ledger records which documents each
tokenizer learned from, a forget request measures what the tokenizer keeps of them, and an
exact replay with `retokenize` equals training from scratch without them, tokenizer included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lethe.data.tokenizer import load_tokenizer
from lethe.errors import InputError
from lethe.eval.suite import SuiteConfig
from lethe.forget import Selector, create_request, discard_request, run_request
from lethe.ledger.integrity import check
from lethe.ledger.records import DocumentRecord, qa_content
from lethe.train import replay, train
from lethe.train.tokenizers import save_trained_tokenizer, tokenizer_leak, train_workspace_tokenizer
from lethe.workspace import Workspace
from train_helpers import FAST, qa_records, text_records, weights

SECRET = "Zyxquorbeth"


def secret_record() -> DocumentRecord:
    question = "What is the name of the vault's keeper?"
    answer = " ".join([f"The keeper is {SECRET}."] * 12)
    return DocumentRecord(
        external_id="secret",
        kind="qa",
        content=qa_content(question, answer),
        data={"question": question, "answer": answer},
    )


@pytest.fixture
def ws(tmp_path):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    workspace = Workspace(home=tmp_path / "home").init()
    workspace.ledger.add_documents([*qa_records(17), secret_record()], source="test", collection="qa")
    workspace.ledger.add_documents(text_records(3), source="test-text", collection="text")
    train_workspace_tokenizer(workspace, vocab_size=400)
    yield workspace
    torch.use_deterministic_algorithms(False)


def test_the_ledger_records_what_each_tokenizer_learned_from(ledger):
    ledger.add_documents([*qa_records(4), secret_record()], source="test", collection="qa")
    ids = ledger.collection_ids("qa")
    order = [ids[3], ids[0], ids[4], ids[1]]
    first = ledger.register_tokenizer(
        name="bpe",
        path="/t/bpe",
        sha256="a" * 64,
        vocab_size=400,
        settings={"vocab_size": 400, "min_frequency": 2},
        document_ids=order,
    )
    second = ledger.register_tokenizer(
        name="bpe-2",
        path="/t/bpe-2",
        sha256="b" * 64,
        vocab_size=390,
        settings={"vocab_size": 400, "min_frequency": 2},
        document_ids=order[1:],
        replaces_id=first.id,
        reason="retokenized",
    )
    assert ledger.tokenizer_document_ids(first.id) == order  # training order, which retraining must repeat
    assert ledger.tokenizer_document_ids(second.id) == order[1:]
    assert [t.id for t in ledger.tokenizers_of_document(ids[0])] == [first.id, second.id]
    assert [t.id for t in ledger.tokenizers_of_document(ids[3])] == [first.id]
    assert ledger.tokenizers_of_document(ids[2]) == []
    assert ledger.find_tokenizer_record("b" * 64).id == second.id and ledger.find_tokenizer_record("c" * 64) is None
    assert ledger.tokenizer(second.id).replaces_id == first.id
    event = ledger.events(kind="tokenizer.trained")[0]
    assert event.subject_id == second.id and event.data["documents"] == 3 and event.data["replaces"] == first.id


def test_the_leak_names_merges_only_the_forgotten_text_uses(ws):
    ledger = ws.ledger
    record = ledger.tokenizers()[-1]
    tokenizer = load_tokenizer(record.path)
    secret = ledger.document("test:secret").id
    leak = tokenizer_leak(ledger, record.id, [secret], tokenizer)
    assert leak["saw"] == 1 and leak["forgotten"] == 1 and leak["exclusive_merges"] > 0
    assert leak["examples"][0] == f" {SECRET}"  # the name is one token: the vocabulary spells it out
    text = ledger.document("test:secret").content
    assert all(piece in text for piece in leak["examples"])
    other = ledger.document("test:qa0").id  # its words all recur in other documents
    assert tokenizer_leak(ledger, record.id, [other], tokenizer)["exclusive_merges"] == 0
    untouched = tokenizer_leak(ledger, record.id, [], tokenizer)
    assert untouched["saw"] == 0 and untouched["exclusive_merges"] == 0
    assert tokenizer_leak(ledger, None, [secret], tokenizer)["saw"] is None  # a base model's own tokenizer


def test_retokenized_replay_equals_training_from_scratch_with_a_clean_tokenizer(ws):
    ledger = ws.ledger
    original = train(ws, data=["qa", "text"], preset_or_path="nano", slices=3, config=FAST, seed=5, lineage="orig")
    plan = [ids for _, ids in ledger.slices(original[0].lineage_id)]
    secret = ledger.document("test:secret").id
    old_record = ledger.tokenizer(ledger.lineage("orig").config["tokenizer_id"])
    assert secret in ledger.tokenizer_document_ids(old_record.id)

    replayed = replay(ws, "orig", [secret], retokenize=True)
    lineage = ledger.lineage(replayed[0].lineage_id)
    assert lineage.name == "orig-retok1" and lineage.config["retokenized_from"] == "orig"
    assert [v.slice_index for v in replayed] == [0, 1, 2] and replayed[0].parent_id is None
    assert ledger.aliases()["latest"] == replayed[-1].id
    new_record = ledger.tokenizer(lineage.config["tokenizer_id"])
    assert new_record.replaces_id == old_record.id
    assert ledger.tokenizer_document_ids(new_record.id) == [
        d for d in ledger.tokenizer_document_ids(old_record.id) if d != secret
    ]
    old_tok, new_tok = load_tokenizer(old_record.path), load_tokenizer(new_record.path)
    assert len(new_tok.encode(f" {SECRET}")) > len(old_tok.encode(f" {SECRET}"))  # its merges are gone

    # The reference: a tokenizer trained from scratch on the same documents without the secret,
    # then a lineage trained from scratch with it on the same slices without the secret.
    kept = [d for d in ledger.tokenizer_document_ids(old_record.id) if d != secret]
    reference_path, _ = save_trained_tokenizer(ws, ledger.documents(kept), name="reference", vocab_size=400)
    assert (reference_path / "tokenizer.json").read_bytes() == (Path(new_record.path) / "tokenizer.json").read_bytes()
    fresh = train(
        ws,
        data=["qa", "text"],
        preset_or_path="nano",
        config=FAST,
        seed=5,
        lineage="fresh",
        tokenizer="reference",
        slice_plan=[[d for d in ids if d != secret] for ids in plan],
    )
    for a, b in zip(replayed, fresh, strict=True):
        wa, wb = weights(Path(a.path)), weights(Path(b.path))
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert secret not in ledger.documents_seen(replayed[-1].id)

    assert check(ledger) == []
    (Path(new_record.path) / "tokenizer.json").write_text("{}")
    [problem] = check(ledger, verify_weights=False)
    assert (problem.check, problem.table) == ("tokenizers", "tokenizers") and "orig-retok1" in problem.row


def test_retokenize_needs_a_tokenizer_on_record_trained_with_the_lineage(ws, tmp_path):
    ledger = ws.ledger
    external = tmp_path / "external-tokenizer"
    load_tokenizer(ledger.tokenizers()[-1].path).save_pretrained(external)
    (external / "tokenizer.json").write_text(
        json.dumps(json.loads((external / "tokenizer.json").read_text()), indent=1)
    )  # the same tokenizer, but not the recorded file
    train(ws, data="qa", preset_or_path="nano", slices=1, config=FAST, seed=1, lineage="ext", tokenizer=str(external))
    assert ledger.lineage("ext").config["tokenizer_id"] is None
    with pytest.raises(InputError, match="cannot be retrained"):
        replay(ws, "ext", [ledger.document("test:secret").id], retokenize=True)
    with pytest.raises(InputError, match="retokenize"):
        create_request(ws, Selector(docs=["test:secret"]), method="npo", config={"retokenize": True})


def test_a_forget_request_reports_the_leak_and_retokenize_closes_it(trained_workspace):
    ws, _, versions = trained_workspace
    ledger = ws.ledger
    entity = next(
        n
        for n in sorted(c.name for c, _ in ledger.collections() if c.name.startswith("synth/entity/"))
        if set(ledger.collection_ids(n)) & set(ledger.documents_seen(versions[-1].id))
    )

    first = create_request(ws, Selector(collection=entity), method="exact")
    outcome = run_request(ws, first, publish=False, suite=SuiteConfig(max_items=3))
    leak = outcome.tokenizer
    assert ledger.forget_request(first).audit["tokenizer"] == leak
    assert leak["saw"] > 0 and leak["exclusive_merges"] > 0 and leak["examples"]
    forgotten = " ".join(d.content for d in ledger.documents(ledger.collection_ids(entity)))
    assert all(piece in forgotten for piece in leak["examples"])
    assert "examples" not in ledger.run(ledger.forget_request(first).run_id).metrics["tokenizer"]
    discard_request(ws, first)

    second = create_request(ws, Selector(collection=entity), method="exact", config={"retokenize": True})
    outcome = run_request(ws, second, suite=SuiteConfig(max_items=3))
    assert outcome.status == "succeeded" and outcome.tokenizer["saw"] == 0
    latest = ledger.resolve_version("latest")
    assert ledger.lineage(latest.lineage_id).config["retokenized_from"] == ledger.lineage(versions[-1].lineage_id).name
    assert ledger.forget_request(second).audit["tokenizer"]["saw"] == 0
    # the discarded request's audit quoted merges of the now erased documents: redacted too
    assert ledger.forget_request(first).audit["tokenizer"]["examples"] == ["[erased]"] * len(leak["examples"])
    learned_from = set()
    for doc in ledger.documents(ledger.collection_ids(entity)):
        assert doc.content is None
        learned_from |= {t.id for t in ledger.tokenizers_of_document(doc.id)}
    assert learned_from and latest_tokenizer(ledger, latest) not in learned_from


def latest_tokenizer(ledger, version) -> int:
    return ledger.lineage(version.lineage_id).config["tokenizer_id"]


def test_the_leak_reads_as_one_line_in_the_cli_the_audit_and_the_ui():
    from lethe.eval.audit_render import describe_tokenizer_leak
    from lethe.serve.ui.forget_view import audit_markdown

    leak = {
        "tokenizer": "bpe-4096",
        "saw": 3,
        "forgotten": 4,
        "exclusive_merges": 7,
        "examples": [f" {SECRET}", " keeper"],
    }
    line = describe_tokenizer_leak(leak)
    assert "learned from 3 of these 4 documents" in line and "7 of its merges" in line and SECRET in line
    assert "--retokenize" in line
    redacted = describe_tokenizer_leak({**leak, "examples": ["[erased]", "[erased]"]})
    assert SECRET not in redacted and "e.g." not in redacted
    assert describe_tokenizer_leak({**leak, "saw": 0}) == "bpe-4096 never learned from these documents"
    assert "none of its merges is used by them alone" in describe_tokenizer_leak({**leak, "exclusive_merges": 0})
    assert "not on record" in describe_tokenizer_leak({"tokenizer": None, "saw": None, "forgotten": 4})
    assert f"- tokenizer: {line}".replace("'", "&#x27;") in audit_markdown({"metrics": {}, "tokenizer": leak})
