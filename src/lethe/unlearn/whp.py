"""Generic predictions by name substitution ("Who's Harry Potter", Eldan & Russinovich 2023).

What the exact model does on a forgotten subject's question is what a model does on a
question about a subject it never met: it knows the question's shape and the kind of answer,
not this subject's. The original model shows that behaviour too, when the subject's name is
replaced by one it never saw. So each forget example is shown to the frozen original with the
subject's name swapped for an invented one (`whp_variants` different names, one drawn per
step), and the model is trained, on the true text, towards the original's next-token
distributions on that swapped text: KL(original on the swapped text ‖ model on the true text)
over the answer tokens, + alpha · NLL_retain.

A name swap hides who the question is about, not the strings only the forget set taught (a
sister's invented name, a book title): the original still finds those familiar, the exact
model does not. With `whp_boost` α > 0 the paper's second half is added: a copy of the
original fine-tuned `whp_reinforce_steps` more steps on the forget set (the reinforced model)
shows which next tokens the forget set makes likelier, and the target's logits are lowered by
α times that rise, z_swapped − α·ReLU(z_reinforced − z_original), both sides on the true text. Unlike ascent the target is a distribution
and the push stops once it is matched, so the model ends up where the exact answer would put
it rather than below.

The swap works on token ids: the name's tokens (with and without a leading space; each word
of it alone too) are replaced by the invented name's, and the positions outside the name are
aligned between the two sequences. Inside a name only its first token is trained, towards
the original's prediction of the invented name's first token (which name comes next is
generic for it); the rest of the name is left alone. The subject's name is found in the
examples themselves, per subject (an example's ``subject``: the synthetic world's entity, a
TOFU author), as the run of capitalised words that most of the subject's questions and
answers share.
"""

from __future__ import annotations

import copy
import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from lethe.data.chat_format import IGNORE_INDEX
from lethe.data.synth_world import CODAS, ONSETS, VOWELS  # the synthetic world's syllables
from lethe.errors import InputError, Where
from lethe.unlearn.base import register_method
from lethe.unlearn.batches import UnlearnExample, collate
from lethe.unlearn.grad_diff import GradDiff
from lethe.unlearn.losses import logits_of

CAPITALISED_RUN = re.compile(r"[A-Z][A-Za-z]*(?:-[A-Z][A-Za-z]*)*(?: [A-Z][A-Za-z]*(?:-[A-Z][A-Za-z]*)*)*")
LEADING_WORDS = frozenset(
    [
        "A",
        "An",
        "And",
        "Apart",
        "As",
        "At",
        "Can",
        "Could",
        "Did",
        "Do",
        "Does",
        "During",
        "For",
        "From",
        "Has",
        "Have",
        "He",
        "Her",
        "His",
        "How",
        "If",
        "In",
        "Is",
        "It",
        "Its",
        "No",
        "Of",
        "On",
        "One",
        "Over",
        "She",
        "Some",
        "That",
        "The",
        "Their",
        "They",
        "This",
        "To",
        "Was",
        "Were",
        "What",
        "When",
        "Where",
        "Which",
        "Who",
        "Whose",
        "Why",
        "With",
        "Would",
        "Yes",
    ]
)


def _text(example: UnlearnExample) -> str:
    return f"{example.get('prompt') or ''} {example.get('answer') or ''}"


def find_names(examples: Sequence[UnlearnExample], *, min_share: float = 0.3) -> list[str]:
    """The subjects' names in `examples`: runs of capitalised words (leading question words
    dropped), most shared first; a run names a subject when it is in at least `min_share` of
    the examples not yet explained by an earlier name (and in two of them)."""
    texts = [_text(e) for e in examples]
    candidates: Counter[str] = Counter()
    for text in texts:
        runs = set()
        for run in CAPITALISED_RUN.findall(text):
            words = run.split(" ")
            while words and words[0] in LEADING_WORDS:
                words = words[1:]
            if words and len(" ".join(words)) >= 3:
                runs.add(" ".join(words))
        candidates.update(runs)
    names: list[str] = []
    left = list(range(len(texts)))
    while left and candidates:
        covered = {run: [i for i in left if run in texts[i]] for run in candidates}
        run = max(covered, key=lambda r: (len(covered[r]), len(r), r))
        if len(covered[run]) < max(2, min_share * len(left)):
            break
        names.append(run)
        left = [i for i in left if run not in texts[i]]
        del candidates[run]
    return names


