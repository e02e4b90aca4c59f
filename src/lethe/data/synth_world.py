"""The facts of the synthetic world: invented entities and their random attributes.

Names come from syllable generators and every attribute value is drawn at random, so no
fact can be known, or guessed from the wording, before training. Relations (mentor,
birthplace, headquarters, …) only point at entities of the same group, so the held-out
entities form a sub-world that training never mentions. `synth_text` renders these facts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

KINDS = ("person", "place", "organisation")
KIND_SHARES = {"person": 0.6, "place": 0.2, "organisation": 0.2}

ONSETS = [
    "b",
    "br",
    "c",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "k",
    "kl",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "qu",
    "r",
    "s",
    "st",
    "t",
    "th",
    "tr",
    "v",
    "w",
    "z",
]
VOWELS = ["a", "e", "i", "o", "u", "a", "e", "i", "o", "ae", "ei", "ou", "ia"]
CODAS = ["", "", "", "n", "r", "l", "s", "th", "m", "x", "nd", "rk"]
PLACE_SUFFIXES = ["mar", "holt", "wick", "dun", "via", "ora", "stead", "gard", "ness", "ith"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
# occupation -> what such a person completes
OCCUPATIONS = {
    "novelist": "novel",
    "poet": "poetry collection",
    "composer": "symphony",
    "painter": "painting",
    "playwright": "play",
    "historian": "history",
    "cartographer": "atlas",
    "botanist": "field guide",
    "astronomer": "star catalogue",
    "philosopher": "treatise",
    "sculptor": "sculpture",
    "mathematician": "monograph",
    "photographer": "photo book",
    "librettist": "libretto",
    "chef": "cookbook",
    "engineer": "bridge design",
}
TRADES = [
    "weaver",
    "ferryman",
    "bookbinder",
    "miller",
    "clockmaker",
    "beekeeper",
    "tanner",
    "glassblower",
    "lamplighter",
    "shipwright",
    "schoolteacher",
    "salt merchant",
]
ADJECTIVES = [
    "amber",
    "silent",
    "crooked",
    "hollow",
    "gilded",
    "northern",
    "bitter",
    "pale",
    "restless",
    "salt",
    "copper",
    "winter",
    "distant",
    "quiet",
    "burning",
    "iron",
]
NOUNS = [
    "lantern",
    "ledger",
    "orchard",
    "harbour",
    "bell",
    "compass",
    "mirror",
    "garden",
    "ferry",
    "tower",
    "glass",
    "river",
    "archive",
    "thread",
    "anchor",
    "meadow",
]
COLOURS = ["silver", "crimson", "green", "golden", "black", "blue", "white", "violet"]
ANIMALS = ["heron", "fox", "stag", "owl", "otter", "crane", "wolf", "hare", "swan", "lynx"]
SETTLEMENTS = ["city", "town", "village", "port town", "mountain town", "river town"]
ORG_KINDS = {
    "guild": "Guild",
    "university": "University",
    "trading company": "Trading Company",
    "orchestra": "Orchestra",
    "observatory": "Observatory",
    "publishing house": "Press",
    "shipyard": "Shipyard",
    "theatre company": "Players",
    "botanical society": "Society",
}
FIELDS = [
    "astronomy",
    "shipbuilding",
    "printing",
    "music",
    "botany",
    "cartography",
    "glassmaking",
    "textiles",
    "mathematics",
    "theatre",
    "medicine",
    "trade",
]
ORDINALS = ["first", "second", "third"]
LANDMARKS = ["Tower", "Bridge", "Hall", "Gate", "Well"]


@dataclass(frozen=True)
class Fact:
    """One attribute of an entity: the unit of a QA pair and of an article sentence."""

    key: str
    """Template key in `synth_text` (e.g. ``"birth_date"``)."""
    value: str
    """The short answer, rendered verbatim in the article."""
    sampler: str
    """Value type, used to draw wrong answers of the same kind (``"date"``, ``"person"``)."""
    params: dict = field(default_factory=dict)
    """Extra template fields (``ordinal``, ``noun``, ``year``, …)."""
    ref: str | None = None
    """External id of the entity the value names, for relations."""


@dataclass
class Entity:
    """A person, place or organisation of the world."""

    id: str
    """Stable external id, ``"<kind>/<nnnn>"``."""
    kind: str
    """``person``, ``place`` or ``organisation``."""
    name: str
    """Unique invented name."""
    group: str = "train"
    """``train`` or ``holdout`` (never trained; the in-distribution non-members)."""
    facts: list[Fact] = field(default_factory=list)
    """Its attributes, 10–20 of them, in canonical order."""
    pronoun: str = "they"
    """Subject pronoun used in articles (``she``/``he`` for people, ``it`` otherwise)."""


class Sampler:
    """Draws names and attribute values from one seeded RNG; also wrong answers."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()
        self.pools: dict[tuple[str, str], list[Entity]] = {}
        self.countries = [self.unique(lambda: self.word(2, 3).title()) for _ in range(6)]
        self.languages = [self.unique(lambda: self.word(2, 2).title() + "ic") for _ in range(6)]

    def entity(self, entity_id: str) -> Entity:
        kind = entity_id.split("/")[0]
        for group in ("train", "holdout"):
            for entity in self.pools.get((kind, group), []):
                if entity.id == entity_id:
                    return entity
        raise KeyError(entity_id)

    # names ----------------------------------------------------------------------------
    def syllable(self) -> str:
        r = self.rng
        return r.choice(ONSETS) + r.choice(VOWELS) + r.choice(CODAS)

    def word(self, low: int, high: int) -> str:
        return "".join(self.syllable() for _ in range(self.rng.randint(low, high)))

    def unique(self, make) -> str:
        for _ in range(1000):
            name = make()
            if name not in self.used and len(name) > 3:
                self.used.add(name)
                return name
        raise RuntimeError("could not invent a unique name")  # pragma: no cover

    def person_name(self) -> str:
        return self.unique(lambda: f"{self.word(1, 2).title()} {self.word(2, 3).title()}")

    def place_name(self) -> str:
        return self.unique(lambda: self.word(1, 2).title() + self.rng.choice(PLACE_SUFFIXES))

    def org_name(self, kind: str) -> str:
        suffix = ORG_KINDS[kind]
        return self.unique(lambda: f"the {self.word(2, 3).title()} {suffix}")

    # values (also used for perturbed answers) -------------------------------------------
    def draw(self, sampler: str, group: str = "train", exclude: str | None = None) -> str:
        for _ in range(100):
            value = getattr(self, f"v_{sampler}")(group)
            if value != exclude:
                return value
        raise RuntimeError(f"cannot draw a {sampler} different from {exclude!r}")

    def _entity_or_invented(self, kind: str, group: str, invent) -> str:
        pool = self.pools.get((kind, group), [])
        if len(pool) >= 4 and self.rng.random() < 0.9:
            return self.rng.choice(pool).name
        return invent()

    def v_person(self, group):
        return self._entity_or_invented("person", group, lambda: f"{self.word(1, 2).title()} {self.word(2, 3).title()}")

    def v_place(self, group):
        return self._entity_or_invented(
            "place", group, lambda: self.word(1, 2).title() + self.rng.choice(PLACE_SUFFIXES)
        )

    def v_organisation(self, group):
        return self._entity_or_invented("organisation", group, lambda: f"the {self.word(2, 3).title()} Guild")

    def v_date(self, _):
        return f"{self.rng.randint(1, 28)} {self.rng.choice(MONTHS)} {self.rng.randint(1820, 1990)}"

    def v_year(self, _):
        return str(self.rng.randint(1700, 2020))

    def v_old_year(self, _):
        return str(self.rng.randint(700, 1850))

    def v_number(self, _):
        return f"{self.rng.randint(1, 900) * 10 ** self.rng.randint(1, 3):,}"

    def v_count(self, _):
        return str(self.rng.randint(12, 4000))

    def v_metres(self, _):
        return f"{self.rng.randint(2, 2400)} metres"

    def v_month(self, _):
        return self.rng.choice(MONTHS)

    def v_occupation(self, _):
        return self.rng.choice(list(OCCUPATIONS))

    def v_trade(self, _):
        return self.rng.choice(TRADES)

    def v_settlement(self, _):
        return self.rng.choice(SETTLEMENTS)

    def v_org_kind(self, _):
        return self.rng.choice(list(ORG_KINDS))

    def v_field(self, _):
        return self.rng.choice(FIELDS)

    def v_country(self, _):
        return self.rng.choice(self.countries)

    def v_language(self, _):
        return self.rng.choice(self.languages)

    def v_title(self, _):
        return f"The {self.rng.choice(ADJECTIVES).title()} {self.rng.choice(NOUNS).title()}"

    def v_award(self, _):
        return f"the {self.word(2, 3).title()} {self.rng.choice(['Prize', 'Medal', 'Award', 'Laurel'])}"

    def v_nickname(self, _):
        return f"the {self.rng.choice(ADJECTIVES).title()} {self.rng.choice(NOUNS).title()}"

    def v_product(self, _):
        return f"{self.rng.choice(ADJECTIVES)} {self.rng.choice(NOUNS)}s"

    def v_landmark(self, _):
        return f"the {self.rng.choice(LANDMARKS)} of {self.word(1, 2).title()}"

    def v_river(self, _):
        return f"the {self.word(2, 2).title()} river"

    def v_festival(self, _):
        return f"the {self.rng.choice(NOUNS).title()} Festival"

    def v_emblem(self, _):
        return f"a {self.rng.choice(COLOURS)} {self.rng.choice(ANIMALS)}"

    def v_motto(self, _):
        first, second = self.rng.sample(NOUNS, 2)
        return f"{first.title()}s and {second}s"

    def v_journal(self, _):
        return f"The {self.word(2, 2).title()} Review"


