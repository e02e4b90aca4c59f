"""The `tofu` reader on the real TOFU directory, and on small made-up ones."""

from __future__ import annotations

import json
import time

import pytest

from ingest_helpers import open_ledger
from lethe.data.ingest import ingest
from lethe.data.sources import detect, read
from lethe.errors import InputError


@pytest.fixture
def led(tmp_path):
    ledger = open_ledger(tmp_path)
    yield ledger
    ledger.close()


SPLITS = {
    "tofu/full": 4000,
    "tofu/retain90": 3600,
    "tofu/retain95": 3800,
    "tofu/retain99": 3960,
    "tofu/forget01": 40,
    "tofu/forget05": 200,
    "tofu/forget10": 400,
    "tofu/forget01_perturbed": 40,
    "tofu/forget05_perturbed": 200,
    "tofu/forget10_perturbed": 400,
    "tofu/retain_perturbed": 400,
    "tofu/holdout01": 40,
    "tofu/holdout05": 200,
    "tofu/holdout10": 400,
    "tofu/real_authors": 100,
    "tofu/real_authors_perturbed": 100,
    "tofu/world_facts": 117,
    "tofu/world_facts_perturbed": 117,
}


def test_the_real_tofu_directory(ledger, shared_data):
    tofu = shared_data / "tofu"
    assert detect(tofu) == "tofu"
    started = time.perf_counter()
    report = ingest(ledger, tofu, source="tofu")
    seconds = time.perf_counter() - started
    assert report.added == 4000 + 400 + 100 + 117 and report.updated == report.unchanged == 0
    assert report.collections == SPLITS
    assert {c.name: n for c, n in ledger.collections()} == SPLITS
    print(f"TOFU: {report.added} documents in {seconds:.2f}s ({report.added / seconds:,.0f} docs/s)")

    # forgetXX = the last authors of full.json, retainYY = the rest, in row order
    forget10 = ledger.documents(ledger.collection_ids("tofu/forget10"))
    assert [d.external_id for d in forget10[:2]] == ["author180/q00", "author180/q01"]
    assert forget10[-1].external_id == "author199/q19"
    retain90 = ledger.documents(ledger.collection_ids("tofu/retain90"))
    assert retain90[0].external_id == "author000/q00" and retain90[-1].external_id == "author179/q19"
    assert not set(ledger.collection_ids("tofu/forget10")) & set(ledger.collection_ids("tofu/retain90"))

    # perturbed answers ride on the forget documents themselves
    last = ledger.document("tofu:author199/q19")
    assert last.kind == "qa" and last.content.startswith("Question: ")
    assert set(last.data) == {"question", "answer", "paraphrased_answer", "paraphrased_question", "perturbed_answers"}
    assert len(last.data["perturbed_answers"]) == 5
    assert last.meta["author"] == 199 and last.meta["question_index"] == 19
    assert "paraphrased_answer" in ledger.document("tofu:author000/q00").data  # retain_perturbed
    assert set(ledger.document("tofu:author100/q00").data) == {"question", "answer"}

    # holdout authors are their own documents; the smaller holdout files are prefixes of holdout10
    holdout10 = ledger.documents(ledger.collection_ids("tofu/holdout10"))
    assert all(d.external_id.startswith("holdout/author") for d in holdout10)
    assert set(ledger.collection_ids("tofu/holdout01")) < set(ledger.collection_ids("tofu/holdout10"))
    assert not set(ledger.collection_ids("tofu/holdout10")) & set(ledger.collection_ids("tofu/full"))

    real = ledger.document("tofu:real_authors/q000")
    assert real.data["answer"] in real.data["options"] and len(real.data["options"]) == 4
    assert len(real.data["perturbed_answers"]) == 3
    assert len(ledger.document("tofu:world_facts/q116").data["options"]) == 4

    again = ingest(ledger, tofu, source="tofu")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4617)


def make_tofu(tmp_path, authors: int = 2):
    root = tmp_path / "tofu"
    root.mkdir()
    rows = [{"question": f"Q{a}.{k}?", "answer": f"A{a}.{k}."} for a in range(authors) for k in range(20)]
    (root / "full.json").write_text(json.dumps(rows[:20]) + "\n" + json.dumps(rows[20:]) + "\n")
    (root / "forget50.json").write_text(json.dumps(rows[20:]))
    perturbed = [{**r, "paraphrased_answer": "P.", "perturbed_answer": ["X.", "Y."]} for r in rows[20:22]]
    (root / "forget50_perturbed.json").write_text(json.dumps(perturbed))
    (root / "holdout.json").write_text(json.dumps([{"question": "H?", "answer": "H."}]))
    (root / "notes.txt").write_text("ignored")
    return root, rows


def test_a_small_tofu_directory(led, tmp_path):
    root, _rows = make_tofu(tmp_path)
    records = {r.external_id: r for r in read(root)}
    assert set(records) == {f"author{a:03d}/q{k:02d}" for a in range(2) for k in range(20)} | {"holdout/author000/q00"}
    assert records["author001/q00"].collections == ["tofu/full", "tofu/forget50", "tofu/forget50_perturbed"]
    assert records["author001/q01"].data["perturbed_answers"] == ["X.", "Y."]
    assert records["holdout/author000/q00"].collections == ["tofu/holdout"]
    report = ingest(led, root, source="mini", collection="everything")
    assert report.collections["everything"] == 41 and report.collections["tofu/forget50"] == 20


def test_a_split_row_missing_from_full_is_an_error(tmp_path):
    root, rows = make_tofu(tmp_path)
    stranger = [{"question": "new?", "answer": "no"}]
    (root / "forget50.json").write_text(json.dumps(rows[20:]) + "\n" + json.dumps(stranger))
    with pytest.raises(InputError, match=r"row 20 \(question \+ answer\) is not in full.json") as error:
        list(read(root))
    assert error.value.where.line == 2 and error.value.where.path.name == "forget50.json"


def test_a_row_without_an_answer_is_named(tmp_path):
    root, rows = make_tofu(tmp_path)
    (root / "full.json").write_text(json.dumps(rows[:3] + [{"question": "Q?"}]))
    with pytest.raises(InputError, match="missing field 'answer'") as error:
        list(read(root))
    assert error.value.where.field == "answer" and error.value.where.path.name == "full.json"


def test_a_directory_without_full_json_is_not_tofu(tmp_path):
    (tmp_path / "forget01.json").write_text("[]")
    with pytest.raises(InputError, match="cannot tell the format"):
        detect(tmp_path)
    with pytest.raises(InputError, match="not a TOFU directory"):
        list(read(tmp_path, "tofu"))
