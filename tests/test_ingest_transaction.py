"""Ingest is one unit of work per file: a kill or an error mid-file leaves no trace of it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from lethe.data.ingest import PROGRESS_EVERY, ingest
from lethe.errors import InputError
from lethe.ledger import Ledger
from lethe.ledger.ingest import BATCH

ROWS = BATCH + 2 * PROGRESS_EVERY  # the first batch is inserted (inside the transaction) before the end


def _rows(path: Path, count: int, *, last: str | None = None) -> Path:
    lines = [json.dumps({"id": f"d{i}", "text": f"document number {i}"}) for i in range(count)]
    path.write_text("\n".join([*lines, *([last] if last else [])]) + "\n")
    return path


def _counts(ledger: Ledger) -> dict[str, int]:
    with ledger.engine.connect() as conn:
        return {
            table: conn.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar()
            for table in inspect(ledger.engine).get_table_names()
        }


def test_a_kill_mid_file_leaves_the_ledger_as_it_was(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.open(url)
    ingest(ledger, _rows(tmp_path / "before.jsonl", 3), source="before")
    before = _counts(ledger)
    ledger.close()
    data = _rows(tmp_path / "big.jsonl", ROWS)
    # Killed from the progress callback, after the first batch of rows was written into the
    # open transaction: as a power cut would, with no rollback, no finally, no flush.
    script = textwrap.dedent(f"""
        import os, signal
        from lethe.data.ingest import ingest
        from lethe.ledger import Ledger
        def progress(n):
            if n > {BATCH + PROGRESS_EVERY}:
                os.kill(os.getpid(), signal.SIGKILL)
        ingest(Ledger.open({url!r}), {str(data)!r}, source="big", progress=progress)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    ledger = Ledger.open(url)
    assert _counts(ledger) == before
    assert [s.name for s in ledger.sources()] == ["before"]
    # and the same file ingests whole afterwards
    assert ingest(ledger, data, source="big").added == ROWS
    ledger.close()


def test_a_bad_row_after_the_first_batch_leaves_the_ledger_as_it_was(ledger, tmp_path):
    ingest(ledger, _rows(tmp_path / "before.jsonl", 3), source="before")
    before = _counts(ledger)
    bad = _rows(tmp_path / "bad.jsonl", ROWS, last='{"id": "x", "text": "y", "text": "z"}')
    with pytest.raises(InputError, match="duplicate key"):
        ingest(ledger, bad, source="bad", collection="bad")
    assert _counts(ledger) == before


def test_ingest_joins_an_open_transaction(ledger, tmp_path):
    with pytest.raises(RuntimeError, match="power cut"), ledger.transaction():
        report = ingest(ledger, _rows(tmp_path / "a.jsonl", 5), source="a", collection="a")
        assert report.added == 5 and ledger.collection_ids("a")  # visible inside the unit of work
        raise RuntimeError("power cut")
    assert ledger.sources() == [] and ledger.events(kind="documents.ingested") == []