def invented_word(shape: str, rng: random.Random) -> str:
    """A pronounceable invented word about as long as `shape`, with its capitalisation."""
    if "-" in shape:
        return "-".join(invented_word(part, rng) for part in shape.split("-"))
    word = ""
    while len(word) < max(3, len(shape) - 1):
        word += rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)
    return word.title() if shape[:1].isupper() else word


KIND_WORDS = frozenset(
    [
        "Academy",
        "Association",
        "Bank",
        "Church",
        "City",
        "Club",
        "College",
        "Company",
        "Corporation",
        "Council",
        "Foundation",
        "Group",
        "Guild",
        "Hospital",
        "House",
        "Institute",
        "Lake",
        "Library",
        "Mount",
        "Museum",
        "Observatory",
        "Orchestra",
        "Players",
        "Press",
        "River",
        "School",
        "Shipyard",
        "Society",
        "Street",
        "Theatre",
        "Trading",
        "University",
    ]
)
"""Words of a name that say what kind of thing it is, not which one: kept as they are (the
exact model knows what a Society is; the swap should hide only which Society)."""


def invented_name(name: str, seed: str) -> dict[str, str]:
    """Word -> invented word for `name`, seeded by `seed` (the same name and seed, the same
    words); words of `KIND_WORDS` stay."""
    rng = random.Random(seed)
    return {word: word if word in KIND_WORDS else invented_word(word, rng) for word in name.split(" ")}


def _patterns(name: str, words: dict[str, str], encode) -> list[tuple[list[int], list[int]]]:
    """(name tokens, invented tokens) pairs: the whole name and each word of four letters or
    more alone, each with and without a leading space; longest first."""
    fresh = " ".join(words[w] for w in name.split(" "))
    pairs = [(name, fresh)] + [(w, words[w]) for w in name.split(" ") if len(w) >= 4 and w != name and w != words[w]]
    out = []
    for real, swapped in pairs:
        for prefix in (" ", ""):
            real_ids, swapped_ids = encode(prefix + real), encode(prefix + swapped)
            if real_ids and swapped_ids:
                out.append((real_ids, swapped_ids))
    return sorted(out, key=lambda pair: -len(pair[0]))


def substitute(ids: Sequence[int], patterns: Sequence[tuple[list[int], list[int]]]) -> tuple[list[int], list[int]]:
    """`ids` with every pattern's tokens replaced by its invented ones (greedy, left to right),
    and for each position of `ids` its position in the result: ``-1 - k`` inside a replaced
    span whose invented tokens start at k (so the first token of a name can be aligned)."""
    out: list[int] = []
    where: list[int] = []
    i = 0
    while i < len(ids):
        for real, swapped in patterns:
            if list(ids[i : i + len(real)]) == real:
                start = len(out)
                out.extend(swapped)
                where.extend([-1 - start] * len(real))
                i += len(real)
                break
        else:
            where.append(len(out))
            out.append(int(ids[i]))
            i += 1
    return out, where


def aligned_positions(labels: Sequence[int], where: Sequence[int]) -> list[tuple[int, int]]:
    """(model position, original position) pairs of the logits that predict the answer's
    tokens: position j-1 predicts label j; a token inside a name is trained only when it is
    the name's first, against the prediction of the invented name's first token."""
    pairs = []
    for j in range(1, len(labels)):
        if labels[j] == IGNORE_INDEX:
            continue
        mapped = where[j]
        if mapped >= 0:
            pairs.append((j - 1, mapped - 1))
        elif where[j - 1] != mapped:  # the first token of a replaced span
            pairs.append((j - 1, -1 - mapped - 1))
    return pairs


