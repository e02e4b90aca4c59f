"""The workspace scan: every file under the workspace, database files included, searched byte by
byte for the strings of forgotten documents.

The needles are the request's `ForgottenStrings` (subject names, name words of 5+ letters,
distinctive n-grams holding a number; see `needles`), matched case-insensitively with any one to three
non-alphanumeric bytes between words (`Jane Doe`, `jane_doe`, `JANE-DOE`), and, for non-ASCII
strings, in their UTF-8 (NFC and NFD) and JSON `\\u` escaped forms. A hit lists the path and
which string: that is what `grep -rIa` and `strings` would show. Files are read in blocks with
an overlap, so a large weights file costs a pass of I/O and no memory.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lethe.forget.distinctive import INFIX_NAME_WORD_MIN, ForgottenStrings, normalise

BLOCK = 1 << 22
SCAN_NAME_WORD_MIN = INFIX_NAME_WORD_MIN
"""Shorter single words are too likely to turn up by chance in binary weights (and the
redaction matches exactly these inside longer words, so what it leaves the scan does not find)."""


@dataclass(frozen=True)
class ScanHit:
    path: str
    """Relative to the workspace."""
    string: str
    """The normalised string found (the receipt lists its hash, not the string)."""
    count: int

    @property
    def kind(self) -> str:
        return "tokenizer" if is_tokenizer_file(self.path) else "other"


def is_tokenizer_file(path: str) -> bool:
    """A vocabulary file: `tokenizer.json`, `vocab.json`, `merges.txt`, `tokenizer_config.json`."""
    return Path(path).name in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json")


def _forms(string: str) -> set[str]:
    forms = set()
    for cased in {string, string.lower(), string.upper(), string.title()}:
        forms |= {unicodedata.normalize("NFC", cased), unicodedata.normalize("NFD", cased)}
    forms |= {json.dumps(f)[1:-1] for f in list(forms)}  # \u escapes, as an ASCII JSON writer keeps them
    return forms


_NOT_ALNUM = bytes(b if chr(b).isascii() and chr(b).isalnum() else 32 for b in range(256))
"""A `bytes.translate` table turning every byte but ASCII letters and digits into a space."""


@dataclass(frozen=True)
class _Needle:
    alternatives: tuple[bytes, ...]
    """Lower-case regular expressions, one per written form."""
    anchors: tuple[bytes, ...]
    """Per form, its longest ASCII alphanumeric run (lower case; empty if it has none): a block
    can hold the form only if its runs contain the anchor."""


def _needle(string: str) -> _Needle | None:
    alternatives, anchors = set(), set()
    for form in _forms(string):
        words = [w.encode().lower() for w in re.split(r"[^\w\\]+", form) if w]
        if not words:
            continue
        alternatives.add(rb"[^0-9a-z]{1,3}".join(re.escape(w) for w in words))
        runs = b" ".join(words).translate(_NOT_ALNUM).split()
        anchors.add(max(runs, key=len) if runs else b"")
    if not alternatives:
        return None
    return _Needle(tuple(sorted(alternatives)), tuple(sorted(anchors)))


class _Matcher:
    """Finds the needles in a block: Python's `re` runs an alternation of thousands of strings,
    case-insensitively, at about 0.2 MB/s, so a block's ASCII alphanumeric runs (lower-cased,
    deduplicated) are first checked for each needle's anchors, and only the needles that may be
    there go into the (cached, case-sensitive, on the lower-cased block) expression."""

    def __init__(self, strings: Iterable[str]) -> None:
        self.needles = [n for n in map(_needle, strings) if n is not None]
        self._patterns: dict[tuple[int, ...], re.Pattern[bytes]] = {}

    def finditer(self, lowered: bytes):
        runs = b" ".join(set(lowered.translate(_NOT_ALNUM).split()))
        chosen = tuple(i for i, n in enumerate(self.needles) if any(not a or a in runs for a in n.anchors))
        if not chosen:
            return iter(())
        pattern = self._patterns.get(chosen)
        if pattern is None:
            alternatives = {a for i in chosen for a in self.needles[i].alternatives}
            pattern = re.compile(b"(" + b"|".join(sorted(alternatives, key=len, reverse=True)) + b")")
            self._patterns[chosen] = pattern
        return pattern.finditer(lowered)


def needles(strings: ForgottenStrings) -> list[str]:
    """What the scan looks for: the subject's names, the documents' name words (5+ letters, as
    normalised and as written) and their distinctive n-grams that hold a number (a date, a year).
    Other n-grams are left to the ledger's own redaction: a regular expression of thousands of
    them would take minutes per file, and every forgotten fact that names someone or something
    is found by its name words."""
    words = {w for w in strings.name_words if len(w) >= SCAN_NAME_WORD_MIN}
    surfaces = {s for s in strings.surfaces if len(normalise(s)) >= SCAN_NAME_WORD_MIN}
    dated = {g for g in strings.ngrams if any(w.isdigit() and len(w) >= 3 for w in g.split())}
    return sorted({*strings.subjects, *words, *dated, *surfaces})


def _normal(found: bytes) -> str:
    text = found.decode("utf-8", errors="replace")
    if "\\u" in text:
        try:
            text = json.loads(f'"{text}"')
        except ValueError:
            pass
    return normalise(text)


def scan_file(path: Path, matcher: _Matcher, overlap: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    tail = b""
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            data = (tail + block).lower()  # ASCII only: what re.IGNORECASE does for bytes
            for match in matcher.finditer(data):
                if match.end() <= len(tail):
                    continue  # seen in the previous block
                key = _normal(match.group(0))
                counts[key] = counts.get(key, 0) + 1
            tail = data[-overlap:]
    return counts


def scan_workspace(home: Path, strings: ForgottenStrings, *, extra: Iterable[Path] = ()) -> list[ScanHit]:
    """Every hit of `strings` in every file under `home` (and in `extra` files, e.g. a ledger
    kept elsewhere), by path relative to `home`."""
    matcher = _Matcher(needles(strings))
    if not matcher.needles:
        return []
    overlap = 4 * max(len(n) for n in needles(strings)) + 16
    home = Path(home)
    files = sorted(p for p in home.rglob("*") if p.is_file())
    files += [Path(p) for p in extra if Path(p).is_file()]
    hits = []
    for path in files:
        try:
            counts = scan_file(path, matcher, overlap)
        except OSError:
            continue  # removed while scanning
        name = str(path.relative_to(home)) if path.is_relative_to(home) else str(path)
        hits += [ScanHit(name, string, n) for string, n in sorted(counts.items())]
    return hits


def summarise(hits: list[ScanHit]) -> dict:
    """For the receipt: hits by path (strings as SHA-256 digests), and whether only tokenizer
    files hold any."""
    import hashlib

    by_path: dict[str, dict] = {}
    for hit in hits:
        entry = by_path.setdefault(hit.path, {"path": hit.path, "kind": hit.kind, "hits": 0, "strings": []})
        entry["hits"] += hit.count
        entry["strings"].append(hashlib.sha256(hit.string.encode()).hexdigest()[:16])
    return {
        "clean": not hits,
        "only_tokenizer_files": bool(hits) and all(h.kind == "tokenizer" for h in hits),
        "files_with_hits": sorted(by_path.values(), key=lambda e: e["path"]),
    }
