"""Whether a workspace has something worth serving, said as the next command to run.

A new user's first `lethe chat` should not end on "no model version 'latest'": with no version
the answer is `lethe train`; with a version whose training loss never came down, the answer is
that it will not know its training data yet (its exact match on its own training questions,
measured by the trainer, or else its final loss).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lethe.errors import NotFoundError

if TYPE_CHECKING:
    from lethe.ledger.store import Ledger

# Mean token loss on the answers at the end of training. A model that reproduces its training
# answers ends well under 0.5 (the demo's tiny model ends near 0.05); above this it mostly guesses.
UNDERTRAINED_LOSS = 1.0
# Share of its own training questions (a sample of the last slice's) a version must answer word
# for word; the demo's tiny model answers all of them, a 2-epoch one almost none.
UNDERTRAINED_EXACT_MATCH = 0.5
BASE_HINT = (
    "or fine-tune the real pretrained base instead (`lethe base add` its GGUF, then "
    "`lethe train --base smollm2 --lora`; the README's 'A real base' shows both)"
)

TRAIN_HINT = (
    "train one with `lethe tokenizer train` then `lethe train --data COLLECTION` (collections: `lethe data ls`)"
)


def no_version_error(ref: str = "latest") -> NotFoundError:
    return NotFoundError(f"no model version {ref!r} yet in this workspace; {TRAIN_HINT}")


def has_versions(ledger: Ledger) -> bool:
    return bool(ledger.list_versions())


def undertrained_notice(version) -> str | None:
    """A sentence when `version` has not learned its own training data.

    The trainer's self-check (its exact match on a sample of the last slice's training questions)
    decides where it was measured; older versions fall back to the final training loss.
    """
    meta = version.meta or {}
    score, items = meta.get("own_exact_match"), meta.get("own_exact_match_items")
    if score is not None and items:
        if score >= UNDERTRAINED_EXACT_MATCH:
            return None
        right = round(score * items)
        return (
            f"{version.name} looks undertrained: it answers {right} of {items} of its own training questions "
            f"word for word (a model that knows its data answers at least "
            f"{UNDERTRAINED_EXACT_MATCH:.0%}); train longer, e.g. `lethe train --epochs 15`, {BASE_HINT}"
        )
    loss = meta.get("final_loss")
    if loss is None or loss <= UNDERTRAINED_LOSS:
        return None
    return (
        f"{version.name} looks undertrained: its training loss ended at {loss:.2f} (a model that knows its "
        f"training answers ends below {UNDERTRAINED_LOSS:g}); train longer, e.g. `lethe train --epochs 15`, "
        f"{BASE_HINT}"
    )


def version_notices(ledger: Ledger, ref: str = "latest") -> list[str]:
    """What a user should know before chatting with `ref`: nothing to serve, or a weak version."""
    if not has_versions(ledger):
        return [f"no model version yet; {TRAIN_HINT}"]
    try:
        version = ledger.resolve_version(ref, allow_tainted=True)
    except NotFoundError:
        return []
    notice = undertrained_notice(version)
    return [notice] if notice else []
