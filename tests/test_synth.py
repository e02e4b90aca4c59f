"""The synthetic world: deterministic, well-formed, answerable from its articles."""

import json
from collections import Counter

import pytest

from lethe.data.synth import generate_world
from lethe.data.synth_text import TEMPLATES
from lethe.errors import InputError


@pytest.fixture(scope="module")
def world():
    return generate_world(120, seed=7)


def test_same_seed_same_world_other_seed_other_world(world):
    assert generate_world(120, seed=7).documents == world.documents
    assert generate_world(120, seed=8).documents != world.documents


def test_counts(world):
    kinds = Counter(e.kind for e in world.entities)
    assert sum(kinds.values()) == 120 and set(kinds) == {"person", "place", "organisation"}
    articles = [d for d in world.documents if d["kind"] == "text"]
    assert len(articles) == 120
    per_entity = Counter(d["entity"] for d in world.documents if d["kind"] == "qa")
    assert set(per_entity) == {e.id for e in world.entities}
    assert all(10 <= n <= 20 for n in per_entity.values())
    assert len({d["external_id"] for d in world.documents}) == len(world.documents)


def test_names_are_unique(world):
    names = [e.name for e in world.entities]
    assert len(set(names)) == len(names)


def test_every_answer_is_in_the_article(world):
    articles = {d["entity"]: d["content"] for d in world.documents if d["kind"] == "text"}
    for doc in world.documents:
        if doc["kind"] == "qa":
            data = doc["data"]
            assert data["short_answer"] in articles[doc["entity"]], doc["external_id"]
            assert data["short_answer"] in data["answer"]
            assert data["short_answer"] in data["paraphrased_answer"]
            assert data["paraphrased_answer"] != data["answer"]
            assert len(set(data["perturbed_answers"])) == 3
            assert data["paraphrased_answer"] not in data["perturbed_answers"]


def test_record_shape(world):
    for doc in world.documents[:40]:
        assert set(doc) == {"external_id", "kind", "title", "content", "data", "tags", "entity", "group"}
        assert doc["group"] in {"train", "holdout"} and doc["content"].strip()
        assert doc["external_id"].startswith(doc["entity"])


def test_holdout_is_disjoint_and_never_mentioned(world):
    holdout = {e.id for e in world.entities if e.group == "holdout"}
    assert 0 < len(holdout) <= 0.15 * len(world.entities)
    collections = world.collections()
    trained = set(collections["synth/articles"]) | set(collections["synth/qa"])
    assert trained.isdisjoint(collections["synth/holdout"])
    everything = {d["external_id"] for d in world.documents}
    assert trained | set(collections["synth/holdout"]) == everything
    names = {world.entity(i).name for i in holdout}
    for doc in world.documents:
        if doc["group"] == "train":
            assert not set(doc["data"]["mentions"]) & holdout
            assert not any(name in doc["content"] for name in names)


def test_per_entity_collections(world):
    collections = world.collections()
    docs = collections["synth/entity/person/0003"]
    assert docs[0] == "person/0003" and len(docs) == 1 + sum(
        1 for d in world.documents if d["entity"] == "person/0003" and d["kind"] == "qa"
    )
    assert [d["external_id"] for d in world.documents_of("person/0003")] == docs


def test_templates_never_start_with_the_value():
    for key, (article, questions, answers) in TEMPLATES.items():
        for template in article + answers:
            assert not template.startswith("{value}"), key
            assert "{value}" in template, key


def test_write_jsonl(world, tmp_path):
    n = world.write_jsonl(tmp_path / "world.jsonl")
    lines = (tmp_path / "world.jsonl").read_text().splitlines()
    assert n == len(lines) == len(world.documents)
    assert json.loads(lines[0]) == world.documents[0]


def test_bad_arguments():
    with pytest.raises(InputError):
        generate_world(2, seed=0)
    with pytest.raises(InputError):
        generate_world(50, seed=0, holdout_fraction=1.5)
