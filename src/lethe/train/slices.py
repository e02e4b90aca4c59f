"""Slice planning: a seeded split of the documents into K ordered slices.

Training goes slice by slice with a checkpoint after each (SISA's slicing with one shard), so
forgetting a document costs a replay from the first slice that contains it. The plan is
recorded in the ledger, so exact replay never recomputes it; the lineage's config names the
planner that made it (`slice_plan`).

The planner (`key-hash`, since lineages record it) puts a document in the slice a seeded
SHA-256 of its stable key (source + external id) points at, so a document's slice depends on
nothing but its key, the seed and K: removing documents never moves another one, and exact
replay from the checkpoint before the first affected slice gives the same weights as training
a fresh workspace on the same data without them. Slices are not exactly even (a binomial
spread around n/K; a slice may even end up empty, which trains nothing and keeps the weights).
Lineages trained before it used `shuffle` (one seeded permutation of the id list, cut in K),
which they keep: their plans are on record, and `plan_slices(..., planner="shuffle")` remakes them.
With `TrainConfig.cumulative` a slice trains on the documents of every slice up to it
(`training_documents`), the plan staying each slice's own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from lethe.errors import InputError, Where


def derive_seed(seed: int, *parts: int | str) -> int:
    """A 31-bit seed derived from `seed` and a path of names (stable across platforms)."""
    text = "/".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def slice_seed(seed: int, index: int) -> int:
    """The seed of slice `index` of a run seeded with `seed` (shuffling, adapters)."""
    return derive_seed(seed, "slice", index)


KEY_HASH = "key-hash"
"""The planner of new lineages: each document's slice from a seeded hash of its stable key."""
SHUFFLE = "shuffle"
"""The planner of lineages trained before `key-hash` (their config has no `slice_plan`)."""


def key_slice(key: str, k: int, seed: int) -> int:
    """The slice (0..k-1) of the document with stable key `key`: a seeded SHA-256 of the key,
    read as a number in [0, 1) and scaled to k. Depends on nothing else."""
    digest = hashlib.sha256(f"lethe-slice/{seed}/{key}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") * k) >> 64


def _check(n: int, k: int) -> None:
    if k < 1:
        raise InputError(f"slices must be at least 1, got {k}", Where(field="slices"))
    if n < k:
        raise InputError(f"cannot cut {n} documents into {k} slices", Where(field="slices"))


def plan_by_key(documents: Sequence[tuple[int, str]], k: int, seed: int) -> list[list[int]]:
    """`key-hash`: (id, stable key) pairs into `k` ordered slices, each slice's ids sorted.

    Every revision of a document shares its key, hence its slice.
    """
    pairs = list(dict.fromkeys((int(i), str(key)) for i, key in documents))
    _check(len({i for i, _ in pairs}), k)
    plan: list[set[int]] = [set() for _ in range(k)]
    for doc_id, key in pairs:
        plan[key_slice(key, k, seed)].add(doc_id)
    return [sorted(s) for s in plan]


def plan_shuffled(documents: Sequence[tuple[int, str]], k: int, seed: int) -> list[list[int]]:
    """`shuffle` (the planner before `key-hash`): a seeded permutation of the ids cut into `k`
    nearly equal slices. Removing one document moves others, so replay is exact only relative
    to the recorded plan."""
    ids = list(dict.fromkeys(int(i) for i, _ in documents))
    _check(len(ids), k)
    order = np.random.default_rng(derive_seed(seed, "plan")).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    bounds = np.linspace(0, len(ids), k + 1).round().astype(int)
    return [sorted(shuffled[bounds[i] : bounds[i + 1]]) for i in range(k)]


PLANNERS: dict[str, Callable[[Sequence[tuple[int, str]], int, int], list[list[int]]]] = {
    KEY_HASH: plan_by_key,
    SHUFFLE: plan_shuffled,
}
"""Slice planners by the name lineages record in their config (`slice_plan`)."""


def plan_slices(documents: Sequence[tuple[int, str]], k: int, seed: int, *, planner: str = KEY_HASH) -> list[list[int]]:
    """The slice plan of (id, stable key) pairs into `k` slices by `planner` (see `PLANNERS`)."""
    if planner not in PLANNERS:
        known = ", ".join(PLANNERS)
        raise InputError(f"unknown slice planner {planner!r} (known: {known})", Where(field="slice_plan"))
    return PLANNERS[planner](documents, k, seed)


def lineage_planner(config: dict | None) -> str:
    """The planner a lineage's slices were made with (its config's `slice_plan`)."""
    return (config or {}).get("slice_plan", SHUFFLE)


def training_documents(plan: Sequence[Sequence[int]], position: int, *, cumulative: bool) -> list[int]:
    """The document ids slice `plan[position]` trains on, sorted: its own, or with `cumulative`
    (`TrainConfig.cumulative`) those of every slice of the lineage up to and including it.

    `plan` is the lineage's slice plan in order (each slice's own documents, as the ledger
    records them). Excluded and erased documents are left out later, when examples are built.
    """
    slices = plan[: position + 1] if cumulative else [plan[position]]
    return sorted({doc for ids in slices for doc in ids})