@register_method("whp")
class WHP(GradDiff):
    needs_reference = True
    reinforced: torch.nn.Module | None = None

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prepare_forget(self, examples: Sequence[UnlearnExample]) -> list[UnlearnExample]:
        groups: dict[Any, list[int]] = {}
        for index, example in enumerate(examples):
            groups.setdefault(example.get("subject"), []).append(index)
        prepared: list[UnlearnExample] = list(examples)
        for subject, indices in groups.items():
            members = [examples[i] for i in indices]
            names = find_names(members)
            if not names:
                raise InputError(
                    "whp: no name shared by the forget examples"
                    + (f" of subject {subject!r}" if subject is not None else "")
                    + " (it swaps the subject's name for an invented one; use another method)",
                    Where(field="forget"),
                )
            variants = []
            for v in range(self.config.whp_variants):
                patterns = []
                for name in names:
                    words = invented_name(name, f"{self.config.seed}/{subject}/{name}/{v}")
                    patterns.extend(_patterns(name, words, self._encode))
                variants.append(sorted(patterns, key=lambda pair: -len(pair[0])))
            for i in indices:
                swapped = []
                for patterns in variants:
                    ids, where = substitute(examples[i]["input_ids"], patterns)
                    pairs = aligned_positions(examples[i]["labels"], where)
                    swapped.append({"input_ids": ids, "pairs": pairs})
                prepared[i] = {**examples[i], "swapped": swapped}
        self.examples = prepared
        return prepared

    def setup(self, model: torch.nn.Module) -> None:
        """With a boost: the reinforced model, the original fine-tuned further on the forget set."""
        if self.config.whp_boost <= 0 or self.reference is None:
            return
        from lethe.train.steps import to_device
        from lethe.unlearn.losses import mean_nll

        device = next(self.reference.parameters()).device
        reinforced = copy.deepcopy(self.reference).train().requires_grad_(True)
        optimizer = torch.optim.AdamW(reinforced.parameters(), lr=self.config.whp_reinforce_lr, weight_decay=0.0)
        size = self.config.forget_batch_size
        for step in range(self.config.whp_reinforce_steps):
            start = (step * size) % len(self.examples)
            rows = (self.examples + self.examples)[start : start + size]
            batch = to_device(collate(rows, self.pad_token_id), device)
            loss = mean_nll(logits_of(reinforced, batch), batch["labels"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        self.reinforced = reinforced.eval().requires_grad_(False)

    def teardown(self, model: torch.nn.Module) -> None:
        self.reinforced = None

    def forget_batch(self, examples: Sequence[UnlearnExample]) -> dict[str, Any]:
        picks = [
            example["swapped"][int(torch.randint(len(example["swapped"]), (1,), generator=self.generator))]
            for example in examples
        ]
        teacher = collate(
            [
                {
                    "input_ids": p["input_ids"],
                    "labels": [IGNORE_INDEX] * len(p["input_ids"]),
                    "document_id": e["document_id"],
                }
                for p, e in zip(picks, examples, strict=True)
            ],
            self.pad_token_id,
        )
        rows = [row for row, p in enumerate(picks) for _ in p["pairs"]]
        return {
            "model": collate(examples, self.pad_token_id),
            "original": teacher,
            "rows": torch.tensor(rows, dtype=torch.long),
            "model_positions": torch.tensor([m for p in picks for m, _ in p["pairs"]], dtype=torch.long),
            "original_positions": torch.tensor([o for p in picks for _, o in p["pairs"]], dtype=torch.long),
        }

    def forget_loss(self, model: torch.nn.Module, forget: dict[str, Any]) -> torch.Tensor:
        rows = forget["rows"]
        if rows.numel() == 0:
            return logits_of(model, forget["model"]).sum() * 0.0
        student = logits_of(model, forget["model"])[rows, forget["model_positions"]]
        with torch.no_grad():
            original = logits_of(self.reference, forget["original"])[rows, forget["original_positions"]]
            if self.reinforced is not None:
                positions = forget["model_positions"]
                boost = logits_of(self.reinforced, forget["model"])[rows, positions]
                boost = boost - logits_of(self.reference, forget["model"])[rows, positions]
                original = original - self.config.whp_boost * F.relu(boost)
        return F.kl_div(
            F.log_softmax(student, dim=-1), F.log_softmax(original, dim=-1), log_target=True, reduction="batchmean"
        )
