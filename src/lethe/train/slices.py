"""Slice planning: a seeded split of the documents into K ordered slices.

Training goes slice by slice with a checkpoint after each (SISA's slicing with one shard), so
forgetting a document costs a replay from the first slice that contains it. The plan is a
pure function of the document ids and the seed, and it is recorded in the ledger, so exact
replay never has to recompute it. With `TrainConfig.cumulative` a slice trains on the
documents of every slice up to it (`training_documents`), the plan staying each slice's own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from lethe.errors import InputError, Where


def derive_seed(seed: int, *parts: int | str) -> int:
    """A 31-bit seed derived from `seed` and a path of names (stable across platforms)."""
    text = "/".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def slice_seed(seed: int, index: int) -> int:
    """The seed of slice `index` of a run seeded with `seed` (shuffling, adapters)."""
    return derive_seed(seed, "slice", index)


def plan_slices(document_ids: Sequence[int], k: int, seed: int) -> list[list[int]]:
    """Shuffle `document_ids` (seeded) and cut them into `k` nearly equal ordered slices.

    Each slice's ids are returned sorted, which is how the ledger stores them; the order of
    training within a slice is decided later by the slice seed.
    """
    ids = list(dict.fromkeys(document_ids))
    if k < 1:
        raise InputError(f"slices must be at least 1, got {k}", Where(field="slices"))
    if len(ids) < k:
        raise InputError(f"cannot cut {len(ids)} documents into {k} slices", Where(field="slices"))
    order = np.random.default_rng(derive_seed(seed, "plan")).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    bounds = np.linspace(0, len(ids), k + 1).round().astype(int)
    return [sorted(shuffled[bounds[i] : bounds[i + 1]]) for i in range(k)]


def training_documents(plan: Sequence[Sequence[int]], position: int, *, cumulative: bool) -> list[int]:
    """The document ids slice `plan[position]` trains on, sorted: its own, or with `cumulative`
    (`TrainConfig.cumulative`) those of every slice of the lineage up to and including it.

    `plan` is the lineage's slice plan in order (each slice's own documents, as the ledger
    records them). Excluded and erased documents are left out later, when examples are built.
    """
    slices = plan[: position + 1] if cumulative else [plan[position]]
    return sorted({doc for ids in slices for doc in ids})
