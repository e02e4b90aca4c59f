"""The embedded synthetic world: `generate_world(entities, seed)` and its documents.

A TOFU-like corpus that no model can know before training: invented people, places and
organisations (`synth_world`), each written up as an article and 10–20 QA pairs with
paraphrased and perturbed answers (`synth_text`). A share of the entities is held out and
never trained: they are the in-distribution non-members for membership-inference audits.
Everything is a pure function of the seed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from lethe.data.synth_probes import inbound_relations, probe_questions
from lethe.data.synth_text import render_article, render_qa
from lethe.data.synth_world import Entity, Sampler, sample_entities
from lethe.errors import InputError, Where

SOURCE = "synth"
GROUPS = ("train", "holdout")


@dataclass
class World:
    """A generated world: its entities and one document record per article and QA pair."""

    seed: int
    """The seed it was generated from."""
    entities: list[Entity]
    """All entities, train and holdout, ordered by id within kind."""
    documents: list[dict] = field(default_factory=list)
    """Ingest-ready records (see `generate_world`), articles before QA, by entity."""

    def entity(self, entity_id: str) -> Entity:
        for entity in self.entities:
            if entity.id == entity_id:
                return entity
        raise InputError(f"no entity {entity_id!r} in this world", Where(field="entity"))

    def documents_of(self, entity_id: str) -> list[dict]:
        """The article and QA records about one entity (its forget set)."""
        return [d for d in self.documents if d["entity"] == entity_id]

    def collections(self, *, per_entity: bool = True) -> dict[str, list[str]]:
        """Collection name -> external ids of its documents.

        ``synth/articles`` and ``synth/qa`` hold the trainable documents, ``synth/holdout``
        (with ``/articles`` and ``/qa``) the never-trained ones, and with `per_entity`
        ``synth/entity/<kind>/<nnnn>`` the documents about each entity.
        """
        result: dict[str, list[str]] = {
            f"{SOURCE}/articles": [],
            f"{SOURCE}/qa": [],
            f"{SOURCE}/holdout": [],
            f"{SOURCE}/holdout/articles": [],
            f"{SOURCE}/holdout/qa": [],
        }
        for doc in self.documents:
            plural = "articles" if doc["kind"] == "text" else "qa"
            if doc["group"] == "train":
                result[f"{SOURCE}/{plural}"].append(doc["external_id"])
            else:
                result[f"{SOURCE}/holdout"].append(doc["external_id"])
                result[f"{SOURCE}/holdout/{plural}"].append(doc["external_id"])
            if per_entity:
                result.setdefault(f"{SOURCE}/entity/{doc['entity']}", []).append(doc["external_id"])
        return result

    def write_jsonl(self, path: str | Path) -> int:
        """Write every document as one JSON line; returns the number written."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(doc, ensure_ascii=False) + "\n" for doc in self.documents)
        return len(self.documents)


def generate_world(entities: int, seed: int, holdout_fraction: float = 0.1) -> World:
    """A fictional world of `entities` entities, the same for the same arguments.

    Records look like::

        {"external_id": "person/0007" | "person/0007/qa/03", "kind": "text" | "qa",
         "title": ..., "content": ..., "data": {...}, "tags": [...],
         "entity": "person/0007", "group": "train" | "holdout"}

    An article's ``data`` lists the entity ids it ``mentions``; a QA record's ``data`` holds
    ``question``, ``answer``, ``short_answer`` (verbatim in the article),
    ``paraphrased_answer``, ``perturbed_answers``, the ``fact`` key and, for the robustness
    probes, ``paraphrased_questions`` and ``indirect_questions`` (`synth_probes`). A QA ``content`` is
    the question and the answer on two lines.
    """
    if entities < 5:
        raise InputError(f"a world needs at least 5 entities, got {entities}", Where(field="entities"))
    if not 0.0 <= holdout_fraction < 1.0:
        raise InputError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}", Where(field="holdout_fraction"))
    rng = random.Random(seed)
    members = sample_entities(entities, holdout_fraction, rng)
    sampler = Sampler(random.Random(f"{seed}/perturb"))
    for entity in members:
        sampler.pools.setdefault((entity.kind, entity.group), []).append(entity)
    world = World(seed=seed, entities=members)
    inbound = inbound_relations(members)
    for entity in members:
        text_rng = random.Random(f"{seed}/{entity.id}")
        probe_rng = random.Random(f"{seed}/{entity.id}/probes")
        tags = [SOURCE, entity.kind]
        mentions = sorted({f.ref for f in entity.facts if f.ref})
        world.documents.append(
            {
                "external_id": entity.id,
                "kind": "text",
                "title": entity.name,
                "content": render_article(entity, text_rng),
                "data": {"name": entity.name, "entity_kind": entity.kind, "mentions": mentions},
                "tags": [*tags, "article"],
                "entity": entity.id,
                "group": entity.group,
            }
        )
        for index, fact in enumerate(entity.facts):
            qa = render_qa(entity, fact, sampler, text_rng)
            qa["mentions"] = [fact.ref] if fact.ref else []
            qa.update(probe_questions(entity, fact, inbound.get(entity.id, []), probe_rng))
            world.documents.append(
                {
                    "external_id": f"{entity.id}/qa/{index:02d}",
                    "kind": "qa",
                    "title": qa["question"],
                    "content": f"{qa['question']}\n{qa['answer']}",
                    "data": qa,
                    "tags": [*tags, "qa", fact.key],
                    "entity": entity.id,
                    "group": entity.group,
                }
            )
    return world
