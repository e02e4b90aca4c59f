"""The strings that identify forgotten documents, and a matcher for them.

Erasure redacts conversations, records and mentions that *quote* a forgotten document, so it
needs to say what quoting is. Three kinds of string, all compared after `normalise` (Unicode
NFKD with combining marks dropped, case folded, every run of non-alphanumerics one space — so
`Zoë O'Neil`, `ZOE O NEIL` and `zoe o'neil's` all match):

* **subject names**: the request's `--search` text and any names given with it;
* **name words**: words of 4+ letters that the forgotten documents capitalise inside a
  sentence (not the `What` opening one) and that no retained document contains (a surname
  like `Civarkhirk`, not `Jane`);
* **distinctive n-grams**: word bigrams and trigrams of the forgotten documents (title,
  content, every string of their structured data) with at least one word of 4+ characters,
  that no retained document contains — the name `Osric Tamberlo`, a book title, `born in 1723`
  when only they say it (`on a` never counts).

"Retained" is every current, unerased document outside the forget set. A text matches when
it contains any of these as whole words, or a name word of `INFIX_NAME_WORD_MIN`+ letters
inside a longer word: a small model's sampled reply may glue a forgotten name to the next
word (`Quenmarrowin`), and the workspace scan (`lethe.forget.scan`), which looks for the same
name words as bytes, would then find what the redaction missed. Redaction replaces the whole
glued word.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

PLACEHOLDER = "[redacted]"
"""What a redacted mention or field becomes."""
NAME_WORD_MIN = 4
INFIX_NAME_WORD_MIN = 5
"""Name words at least this long match inside longer words too (and the byte scan looks for them)."""
_NON_WORD = re.compile(r"[^0-9a-z]+")
_CAPITALISED = re.compile(r"\b[^\W\d_][^\W_]*")


def normalise(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form: lowercase ASCII-ish words, one space apart."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return _NON_WORD.sub(" ", stripped).strip()


def ngrams(words: list[str], sizes: Iterable[int] = (2, 3)) -> Iterator[str]:
    for n in sizes:
        for i in range(len(words) - n + 1):
            yield " ".join(words[i : i + n])


def strings_of(value) -> Iterator[str]:
    """Every string inside a JSON-like value (dict keys excluded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_of(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_of(item)


def document_texts(title: str | None, content: str | None, data) -> Iterator[str]:
    """The texts of a document that erasure and mention search look at."""
    if title:
        yield title
    if content:
        yield content
    yield from strings_of(data)


@dataclass
class ForgottenStrings:
    """The normalised strings a forget request matches (see the module docstring)."""

    subjects: list[str] = field(default_factory=list)
    name_words: set[str] = field(default_factory=set)
    ngrams: set[str] = field(default_factory=set)
    surfaces: set[str] = field(default_factory=set)
    """Subject names and name words as written (accents kept), for byte scans of files."""

    def __post_init__(self) -> None:
        self.subjects = sorted({normalise(x) for x in self.subjects if normalise(x)})

    def __bool__(self) -> bool:
        return bool(self.subjects or self.name_words or self.ngrams)

    def matches(self, text: str | None) -> list[str]:
        """The strings `text` contains (whole words, normalised), sorted; [] when none."""
        if not text:
            return []
        norm = normalise(text)
        if not norm:
            return []
        padded = f" {norm} "
        found = {s for s in self.subjects if f" {s} " in padded}
        words = norm.split()
        found |= self.name_words.intersection(words)
        found |= {w for w in self._infix_words() if w not in found and w in norm}
        found |= self.ngrams.intersection(ngrams(words))
        return sorted(found)

    def _infix_words(self) -> list[str]:
        return [w for w in self.name_words if len(w) >= INFIX_NAME_WORD_MIN]

    def matches_any(self, value) -> bool:
        return any(self.matches(text) for text in strings_of(value))

    def redact(self, text: str) -> str:
        """`text` with every matched span replaced by `PLACEHOLDER` (used for mentions).

        Spans are found on the original text by a word-boundary pattern per matched string
        that allows any punctuation or accents between and inside its words.
        """
        found = self.matches(text)
        if not found:
            return text
        text = unicodedata.normalize("NFD", text)
        infix = set(self._infix_words())
        for string in sorted(found, key=len, reverse=True):
            text = _span_pattern(string, inside_words=string in infix).sub(PLACEHOLDER, text)
        return unicodedata.normalize("NFC", text)

    def digest(self) -> str:
        """SHA-256 over the sorted strings: what receipts quote instead of the strings."""
        joined = "\n".join(sorted({*self.subjects, *self.name_words, *self.ngrams}))
        return hashlib.sha256(joined.encode()).hexdigest()

    def summary(self) -> dict:
        return {
            "subjects": len(self.subjects),
            "name_words": len(self.name_words),
            "ngrams": len(self.ngrams),
            "sha256": self.digest(),
            "how": "NFKD, accents dropped, case folded, punctuation as spaces; whole-word match",
        }


def _span_pattern(normalised: str, *, inside_words: bool = False) -> re.Pattern:
    """A pattern matching `normalised` in original text: each letter with any accents after it,
    words separated by any non-alphanumerics. `inside_words`: the match extends over the whole
    word it is glued into."""
    words = []
    for word in normalised.split():
        words.append("".join(re.escape(c) + r"[\u0300-\u036f]*" for c in word))
    body = r"[\W_]+".join(words)
    if inside_words:
        return re.compile(r"[^\W_]*" + body + r"[^\W_]*", re.IGNORECASE)
    return re.compile(r"(?<![^\W_])" + body + r"(?![^\W_])", re.IGNORECASE)


def candidate_strings(texts: Iterable[str]) -> tuple[dict[str, set[str]], set[str]]:
    """({normalised name word: its forms as written}, bigrams and trigrams) of the forgotten texts."""
    names: dict[str, set[str]] = {}
    grams: set[str] = set()
    for text in texts:
        text = unicodedata.normalize("NFC", text)
        for match in _CAPITALISED.finditer(text):
            word, norm = match.group(0), normalise(match.group(0))
            before = text[: match.start()].rstrip()
            opens_sentence = not before or before[-1] in ".?!:;\"'(\n"
            if word[0].isupper() and not opens_sentence and len(norm) >= NAME_WORD_MIN and " " not in norm:
                names.setdefault(norm, set()).add(word)
        grams.update(g for g in ngrams(normalise(text).split()) if max(map(len, g.split())) >= NAME_WORD_MIN)
    return names, grams


def distinctive_strings(
    forgotten_texts: Iterable[str], retained_texts: Iterable[str], *, subjects: Iterable[str] = ()
) -> ForgottenStrings:
    """The `ForgottenStrings` of forgotten texts against the retained ones (streamed once)."""
    names, grams = candidate_strings(forgotten_texts)
    for text in retained_texts:  # read to the end: an abandoned cursor would hold a read snapshot
        words = normalise(text).split()
        for word in words:
            names.pop(word, None)
        grams.difference_update(ngrams(words))
    subjects = [s.strip() for s in subjects if normalise(s)]
    return ForgottenStrings(
        subjects=sorted({normalise(s) for s in subjects}),
        name_words=set(names),
        ngrams=grams,
        surfaces={unicodedata.normalize("NFC", s) for s in subjects} | {w for forms in names.values() for w in forms},
    )
