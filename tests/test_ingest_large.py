"""A 200 MB file is streamed: reader and ingest memory stay far below the file's size."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import pytest

from lethe.data.sources import read

SIZE = 200 * 2**20
PARAGRAPH = "Lethe is the river of forgetting; whoever drinks from it forgets. " * 120


def write_rows(path, *, array: bool) -> int:
    """Rows of ~8 KB with explicit ids until the file reaches SIZE bytes; returns the row count."""
    rows = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n" if array else "")
        while f.tell() < SIZE:
            row = json.dumps({"id": f"doc{rows:07d}", "title": f"Doc {rows}", "text": f"{rows} {PARAGRAPH}"})
            f.write((",\n" if rows else "") + row if array else row + "\n")
            rows += 1
        f.write("\n]\n" if array else "")
    return rows


INGEST = """
import json, resource, sys, time
from lethe.data.ingest import ingest
from lethe.ledger import Ledger

def peak_kb():
    # VmHWM: this process's peak resident size (ru_maxrss would carry the forking parent's over exec)
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

ledger = Ledger.open(sys.argv[2])
before = peak_kb()
started = time.perf_counter()
report = ingest(ledger, sys.argv[1], source="big")
print(json.dumps({"added": report.added, "seconds": time.perf_counter() - started, "grew_kb": peak_kb() - before}))
"""


@pytest.mark.slow
def test_a_200_mb_array_is_ingested_with_flat_memory(tmp_path):
    path = tmp_path / "big.json"
    rows = write_rows(path, array=True)
    # A fresh process, so the peak resident size is this ingest's and no earlier test's.
    done = subprocess.run(
        [sys.executable, "-c", INGEST, str(path), f"sqlite:///{tmp_path / 'big.db'}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["added"] == rows
    grew = result["grew_kb"] * 1024
    print(
        f"200 MB array: {rows} docs in {result['seconds']:.1f}s ({rows / result['seconds']:,.0f} docs/s), "
        f"peak RSS grew {grew / 2**20:.0f} MB"
    )
    assert grew < 0.35 * SIZE


@pytest.mark.slow
def test_a_200_mb_jsonl_file_is_read_with_flat_memory(tmp_path):
    path = tmp_path / "big.jsonl"
    rows = write_rows(path, array=False)
    tracemalloc.start()
    try:
        count = sum(1 for _ in read(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == rows
    print(f"200 MB JSONL: reader peak {peak / 2**20:.1f} MB")
    assert peak < 0.05 * SIZE  # the id set (for duplicates) and one line at a time