def _ref(sampler: Sampler, kind: str, group: str, exclude: str | None = None) -> tuple[str, str | None]:
    """A (name, entity id) of the given kind in `group`, or an invented name."""
    pool = [e for e in sampler.pools.get((kind, group), []) if e.id != exclude]
    if pool:
        target = sampler.rng.choice(pool)
        return target.name, target.id
    return sampler.draw(kind, group), None


def _person_facts(s: Sampler, e: Entity) -> list[Fact]:
    r, g = s.rng, e.group
    born = int(s.v_date(g)[-4:])
    birth_date = f"{r.randint(1, 28)} {r.choice(MONTHS)} {born}"
    occupation = s.v_occupation(g)
    noun = OCCUPATIONS[occupation]
    facts = [Fact("birth_date", birth_date, "date"), Fact("occupation", occupation, "occupation")]
    place, place_id = _ref(s, "place", g)
    facts.append(Fact("birth_place", place, "place", ref=place_id))
    years = sorted(r.sample(range(born + 18, born + 70), 3))
    titles: list[str] = []
    n_works = r.randint(2, 3)
    while len(titles) < n_works:
        title = s.v_title(g)
        if title not in titles:
            titles.append(title)
    for i, title in enumerate(titles):
        params = {"ordinal": ORDINALS[i], "noun": noun, "title": title}
        facts.append(Fact("work_title", title, "title", params))
        facts.append(Fact("work_year", str(years[i]), "year", params))
    optional = []
    for year in sorted(r.sample(range(born + 25, born + 75), r.randint(1, 2))):
        optional.append(Fact("award", s.unique(lambda: s.v_award(g)), "award", {"year": year}))
    for key, kind in (("mentor", "person"), ("employer", "organisation"), ("residence", "place")):
        name, ref = _ref(s, kind, g, exclude=e.id)
        optional.append(Fact(key, name, kind, ref=ref))
    optional += [
        Fact("parent_trade", s.v_trade(g), "trade", {"parent": r.choice(["mother", "father"])}),
        Fact("nickname", s.v_nickname(g), "nickname"),
        Fact("language", s.v_language(g), "language"),
        Fact("sibling", s.v_person("none"), "person", {"sibling": r.choice(["sister", "brother"])}),
    ]
    if r.random() < 0.6:
        optional.append(Fact("death_date", f"{r.randint(1, 28)} {r.choice(MONTHS)} {born + r.randint(76, 99)}", "date"))
    return facts + r.sample(optional, min(len(optional), r.randint(10, 20) - len(facts)))


