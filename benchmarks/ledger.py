"""Ledger throughput and provenance-query latency, on SQLite and (when reachable) PostgreSQL.

    python benchmarks/ledger.py [--docs 100000] [--exposures 1000000] [--pg-url URL]

Prints a table and writes benchmarks/results/ledger.json. Targets (issue 2): ingest >= 20k
documents/s, exposures >= 200k rows/s, provenance queries < 10 ms at 1M exposures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from lethe.ledger import DocumentRecord, Ledger
from lethe.ledger.schema import Collection

TARGETS = {"ingest_docs_per_s": 20_000, "exposures_per_s": 200_000, "saw_query_ms": 10, "collection_query_ms": 10}


def records(n: int):
    for i in range(n):
        yield DocumentRecord(
            external_id=f"doc{i}",
            kind="text",
            title=f"Document {i}",
            content=f"Document {i} body: " + "lorem ipsum " * 20 + str(i),
        )


def timed_ms(fn, repeats: int = 50) -> float:
    fn()  # warm
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def bench(url: str, n_docs: int, n_exposures: int, backend: str) -> dict:
    ledger = Ledger.open(url)
    t = time.perf_counter()
    report = ledger.add_documents(records(n_docs), source="bench", collection="all")
    ingest_s = time.perf_counter() - t
    ids = report.document_ids
    lineage = ledger.create_lineage("bench", "nano")
    run = ledger.start_run("train", lineage_id=lineage.id)
    per_step = 16
    steps = n_exposures // per_step
    rng = random.Random(0)

    # The rows are made before the clock starts: what is timed is the ledger, not the generator.
    rows = [(step, doc) for step in range(steps) for doc in rng.sample(ids, per_step)]
    t = time.perf_counter()
    written = ledger.record_exposures(run, rows)
    exposure_s = time.perf_counter() - t
    version = ledger.register_version(
        kind="pretrain", path="/nonexistent", weights_sha256="0" * 64, lineage_id=lineage.id, run_id=run
    )
    ledger.create_collection("small", ids[:500])
    with ledger.reading() as s:
        from sqlalchemy import select

        small = s.scalar(select(Collection).where(Collection.name == "small"))
    probe = iter(rng.choices(ids, k=10_000))
    saw_ms = timed_ms(lambda: ledger.versions_that_saw(next(probe)))
    coll_ms = timed_ms(lambda: ledger.documents_seen(version.id, collection_id=small.id), repeats=20)
    ledger.close()
    return {
        "backend": backend,
        "documents": n_docs,
        "exposures": written,
        "ingest_docs_per_s": n_docs / ingest_s,
        "exposures_per_s": written / exposure_s,
        "saw_query_ms": saw_ms,
        "collection_query_ms": coll_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--exposures", type=int, default=1_000_000)
    parser.add_argument("--pg-url", default=os.environ.get("LETHE_TEST_PG_URL"))
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "ledger.json"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(bench(f"sqlite:///{tmp}/bench.db", args.docs, args.exposures, "sqlite"))
    if args.pg_url:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        url = make_url(args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS lethe_bench"))
            conn.execute(text("CREATE DATABASE lethe_bench"))
        try:
            results.append(
                bench(
                    url.set(database="lethe_bench").render_as_string(hide_password=False),
                    args.docs,
                    args.exposures,
                    "postgresql",
                )
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS lethe_bench"))
    header = f"{'backend':<11}{'docs/s':>10}{'exposures/s':>13}{'saw(doc) ms':>13}{'coll∩seen ms':>14}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['backend']:<11}{r['ingest_docs_per_s']:>10,.0f}{r['exposures_per_s']:>13,.0f}"
            f"{r['saw_query_ms']:>13.2f}{r['collection_query_ms']:>14.2f}"
        )
    print(f"{'target':<11}{'>=20,000':>10}{'>=200,000':>13}{'<10':>13}{'<10':>14}")
    for r in results:
        r["meets_targets"] = {k: (r[k] >= v if k.endswith("per_s") else r[k] < v) for k, v in TARGETS.items()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "measured_at": datetime.now(UTC).isoformat(),
                "machine": {
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                },
                "targets": TARGETS,
                "results": results,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
