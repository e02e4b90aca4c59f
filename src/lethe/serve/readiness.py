"""Whether a workspace has something worth serving, said as the next command to run.

A new user's first `lethe chat` should not end on "no model version 'latest'": with no version
the answer is `lethe train`; with a version whose training loss never came down, the answer is
that it will not know its training data yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lethe.errors import NotFoundError

if TYPE_CHECKING:
    from lethe.ledger.store import Ledger

# Mean token loss on the answers at the end of training. A model that reproduces its training
# answers ends well under 0.5 (the demo's tiny model ends near 0.05); above this it mostly guesses.
UNDERTRAINED_LOSS = 1.0

TRAIN_HINT = (
    "train one with `lethe tokenizer train` then `lethe train --data COLLECTION` (collections: `lethe data ls`)"
)


def no_version_error(ref: str = "latest") -> NotFoundError:
    return NotFoundError(f"no model version {ref!r} yet in this workspace; {TRAIN_HINT}")


def has_versions(ledger: Ledger) -> bool:
    return bool(ledger.list_versions())


def undertrained_notice(version) -> str | None:
    """A sentence when `version`'s own training loss says it has not learned its data."""
    loss = (version.meta or {}).get("final_loss")
    if loss is None or loss <= UNDERTRAINED_LOSS:
        return None
    return (
        f"{version.name} looks undertrained: its training loss ended at {loss:.2f} (a model that knows its "
        f"training answers ends below {UNDERTRAINED_LOSS:g}); train longer, e.g. `lethe train --epochs 15`"
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