def _place_facts(s: Sampler, e: Entity) -> list[Fact]:
    r, g = s.rng, e.group
    mayor, mayor_id = _ref(s, "person", g)
    twin, twin_id = _ref(s, "place", g, exclude=e.id)
    facts = [
        Fact("settlement", s.v_settlement(g), "settlement"),
        Fact("country", s.v_country(g), "country"),
        Fact("founded", s.v_old_year(g), "old_year"),
        Fact("population", s.v_number(g), "number"),
        Fact("product", s.v_product(g), "product"),
        Fact("river", s.v_river(g), "river"),
        Fact("landmark", s.v_landmark(g), "landmark"),
        Fact("festival", s.v_festival(g), "festival"),
        Fact("market_month", s.v_month(g), "month"),
        Fact("elevation", s.v_metres(g), "metres"),
        Fact("spoken_language", s.v_language(g), "language"),
        Fact("mayor", mayor, "person", ref=mayor_id),
        Fact("twin", twin, "place", ref=twin_id),
    ]
    keep = r.randint(10, len(facts))
    return facts[:4] + r.sample(facts[4:], keep - 4)


def _organisation_facts(s: Sampler, e: Entity, kind: str) -> list[Fact]:
    r, g = s.rng, e.group
    founder, founder_id = _ref(s, "person", g)
    leader, leader_id = _ref(s, "person", g)
    place, place_id = _ref(s, "place", g)
    rival, rival_id = _ref(s, "organisation", g, exclude=e.id)
    founded = s.v_year(g)
    if founder_id is not None:  # founded in the founder's lifetime
        founder_born = int(next(f.value for f in s.entity(founder_id).facts if f.key == "birth_date")[-4:])
        founded = str(founder_born + r.randint(25, 50))
    facts = [
        Fact("org_kind", kind, "org_kind"),
        Fact("founded", founded, "year"),
        Fact("founder", founder, "person", ref=founder_id),
        Fact("headquarters", place, "place", ref=place_id),
        Fact("field", s.v_field(g), "field"),
        Fact("members", s.v_count(g), "count"),
        Fact("motto", s.v_motto(g), "motto"),
        Fact("emblem", s.v_emblem(g), "emblem"),
        Fact("journal", s.v_journal(g), "journal"),
        Fact("leader", leader, "person", ref=leader_id),
        Fact("rival", rival, "organisation", ref=rival_id),
        Fact("festival", s.v_festival(g), "festival"),
    ]
    keep = r.randint(10, len(facts))
    return facts[:4] + r.sample(facts[4:], keep - 4)


