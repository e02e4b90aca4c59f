"""Curation on the real Wikipedia sample and on constructed duplicates."""

import re

import pytest

from conftest import SHARED_DATA
from lethe.data.curate import CurationConfig, MinHasher, clean_text, curate, jaccard
from lethe.data.synth import generate_world
from lethe.errors import InputError

WIKI = SHARED_DATA / "wiki" / "enwiki-2015"
DOC = re.compile(r'<doc id="(\d+)" url="[^"]*" title="([^"]*)">\n(.*?)</doc>', re.DOTALL)


def _read_wiki() -> list[dict]:
    docs = []
    for path in sorted(WIKI.glob("wiki_*")):
        for match in DOC.finditer(path.read_text(encoding="utf-8")):
            docs.append(
                {"external_id": f"enwiki/{match[1]}", "title": match[2], "content": match[3].strip(), "kind": "text"}
            )
    return docs


@pytest.fixture(scope="module")
def wiki():
    if not WIKI.is_dir():
        pytest.skip("the shared Wikipedia sample is not here")
    docs = _read_wiki()
    return docs, curate(docs)


def test_wiki_sample_near_empty_and_artifacts(wiki):
    docs, result = wiki
    assert len(docs) == 648
    summary = result.summary()
    assert summary[("drop", "near-empty")] == 32
    assert len(result.kept) == 648 - len(result.dropped)
    assert summary[("clean", "empty-parentheses")] > 20
    assert summary[("clean", "file-lines")] >= 1
    flagged = sum(d.detail["count"] for d in result.decisions if d.reason == "formula-placeholders")
    assert flagged > 300  # ~361 in the sample, a few inside dropped stubs
    for doc in result.kept:
        assert "[[File:" not in doc["content"] and "()" not in doc["content"]
    assert any("[[File:" in d["content"] for d in docs)  # inputs are left untouched


def test_wiki_sample_has_no_duplicates(wiki):
    _, result = wiki
    assert not [d for d in result.dropped if d.reason != "near-empty"]


def test_exact_and_near_duplicates_are_dropped(wiki):
    docs, _ = wiki
    original = next(d for d in docs if d["title"] == "Albedo")
    words = original["content"].split(" ")
    edited = " ".join(w.upper() if i % 97 == 0 else w for i, w in enumerate(words))
    edited = edited.replace("albedo", "whiteness", 3)
    inputs = [
        original,
        docs[0],
        {**original, "external_id": "copy/exact"},
        {**original, "external_id": "copy/near", "content": edited},
    ]
    result = curate(inputs)
    assert [d["external_id"] for d in result.kept] == [original["external_id"], docs[0]["external_id"]]
    reasons = {d.doc_id: (d.reason, d.detail.get("duplicate_of")) for d in result.dropped}
    assert reasons["copy/exact"] == ("exact-duplicate", original["external_id"])
    assert reasons["copy/near"] == ("near-duplicate", original["external_id"])


def test_minhash_estimate_tracks_jaccard():
    hasher = MinHasher(num_perm=256, shingle_words=3, seed=1)
    a = hasher.shingles(" ".join(f"w{i}" for i in range(400)))
    b = hasher.shingles(" ".join(f"w{i}" for i in range(100, 500)))
    estimate = float((hasher.signature(a) == hasher.signature(b)).mean())
    assert abs(estimate - jaccard(a, b)) < 0.1


def test_clean_text():
    text = "Ada Lovelace () was a writer ( , ) of notes.\n[[File:Ada.png|thumb]]\nShe died."
    cleaned, found = clean_text(text)
    assert cleaned == "Ada Lovelace was a writer of notes.\nShe died."
    assert found == {"file-lines": 1, "empty-parentheses": 2}


def test_synthetic_world_survives_curation():
    docs = generate_world(80, seed=3).documents
    result = curate(docs)
    assert len(result.kept) == len(docs) and not result.decisions


def test_thresholds_are_configurable_and_input_is_checked():
    docs = [{"external_id": "a", "content": "one two three", "kind": "text"}]
    assert curate(docs, CurationConfig(min_words={"text": 3})).kept == docs
    assert curate(docs).dropped[0].reason == "near-empty"
    with pytest.raises(InputError, match="content"):
        curate([{"external_id": "x"}])
