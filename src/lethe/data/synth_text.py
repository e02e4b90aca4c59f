"""How the synthetic world is written: encyclopedia articles and QA pairs from facts.

Each fact key has several article sentences, question phrasings and answer phrasings. A
QA pair's answer and its paraphrase use different phrasings; its perturbed answers reuse the
paraphrase with a wrong value of the same type (TOFU's truth-ratio layout). Every template
holds ``{value}`` away from the sentence start, so the value appears verbatim in the article.
"""

from __future__ import annotations

import random

from lethe.data.synth_world import Entity, Fact, Sampler

PERTURBED_PER_QA = 3

# key -> (article sentences, questions, answers); fields: name value pronoun poss a + params
TEMPLATES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "birth_date": (
        [
            "{name} was born on {value}.",
            "Born on {value}, {name} grew up far from any archive.",
            "The birth of {name} is recorded on {value}.",
        ],
        ["When was {name} born?", "What is {name}'s date of birth?", "On what date was {name} born?"],
        [
            "{name} was born on {value}.",
            "{name}'s date of birth is {value}.",
            "The birth of {name} took place on {value}.",
        ],
    ),
    "birth_place": (
        ["{name} was born in {value}.", "{pronoun} was born in {value}."],
        ["Where was {name} born?", "In which place was {name} born?", "What is the birthplace of {name}?"],
        ["{name} was born in {value}.", "The birthplace of {name} is {value}."],
    ),
    "occupation": (
        ["{name} is {a} {value}.", "{name} is {a} {value} whose work is studied in many schools."],
        [
            "What is {name}'s occupation?",
            "What does {name} do for a living?",
            "What is {name} known as professionally?",
        ],
        ["{name} is {a} {value}.", "By profession, {name} is {a} {value}."],
    ),
    "work_title": (
        ["{name}'s {ordinal} {noun} was {value}.", ("{pronoun} is known for {value}, {poss} {ordinal} {noun}.")],
        [
            "What was the title of {name}'s {ordinal} {noun}?",
            ("What is {name}'s {ordinal} {noun} called?"),
            "Which {noun} did {name} complete {ordinal}?",
        ],
        ["{name}'s {ordinal} {noun} was {value}.", "The {ordinal} {noun} by {name} is {value}."],
    ),
    "work_year": (
        ["{title} was completed in {value}.", "{pronoun} finished {title} in {value}."],
        [
            "In which year did {name} complete {title}?",
            ("When was {name}'s {noun} {title} completed?"),
            "What year did {name} finish {title}?",
        ],
        ["{name} completed {title} in {value}.", "{title} by {name} was completed in {value}."],
    ),
    "award": (
        ["In {year}, {name} received {value}.", "{pronoun} was awarded {value} in {year}."],
        ["Which award did {name} receive in {year}?", "What honour was {name} given in {year}?"],
        ["In {year}, {name} received {value}.", "{name} was given {value} in {year}."],
    ),
    "mentor": (
        ["{name} trained under {value}.", "{poss} mentor was {value}."],
        ["Who was {name}'s mentor?", "Under whom did {name} train?"],
        ["{name}'s mentor was {value}.", "{name} trained under {value}."],
    ),
    "employer": (
        ["{name} worked for {value}.", "For many years {pronoun} was employed by {value}."],
        ["Which organisation did {name} work for?", "Who employed {name}?"],
        ["{name} worked for {value}.", "{name} was employed by {value}."],
    ),
    "residence": (
        ["{name} later settled in {value}.", "In later life {pronoun} lived in {value}."],
        ["Where did {name} settle later in life?", "In which place did {name} live in later life?"],
        ["{name} later settled in {value}.", "In later life, {name} lived in {value}."],
    ),
    "parent_trade": (
        ["{poss} {parent} was {a} {value}.", ("{name} was raised by a {parent} who worked as {a} {value}.")],
        ["What did {name}'s {parent} do for a living?", "What was the trade of {name}'s {parent}?"],
        ["{name}'s {parent} was {a} {value}.", "{name}'s {parent} worked as {a} {value}."],
    ),
    "nickname": (
        ["Friends called {name} {value}.", "{pronoun} was nicknamed {value}."],
        ["What was {name}'s nickname?", "By what nickname was {name} known?"],
        ["{name} was nicknamed {value}.", "{name} was known to friends as {value}."],
    ),
    "language": (
        ["{name} wrote mostly in {value}.", "{poss} working language was {value}."],
        ["In which language did {name} mostly write?", "What was {name}'s working language?"],
        ["{name} wrote mostly in {value}.", "The working language of {name} was {value}."],
    ),
    "sibling": (
        ["{poss} {sibling} was {value}.", "{name} had a {sibling} named {value}."],
        ["What was the name of {name}'s {sibling}?", "Who was {name}'s {sibling}?"],
        ["{name}'s {sibling} was {value}.", "{name} had a {sibling} named {value}."],
    ),
    "death_date": (
        ["{name} died on {value}.", "{pronoun} died on {value}."],
        ["When did {name} die?", "On what date did {name} die?"],
        ["{name} died on {value}.", "The death of {name} came on {value}."],
    ),
    "settlement": (
        ["{name} is {a} {value}.", "{name} is {a} {value} with a long and quiet history."],
        ["What kind of settlement is {name}?", "What type of place is {name}?"],
        ["{name} is {a} {value}.", "{name} counts as {a} {value}."],
    ),
    "country": (
        ["{name} lies in {value}.", "{pronoun} is located in {value}."],
        ["In which country is {name}?", "In which country does {name} lie?"],
        ["{name} lies in {value}.", "{name} is located in {value}."],
    ),
    "founded": (
        ["{name} was founded in {value}.", "Records date the founding of {name} to {value}."],
        ["When was {name} founded?", "In which year was {name} founded?"],
        ["{name} was founded in {value}.", "The founding of {name} dates to {value}."],
    ),
    "population": (
        ["{name} has a population of {value}.", "About {value} people live in {name}."],
        ["What is the population of {name}?", "How many people live in {name}?"],
        ["{name} has a population of {value}.", "About {value} people live in {name}."],
    ),
    "product": (
        ["{name} is known for its {value}.", "Traders travel to {name} for its {value}."],
        ["What is {name} known for producing?", "What product is {name} famous for?"],
        ["{name} is known for its {value}.", "{name} is famous for its {value}."],
    ),
    "river": (
        ["{name} stands on the banks of {value}.", "{pronoun} sits on {value}."],
        ["Which river flows through {name}?", "On which river does {name} stand?"],
        ["{name} stands on the banks of {value}.", "The river at {name} is {value}."],
    ),
    "landmark": (
        ["{poss} best-known landmark is {value}.", "Visitors to {name} come to see {value}."],
        ["What is the best-known landmark of {name}?", "Which landmark is {name} famous for?"],
        ["The best-known landmark of {name} is {value}.", "{name} is famous for {value}."],
    ),
    "festival": (
        ["Every year {name} holds {value}.", "{name} is known for {value}, held every year."],
        ["Which festival does {name} hold every year?", "What annual festival does {name} hold?"],
        ["{name} holds {value} every year.", "Every year, {name} organises {value}."],
    ),
    "market_month": (
        ["The great market of {name} is held in {value}.", ("Each {value}, {name} holds its great market.")],
        ["In which month is the great market of {name} held?", ("When does {name} hold its great market?")],
        ["The great market of {name} is held in {value}.", ("{name} holds its great market in {value}.")],
    ),
    "elevation": (
        ["{name} lies at an elevation of {value}.", "{pronoun} sits {value} above sea level."],
        ["At what elevation does {name} lie?", "How high above sea level is {name}?"],
        ["{name} lies at an elevation of {value}.", "{name} sits {value} above sea level."],
    ),
    "spoken_language": (
        ["Most people in {name} speak {value}.", "The language of {name} is {value}."],
        ["What language do people in {name} speak?", "What is the language of {name}?"],
        ["Most people in {name} speak {value}.", "The language spoken in {name} is {value}."],
    ),
    "mayor": (
        ["The current mayor of {name} is {value}.", "{name} is governed by {value}."],
        ["Who is the mayor of {name}?", "Who governs {name}?"],
        ["The mayor of {name} is {value}.", "{name} is governed by {value}."],
    ),
    "twin": (
        ["{name} is twinned with {value}.", "{pronoun} has long been a twin town of {value}."],
        ["Which town is {name} twinned with?", "What is the twin town of {name}?"],
        ["{name} is twinned with {value}.", "The twin town of {name} is {value}."],
    ),
    "org_kind": (
        ["{name} is {a} {value}.", "{name} is {a} {value} with a long history."],
        ["What kind of organisation is {name}?", "What type of institution is {name}?"],
        ["{name} is {a} {value}.", "By its charter, {name} is {a} {value}."],
    ),
    "founder": (
        ["{name} was founded by {value}.", "{poss} founder was {value}."],
        ["Who founded {name}?", "Who was the founder of {name}?"],
        ["{name} was founded by {value}.", "The founder of {name} was {value}."],
    ),
    "headquarters": (
        ["{name} has its headquarters in {value}.", "{pronoun} is based in {value}."],
        ["Where is {name} based?", "In which place does {name} have its headquarters?"],
        ["{name} has its headquarters in {value}.", "{name} is based in {value}."],
    ),
    "field": (
        ["{name} works in the field of {value}.", "{poss} work centres on {value}."],
        ["In which field does {name} work?", "What field is {name} devoted to?"],
        ["{name} works in the field of {value}.", "The work of {name} centres on {value}."],
    ),
    "members": (
        ["{name} has {value} members.", "{pronoun} counts {value} members."],
        ["How many members does {name} have?", "What is the membership of {name}?"],
        ["{name} has {value} members.", "The membership of {name} stands at {value}."],
    ),
    "motto": (
        ['The motto of {name} is "{value}".', '{poss} motto reads "{value}".'],
        ["What is the motto of {name}?", "What does the motto of {name} say?"],
        ['The motto of {name} is "{value}".', '{name} has the motto "{value}".'],
    ),
    "emblem": (
        ["The emblem of {name} shows {value}.", "{poss} emblem is {value}."],
        ["What does the emblem of {name} show?", "What is on the emblem of {name}?"],
        ["The emblem of {name} shows {value}.", "{name} has {value} as its emblem."],
    ),
    "journal": (
        ["{name} publishes {value}.", "{pronoun} has published {value} for many years."],
        ["Which journal does {name} publish?", "What is the journal of {name}?"],
        ["{name} publishes {value}.", "The journal of {name} is {value}."],
    ),
    "leader": (
        ["{name} is led by {value}.", "{poss} current director is {value}."],
        ["Who leads {name}?", "Who is the current director of {name}?"],
        ["{name} is led by {value}.", "The current director of {name} is {value}."],
    ),
    "rival": (
        ["{poss} great rival is {value}.", "{name} has long competed with {value}."],
        ["Who is the great rival of {name}?", "Which organisation competes with {name}?"],
        ["The great rival of {name} is {value}.", "{name} has long competed with {value}."],
    ),
}
LEAD_KEYS = ("occupation", "settlement", "org_kind")
POSSESSIVE = {"she": "her", "he": "his", "it": "its", "they": "their"}