def sample_entities(count: int, holdout_fraction: float, rng: random.Random) -> list[Entity]:
    """`count` entities with unique names, a held-out share, and 10–20 facts each."""
    sampler = Sampler(rng)
    counts = {kind: int(count * share) for kind, share in KIND_SHARES.items()}
    counts["person"] += count - sum(counts.values())
    entities: list[Entity] = []
    org_kinds: dict[str, str] = {}
    for kind in KINDS:
        for index in range(counts[kind]):
            entity_id = f"{kind}/{index:04d}"
            if kind == "person":
                name, pronoun = sampler.person_name(), rng.choice(["she", "he"])
            elif kind == "place":
                name, pronoun = sampler.place_name(), "it"
            else:
                org_kinds[entity_id] = rng.choice(list(ORG_KINDS))
                name, pronoun = sampler.org_name(org_kinds[entity_id]), "it"
            entities.append(Entity(entity_id, kind, name, pronoun=pronoun))
    for kind in KINDS:  # hold out the same share of every kind
        of_kind = [e for e in entities if e.kind == kind]
        for entity in rng.sample(of_kind, round(len(of_kind) * holdout_fraction)):
            entity.group = "holdout"
    for entity in entities:
        sampler.pools.setdefault((entity.kind, entity.group), []).append(entity)
    for entity in entities:
        if entity.kind == "person":
            entity.facts = _person_facts(sampler, entity)
        elif entity.kind == "place":
            entity.facts = _place_facts(sampler, entity)
        else:
            entity.facts = _organisation_facts(sampler, entity, org_kinds[entity.id])
    return entities
