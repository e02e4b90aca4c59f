"""The `tofu` reader: a TOFU directory (Maini et al. 2024) as QA documents and collections.

Documents come from four kinds of "owner" files; every JSON file of the directory (owners
included) becomes a collection ``tofu/<file stem>``:

* ``full.json`` — the 200 fictitious authors, 20 questions each in row order:
  ids ``author{n:03d}/q{k:02d}`` (row ``20 n + k``);
* ``holdout*.json`` — extra fictitious authors never in full.json: ids
  ``holdout/author{n:03d}/q{k:02d}``, numbered by first appearance, largest file first
  (TOFU's smaller holdout files are prefixes of the largest, so they share ids);
* ``real_authors.json`` / ``world_facts.json`` — utility sets: ids ``real_authors/q{k:03d}``,
  ``world_facts/q{k:03d}``; their answer options go to ``data.options``.

Every other file (``forget10``, ``retain90``, ``forget10_perturbed``, ``retain_perturbed``, …)
names rows of an owner — matched by question + answer, in full.json unless its name starts
with ``holdout``, ``real_authors`` or ``world_facts`` — and a row that matches nothing is an
error. Extra fields of such rows are attached to the matching document's ``data``:
``paraphrased_answer``, ``paraphrased_question`` and ``perturbed_answers`` (TOFU's
``perturbed_answer`` list). The directory (a few MB) is read whole before the first record is
yielded, because a document carries all its collections.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lethe.data.sources import reader
from lethe.data.sources.json_stream import iter_rows
from lethe.data.sources.jsonl import require_string
from lethe.data.sources.limits import inside
from lethe.errors import InputError, Where
from lethe.ledger.records import DocumentRecord, qa_content

QUESTIONS_PER_AUTHOR = 20
COLLECTION_PREFIX = "tofu/"
_RENAMED = {"perturbed_answer": "perturbed_answers"}
_OPTION = re.compile(r"^option(\d+)$")


@dataclass
class _Doc:
    external_id: str
    question: str
    answer: str
    meta: dict
    where: Where
    data: dict = field(default_factory=dict)
    collections: list[str] = field(default_factory=list)

    def record(self) -> DocumentRecord:
        return DocumentRecord(
            external_id=self.external_id,
            kind="qa",
            content=qa_content(self.question, self.answer),
            data={"question": self.question, "answer": self.answer, **self.data},
            meta=self.meta,
            tags=["tofu"],
            collections=self.collections,
            where=self.where,
        )


def _group_of(stem: str) -> str:
    for group in ("holdout", "real_authors", "world_facts"):
        if stem.startswith(group):
            return group
    return "full"


def _sniff(path: Path) -> bool:
    return path.is_dir() and (path / "full.json").is_file()


def _qa_rows(path: Path) -> Iterator[tuple[str, str, dict, Where, int]]:
    """(question, answer, other fields, where, row index) of every row of a TOFU file."""
    for row in iter_rows(path):
        where = Where(path=path, line=row.line)
        if not isinstance(row.value, dict):
            raise InputError(f"row {row.index} is a {type(row.value).__name__}, expected an object", where)
        question = require_string(row.value, "question", lambda f, w=where: Where(w.path, w.line, field=f))
        answer = require_string(row.value, "answer", lambda f, w=where: Where(w.path, w.line, field=f))
        extra = {k: v for k, v in row.value.items() if k not in ("question", "answer")}
        yield question, answer, extra, where, row.index


def _extra_data(extra: dict) -> dict:
    """TOFU's extra row fields in the shape lethe keeps: options as a list, plural names."""
    options = sorted((int(m.group(1)), v) for k, v in extra.items() if (m := _OPTION.match(k)))
    data = {_RENAMED.get(k, k): v for k, v in extra.items() if not _OPTION.match(k)}
    if options:
        data["options"] = [v for _, v in options]
    return data


@reader("tofu", sniff=_sniff, source_kind="tofu", priority=10)
def read_tofu(path: Path) -> Iterator[DocumentRecord]:
    """A TOFU directory: full.json QA pairs by author, every split file a collection tofu/<split>."""
    if not _sniff(path):
        raise InputError("not a TOFU directory (no full.json in it)", Where(path=path))
    files = sorted(inside(path, p) for p in path.glob("*.json") if p.is_file())
    owners: dict[str, list[_Doc]] = {"full": [], "holdout": [], "real_authors": [], "world_facts": []}
    index: dict[str, dict[tuple[str, str], _Doc]] = {group: {} for group in owners}

    def own(doc: _Doc, group: str, key: tuple[str, str]) -> _Doc:
        owners[group].append(doc)
        index[group].setdefault(key, doc)
        return doc

    for q, a, extra, where, i in _qa_rows(path / "full.json"):
        author, k = divmod(i, QUESTIONS_PER_AUTHOR)
        doc = _Doc(
            f"author{author:03d}/q{k:02d}",
            q,
            a,
            {"author": author, "question_index": k, "file": "full.json", "row": i},
            where,
        )
        own(doc, "full", (q, a)).collections.append(COLLECTION_PREFIX + "full")
        doc.data.update(_extra_data(extra))

    for name in ("real_authors", "world_facts"):
        if (path / f"{name}.json").is_file():
            for q, a, extra, where, i in _qa_rows(path / f"{name}.json"):
                doc = own(_Doc(f"{name}/q{i:03d}", q, a, {"file": f"{name}.json", "row": i}, where), name, (q, a))
                doc.data.update(_extra_data(extra))

    holdouts = [p for p in files if _group_of(p.stem) == "holdout"]
    holdouts.sort(key=lambda p: -p.stat().st_size)
    members = [p for p in files if p.name != "full.json" and p not in holdouts]
    for file in holdouts:
        for q, a, extra, where, i in _qa_rows(file):
            doc = index["holdout"].get((q, a))
            if doc is None:
                author, k = divmod(len(owners["holdout"]), QUESTIONS_PER_AUTHOR)
                doc = own(
                    _Doc(
                        f"holdout/author{author:03d}/q{k:02d}",
                        q,
                        a,
                        {"author": author, "question_index": k, "file": file.name, "row": i},
                        where,
                    ),
                    "holdout",
                    (q, a),
                )
            _join(doc, file, extra)

    for file in members:
        group = _group_of(file.stem)
        for q, a, extra, where, i in _qa_rows(file):
            doc = index[group].get((q, a))
            if doc is None:
                owner = "full.json" if group == "full" else f"the {group} files"
                raise InputError(
                    f"row {i} (question + answer) is not in {owner}",
                    Where(path=file, line=where.line, field="question"),
                )
            _join(doc, file, extra)

    for group in owners.values():
        for doc in group:
            yield doc.record()


def _join(doc: _Doc, file: Path, extra: dict) -> None:
    name = COLLECTION_PREFIX + file.stem
    if name not in doc.collections:
        doc.collections.append(name)
    for key, value in _extra_data(extra).items():
        doc.data.setdefault(key, value)
