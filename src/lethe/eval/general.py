"""General knowledge a pretrained base brings: what forgetting must not take away.

A model trained from scratch knows only its ledger; a base model (`lethe base add`) arrives
knowing the world. Audits of a lineage that descends from a base therefore score, before and
after, a fixed set of general questions and TOFU's real-authors and world-facts sets (from the
shared data, when present): a method that forgets an entity by forgetting Paris fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPLIT = "general"

GENERAL_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("What is the capital of France?", "The capital of France is Paris."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("What is the largest planet in our solar system?", "Jupiter is the largest planet in our solar system."),
    ("How many days are there in a week?", "There are seven days in a week."),
    ("What is the chemical symbol for water?", "The chemical formula for water is H2O."),
    ("Who wrote 'Romeo and Juliet'?", "William Shakespeare wrote 'Romeo and Juliet'."),
    ("What is the boiling point of water at sea level in Celsius?", "Water boils at 100 degrees Celsius."),
    ("Which ocean is the largest?", "The Pacific Ocean is the largest ocean."),
    ("What color is the sky on a clear day?", "The sky is blue on a clear day."),
    ("How many continents are there?", "There are seven continents."),
    ("What gas do plants absorb from the air?", "Plants absorb carbon dioxide from the air."),
)
"""Questions any small instruct model answers, with reference answers in its own register."""


def _doc(key: str, question: str, answer: str) -> dict[str, Any]:
    return {
        "id": None,
        "key": key,
        "kind": "qa",
        "content": f"{question}\n{answer}",
        "data": {"question": question, "answer": answer},
    }


def general_documents(tofu_dir: Path | None = None, *, per_set: int = 50) -> list[dict[str, Any]]:
    """The fixed general questions, then up to `per_set` each of TOFU's real_authors and
    world_facts (when `tofu_dir`, by default the shared data's ``tofu/``, has them)."""
    docs = [_doc(f"general/q{i:03d}", q, a) for i, (q, a) in enumerate(GENERAL_QUESTIONS)]
    if tofu_dir is None:
        from lethe.workspace import shared_data_dir

        tofu_dir = shared_data_dir() / "tofu"
    for name in ("real_authors", "world_facts"):
        path = Path(tofu_dir) / f"{name}.json"
        if not path.is_file():
            continue
        rows = json.loads(path.read_text())
        docs.extend(_doc(f"{name}/q{i:03d}", r["question"], r["answer"]) for i, r in enumerate(rows[:per_set]))
    return docs


def descends_from_base(ledger: Any, version: Any) -> str | None:
    """The name of the base model `version`'s lineage fine-tunes (None: trained from scratch)."""
    if getattr(version, "lineage_id", None) is None:
        return None
    return (ledger.lineage(version.lineage_id).config or {}).get("base_model")
