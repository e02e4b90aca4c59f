"""Ingest a file or directory into the ledger: pick a reader, stream its records, one transaction.

    from lethe.data.ingest import ingest
    report = ingest(ledger, "../shared/data/tofu", source="tofu")   # several tofu/* collections
    report.as_dict()  # {'added': 4757, 'updated': 0, 'unchanged': 0, ...}

The whole call is one ledger transaction: an error anywhere in the input (reported with file,
line or byte offset, and field) leaves the ledger as it was.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lethe.data.sources import detect, get_reader
from lethe.errors import InputError, Where
from lethe.ledger.ingest import IngestReport
from lethe.ledger.records import DocumentRecord

if TYPE_CHECKING:
    from lethe.ledger.store import Ledger

PROGRESS_EVERY = 500
"""Records between two calls of the progress callback."""


def ingest(
    ledger: Ledger,
    path: str | Path,
    *,
    source: str,
    collection: str | None = None,
    reader: str | None = None,
    license: str | None = None,
    progress: Callable[[int], None] | None = None,
    allow_forgotten: bool = False,
    **options,
) -> IngestReport:
    """Add every document of `path` to `ledger` under the source `source`.

    `reader` names the format (see `lethe.data.sources.readers()`; detected when None) and
    `options` go to it (e.g. ``id_field`` for `jsonl`). Every document also joins `collection`
    when given, besides the collections its reader assigns (TOFU splits). `progress`, when
    given, is called with the number of records read so far. Records a forget request erased
    are skipped (`IngestReport.suppressed`) unless `allow_forgotten`.
    """
    path = Path(path)
    if not source or not source.strip():
        raise InputError("a source name is required (e.g. --source tofu)")
    spec = get_reader(reader or detect(path))
    records = spec.read(path, **options)
    first = next(records, None)
    if first is None:
        raise InputError("no documents found", Where(path=path))
    stream = itertools.chain([first], records)
    # One file, one unit of work (as a publish is): the reader streams inside it, so an error
    # anywhere in the file, or a kill, leaves no document, source, membership or event of it.
    # A caller that has a transaction open makes the file part of it.
    with ledger.transaction():
        return ledger.add_documents(
            _counted(stream, progress) if progress else stream,
            source=source.strip(),
            source_kind=spec.source_kind,
            collection=collection,
            license=license,
            uri=str(path.resolve()),
            allow_forgotten=allow_forgotten,
        )


def _counted(records: Iterator[DocumentRecord], progress: Callable[[int], None]) -> Iterator[DocumentRecord]:
    count = 0
    for count, record in enumerate(records, 1):
        if count % PROGRESS_EVERY == 0:
            progress(count)
        yield record
    progress(count)
