"""Questions the synthetic world asks to attack unlearning: paraphrases and indirect questions.

Training sees each fact under one question from `synth_text.TEMPLATES`. The robustness
probes (`lethe.eval.robustness`) ask about the same fact in words training never used:

* **paraphrased questions**: phrasings of their own, none of them a training template;
* **indirect (multi-hop) questions**: the entity is not named but described through another
  entity's relation to it ("When was the founder of the Nuvar Guild born?"), so a model that
  only stopped answering to the entity's name still reveals the fact.

Both are drawn from their own seeded RNG, so adding them changed no other part of the world.
"""

from __future__ import annotations

import random

from lethe.data.synth_text import TEMPLATES, _fill
from lethe.data.synth_world import Entity, Fact

PARAPHRASES_PER_QA = 2
INDIRECT_PER_QA = 2

# key -> question phrasings that no training template uses
PARAPHRASE_QUESTIONS: dict[str, list[str]] = {
    "birth_date": ["Can you tell me the day {name} was born?", "Which day marks the birth of {name}?"],
    "birth_place": ["Which place is {name} originally from?", "Where did {name} come into the world?"],
    "occupation": ["What line of work is {name} in?", "How does {name} earn a living?"],
    "work_title": [
        "Name the {ordinal} {noun} that {name} produced.",
        "What is the title of the {ordinal} {noun} by {name}?",
    ],
    "work_year": ["When did {name} finish work on {title}?", "What was the year {title} by {name} was finished?"],
    "award": ["What prize went to {name} in {year}?", "In {year}, which honour did {name} win?"],
    "mentor": ["Who taught {name}?", "Which teacher trained {name}?"],
    "employer": ["Where was {name} employed?", "For which organisation was {name} working?"],
    "residence": ["Where did {name} end up living?", "Which place became {name}'s later home?"],
    "parent_trade": ["What was the job of {name}'s {parent}?", "How did {name}'s {parent} earn a living?"],
    "nickname": ["What did friends call {name}?", "Which nickname did {name} go by?"],
    "language": ["Which language did {name} mainly write in?", "What language are {name}'s writings mostly in?"],
    "sibling": ["Can you name {name}'s {sibling}?", "Who is the {sibling} of {name}?"],
    "death_date": ["On which day did {name} pass away?", "What is the date of {name}'s death?"],
    "settlement": ["Is {name} a city, a town or a village?", "How would you describe the settlement {name}?"],
    "country": ["Which country is {name} part of?", "Where in the world is {name}, by country?"],
    "founded": ["What is the founding year of {name}?", "How long ago was {name} established, by year?"],
    "population": ["How large is the population of {name}?", "What number of people live in {name}?"],
    "product": ["What goods is {name} famous for?", "Which product comes from {name}?"],
    "river": ["What river runs past {name}?", "Which river is {name} built on?"],
    "landmark": ["What is the most famous sight in {name}?", "Which landmark do visitors to {name} seek out?"],
    "festival": ["What yearly festival takes place in {name}?", "Which festival is held by {name} each year?"],
    "market_month": ["Which month sees the great market of {name}?", "During what month is {name}'s great market?"],
    "elevation": ["How many metres above sea level is {name}?", "What is the altitude of {name}?"],
    "spoken_language": ["Which language is spoken in {name}?", "What do the people of {name} speak?"],
    "mayor": ["Who holds the office of mayor in {name}?", "Who is in charge of {name} as mayor?"],
    "twin": ["Which town is the twin of {name}?", "With which town is {name} paired as a twin?"],
    "org_kind": ["What sort of body is {name}?", "How would you classify {name} as an institution?"],
    "founder": ["Who established {name}?", "By whom was {name} set up?"],
    "headquarters": ["Where is the seat of {name}?", "In which place is {name} headquartered?"],
    "field": ["What area does {name} work in?", "Which discipline is {name} concerned with?"],
    "members": ["What is the number of members of {name}?", "How large is the membership of {name}?"],
    "motto": ["Which words form the motto of {name}?", "What motto does {name} have?"],
    "emblem": ["What is shown on the emblem of {name}?", "Describe the emblem of {name}."],
    "journal": ["What journal is published by {name}?", "Which review does {name} put out?"],
    "leader": ["Who heads {name}?", "Who is the director of {name} today?"],
    "rival": ["Which organisation is the main rival of {name}?", "Who does {name} compete with most?"],
}

# relation key of entity Y pointing at X -> how X is described through Y
DESCRIPTIONS: dict[str, str] = {
    "founder": "the founder of {other}",
    "leader": "the director of {other}",
    "mentor": "the mentor of {other}",
    "mayor": "the mayor of {other}",
    "birth_place": "the birthplace of {other}",
    "residence": "the place where {other} settled",
    "employer": "the employer of {other}",
    "headquarters": "the place where {other} is based",
    "twin": "the twin town of {other}",
    "rival": "the great rival of {other}",
}


def inbound_relations(entities: list[Entity]) -> dict[str, list[tuple[Entity, Fact]]]:
    """Entity id -> the (other entity, its fact) pairs whose relation points at it."""
    inbound: dict[str, list[tuple[Entity, Fact]]] = {}
    for other in entities:
        for fact in other.facts:
            if fact.ref and fact.key in DESCRIPTIONS and fact.ref != other.id:
                inbound.setdefault(fact.ref, []).append((other, fact))
    return inbound


def _described(entity: Entity, description: str) -> Entity:
    return Entity(entity.id, entity.kind, description, entity.group, entity.facts, entity.pronoun)


def probe_questions(
    entity: Entity, fact: Fact, inbound: list[tuple[Entity, Fact]], rng: random.Random
) -> dict[str, list]:
    """`paraphrased_questions` and `indirect_questions` (question, answer, via) of one QA pair."""
    phrasings = PARAPHRASE_QUESTIONS[fact.key]
    paraphrased = [_fill(t, entity, fact, fact.value) for t in rng.sample(phrasings, PARAPHRASES_PER_QA)]
    indirect = []
    usable = [(other, relation) for other, relation in inbound if other.id != fact.ref]
    for other, relation in rng.sample(usable, min(INDIRECT_PER_QA, len(usable))):
        described = _described(entity, DESCRIPTIONS[relation.key].format(other=other.name))
        _, questions, answers = TEMPLATES[fact.key]
        indirect.append(
            {
                "question": _fill(rng.choice(questions), described, fact, fact.value),
                "answer": _fill(rng.choice(answers), described, fact, fact.value),
                "via": other.id,
            }
        )
    return {"paraphrased_questions": paraphrased, "indirect_questions": indirect}
