"""The exposure recorder: which documents every optimizer step trained on, into the ledger.

Each process notes the document ids of the examples *it* trained on at each step (taken
from the examples themselves, never from batch positions). `flush` gathers the notes of all
processes and the main process writes them in one bulk insert, one row per (step, document)
however many windows of a document the step held. Flushes happen at the same points as the
resume state, before it is written, so the ledger never misses a step a resumed run skips.
"""

from __future__ import annotations

from collections.abc import Iterable

from lethe.train import distributed


class ExposureRecorder:
    """Buffers (step, document id) pairs and writes them to the ledger in bulk."""

    def __init__(self, ledger, run_id: int | None):
        self.ledger = ledger
        self.run_id = run_id
        self._pending: set[tuple[int, int]] = set()
        self.recorded = 0

    def add(self, step: int, document_ids: Iterable[int]) -> None:
        self._pending.update((step, doc_id) for doc_id in document_ids)

    def flush(self) -> int:
        """Collective: every process must call it at the same point. Returns rows written."""
        rows = distributed.gather(sorted(self._pending))
        self._pending.clear()
        if not distributed.is_main_process() or not rows:
            return 0
        unique = sorted(set(rows))
        written = self.ledger.record_exposures(self.run_id, unique)
        self.recorded += written
        return written
