"""Curation before training: clean extractor artifacts, drop empty and duplicate documents.

`curate(documents)` returns the documents to keep (cleaned copies; inputs are not
modified) and one `Decision` per action taken, for the ledger's changelog. In order:

1. clean: remove leftover ``[[File:…]]`` / ``[[Image:…]]`` lines and empty parentheses
   ``()``, ``( )``, ``(, )`` that WikiExtractor leaves where markup was; flag ``formula_N``
   placeholders (the math is lost and cannot be restored, so they are kept but noted);
2. drop near-empty documents (fewer than ``min_words`` words besides the title line);
3. drop exact duplicates (SHA-256 of the whitespace-normalised text) of an earlier document;
4. drop near duplicates: word-shingle MinHash with LSH banding to find candidates, then the
   exact Jaccard similarity of the shingle sets decides, against earlier kept documents of
   the same kind.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from lethe.errors import InputError, Where

FILE_LINE = re.compile(r"^[ \t]*\[\[(?:File|Image):.*$\n?", re.MULTILINE | re.IGNORECASE)
EMPTY_PARENS = re.compile(r"[ \t]*\((?:[\s,;:.–—-]|&nbsp;)*\)")
SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([,.;:])")
FORMULA = re.compile(r"\bformula_\d+\b")
WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class CurationConfig:
    """Thresholds of `curate`."""

    min_words: dict[str, int] = field(default_factory=lambda: {"text": 10, "qa": 3, "chat": 1})
    """Least words (title line excluded) a document of each kind needs; kinds not listed: 1."""
    near_duplicate_threshold: float = 0.8
    """Jaccard similarity of shingle sets at or above which a document is a near duplicate."""
    shingle_words: int = 5
    """Words per shingle; documents shorter than this are one shingle."""
    num_perm: int = 128
    """MinHash signature length (hash functions)."""
    bands: int = 32
    """LSH bands; ``num_perm / bands`` rows each. 32x4 finds pairs down to ~0.4 similarity,
    so recall at the threshold is near 1; exact Jaccard then removes false candidates."""
    seed: int = 0
    """Seed of the MinHash permutations (results do not depend on it beyond LSH recall)."""
    clean: bool = True
    """Remove extractor artifacts (otherwise only flag them)."""


@dataclass
class Decision:
    """One curation action on one document."""

    doc: dict
    """The input document (as given, before cleaning)."""
    action: str
    """``drop``, ``clean`` (kept with changed content) or ``flag`` (kept, noted)."""
    reason: str
    """Short machine-friendly reason: ``near-empty``, ``exact-duplicate``,
    ``near-duplicate``, ``file-lines``, ``empty-parentheses``, ``formula-placeholders``."""
    detail: dict = field(default_factory=dict)
    """Counts, the duplicated document's id, the similarity, …"""

    @property
    def doc_id(self) -> str:
        return str(self.doc.get("external_id", self.doc.get("id", self.doc.get("title", "?"))))


@dataclass
class CurationResult:
    """What `curate` returns."""

    kept: list[dict]
    """Documents to train on, in input order, with cleaned content."""
    decisions: list[Decision]
    """Every drop, clean and flag, in input order."""

    def summary(self) -> Counter:
        """Counts of (action, reason)."""
        return Counter((d.action, d.reason) for d in self.decisions)

    @property
    def dropped(self) -> list[Decision]:
        return [d for d in self.decisions if d.action == "drop"]


def clean_text(text: str) -> tuple[str, dict[str, int]]:
    """Text without file lines and empty parentheses, and counts of what was found."""
    counts = {
        "file-lines": len(FILE_LINE.findall(text)),
        "empty-parentheses": len(EMPTY_PARENS.findall(text)),
    }
    text = FILE_LINE.sub("", text)
    text = EMPTY_PARENS.sub("", text)
    # Spaces before punctuation are mostly what removing "()" leaves; counted so every change is recorded.
    counts["space-before-punctuation"] = len(SPACE_BEFORE_PUNCT.findall(text))
    text = SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return text, {k: v for k, v in counts.items() if v}


def _body(doc: dict, text: str) -> str:
    title = (doc.get("title") or "").strip()
    first, _, rest = text.strip().partition("\n")
    return rest if title and first.strip() == title else text