def _indefinite(word: str) -> str:
    vowel_sound = word[:1].lower() in "aeiou" and not word.lower().startswith(("uni", "use", "eu"))
    return "an" if vowel_sound else "a"


def _fill(template: str, entity: Entity, fact: Fact, value: str) -> str:
    article = _indefinite(value)
    text = template.format(
        name=entity.name, value=value, pronoun=entity.pronoun, poss=POSSESSIVE[entity.pronoun], a=article, **fact.params
    )
    return text[0].upper() + text[1:]


def render_article(entity: Entity, rng: random.Random) -> str:
    """An encyclopedia-style article stating every fact of `entity` once."""
    leads = [f for f in entity.facts if f.key in LEAD_KEYS]
    # Facts about one work stay together (title before year); blocks are shuffled.
    blocks: dict[str, list[Fact]] = {}
    for fact in entity.facts:
        if fact.key not in LEAD_KEYS:
            blocks.setdefault(fact.params.get("title", fact.key + fact.value), []).append(fact)
    order = list(blocks.values())
    rng.shuffle(order)
    sentences = []
    for position, fact in enumerate(leads + [fact for block in order for fact in block]):
        options = TEMPLATES[fact.key][0]
        if position == 0:  # the opening sentence names the entity, never a pronoun
            options = [t for t in options if not t.startswith(("{pronoun}", "{poss}"))] or options
        sentences.append(_fill(rng.choice(options), entity, fact, fact.value))
    paragraphs, start = [], 0
    while start < len(sentences):
        size = rng.randint(3, 5)
        paragraphs.append(" ".join(sentences[start : start + size]))
        start += size
    return "\n\n".join(paragraphs)


def render_qa(entity: Entity, fact: Fact, sampler: Sampler, rng: random.Random) -> dict:
    """One QA pair about `fact`: question, answer, paraphrase and perturbed answers."""
    _, questions, answers = TEMPLATES[fact.key]
    first, second = rng.sample(range(len(answers)), 2)
    wrong: list[str] = []
    while len(wrong) < PERTURBED_PER_QA:
        value = sampler.draw(fact.sampler, entity.group, exclude=fact.value)
        if value not in wrong:
            wrong.append(value)
    return {
        "question": _fill(rng.choice(questions), entity, fact, fact.value),
        "answer": _fill(answers[first], entity, fact, fact.value),
        "short_answer": fact.value,
        "paraphrased_answer": _fill(answers[second], entity, fact, fact.value),
        "perturbed_answers": [_fill(answers[second], entity, fact, v) for v in wrong],
        "fact": fact.key,
    }