def _stable_hash32(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little")


class MinHasher:
    """MinHash signatures of word-shingle sets (32-bit shingle hashes, multiply-shift)."""

    def __init__(self, num_perm: int, shingle_words: int, seed: int):
        rng = np.random.default_rng(seed)
        # Multiply-shift hashing (Dietzfelbinger): h(x) = ((a*x + b) mod 2**64) >> 32, a odd.
        odd = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self.a = odd * np.uint64(2) + np.uint64(1)
        self.b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self.k = shingle_words
        self.token_hashes: dict[str, int] = {}

    def shingles(self, text: str) -> np.ndarray:
        """Sorted unique 32-bit hashes of the word k-grams of `text` (lower-cased)."""
        tokens = WORD.findall(text.lower())
        if not tokens:
            return np.zeros(0, dtype=np.uint64)
        cache = self.token_hashes
        for token in set(tokens).difference(cache):
            cache[token] = _stable_hash32(token)
        ids = np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))
        k = min(self.k, len(ids))
        combined = np.zeros(len(ids) - k + 1, dtype=np.uint64)
        for offset in range(k):  # polynomial rolling combination; uint64 wraps on purpose
            combined = combined * np.uint64(1000003) + ids[offset : offset + len(combined)]
        return np.unique(combined & np.uint64(0xFFFFFFFF))

    def signature(self, shingles: np.ndarray) -> np.ndarray:
        signature = np.full(len(self.a), np.iinfo(np.uint64).max, dtype=np.uint64)
        for start in range(0, len(shingles), 4096):  # bounded memory: num_perm x 4096
            block = shingles[start : start + 4096]
            hashed = (self.a[:, None] * block[None, :] + self.b[:, None]) >> np.uint64(32)
            signature = np.minimum(signature, hashed.min(axis=1))
        return signature


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique arrays."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


class NearDuplicateIndex:
    """LSH over MinHash signatures: `find` returns the best earlier match above threshold."""

    def __init__(self, config: CurationConfig):
        if config.num_perm % config.bands:
            raise InputError("num_perm must be a multiple of bands", Where(field="bands"))
        self.config = config
        self.hasher = MinHasher(config.num_perm, config.shingle_words, config.seed)
        self.rows = config.num_perm // config.bands
        self.buckets: list[dict[bytes, list[int]]] = [{} for _ in range(config.bands)]
        self.shingle_sets: list[np.ndarray] = []

    def _band_keys(self, signature: np.ndarray) -> list[bytes]:
        return [signature[i * self.rows : (i + 1) * self.rows].tobytes() for i in range(self.config.bands)]

    def add_or_match(self, text: str) -> tuple[int, float] | None:
        """(index, similarity) of an earlier added text this one nearly duplicates; else
        None, and the text is added to the index."""
        shingles = self.hasher.shingles(text)
        keys = self._band_keys(self.hasher.signature(shingles))
        candidates = {i for band, key in enumerate(keys) for i in self.buckets[band].get(key, ())}
        best = max(((jaccard(shingles, self.shingle_sets[i]), -i) for i in candidates), default=None)
        if best is not None and best[0] >= self.config.near_duplicate_threshold:
            return -best[1], best[0]
        index = len(self.shingle_sets)
        self.shingle_sets.append(shingles)
        for band, key in enumerate(keys):
            self.buckets[band].setdefault(key, []).append(index)
        return None


def curate(documents: Iterable[dict], config: CurationConfig | None = None) -> CurationResult:
    """Clean, then drop near-empty, exactly duplicated and nearly duplicated documents."""
    config = config or CurationConfig()
    kept: list[dict] = []
    decisions: list[Decision] = []
    seen_hashes: dict[str, dict] = {}
    indexes: dict[str, NearDuplicateIndex] = {}
    owners: dict[str, list[dict]] = {}
    for position, doc in enumerate(documents):
        content = doc.get("content") if isinstance(doc, dict) else None
        if not isinstance(content, str):
            raise InputError("a document needs a text 'content'", Where(field=f"documents[{position}].content"))
        kind = doc.get("kind", "text")
        text, found = clean_text(content) if config.clean else (content, {})
        notes = [
            Decision(doc, "clean" if config.clean else "flag", reason, {"count": n}) for reason, n in found.items()
        ]
        formulas = len(FORMULA.findall(text))
        if formulas:
            notes.append(Decision(doc, "flag", "formula-placeholders", {"count": formulas}))
        words = len(WORD.findall(_body(doc, text)))
        if words < config.min_words.get(kind, 1):
            decisions.append(Decision(doc, "drop", "near-empty", {"words": words}))
            continue
        digest = hashlib.sha256(" ".join(text.split()).encode()).hexdigest()
        if digest in seen_hashes:
            original = seen_hashes[digest]
            decisions.append(
                Decision(doc, "drop", "exact-duplicate", {"duplicate_of": _id(original), "sha256": digest})
            )
            continue
        index = indexes.setdefault(kind, NearDuplicateIndex(config))
        match = index.add_or_match(text)
        if match is not None:
            original = owners[kind][match[0]]
            decisions.append(
                Decision(
                    doc, "drop", "near-duplicate", {"duplicate_of": _id(original), "similarity": round(match[1], 4)}
                )
            )
            continue
        owners.setdefault(kind, []).append(doc)
        seen_hashes[digest] = doc
        decisions.extend(notes)
        kept.append({**doc, "content": text} if text != content else doc)
    return CurationResult(kept=kept, decisions=decisions)


def _id(doc: dict) -> str:
    return Decision(doc, "", "").doc_id
