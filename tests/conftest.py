"""Shared fixtures: every test gets its own workspace; nothing reaches a hub.

Under LETHE_STRICT_TESTS=1 (CI) a skipped test is reported as a failure, so a missing
PostgreSQL server or browser can never pass for a green run.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(os.environ.get("LETHE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
STRICT = os.environ.get("LETHE_STRICT_TESTS") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under LETHE_STRICT_TESTS=1 (skips count as failures): {reason}"


@pytest.fixture(autouse=True)
def isolated_workspace(tmp_path, monkeypatch):
    """Point LETHE_HOME at a fresh directory and drop any ledger URL from the environment."""
    home = tmp_path / "lethe-home"
    monkeypatch.setenv("LETHE_HOME", str(home))
    monkeypatch.delenv("LETHE_DB_URL", raising=False)
    monkeypatch.delenv("LOGGING_URL", raising=False)
    return home


@pytest.fixture
def initialized_workspace(isolated_workspace):
    """The isolated workspace after `lethe init` (every CLI command but init refuses a missing one)."""
    from lethe.workspace import Workspace

    return Workspace(home=isolated_workspace).init()


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(int(os.environ.get("LETHE_TEST_THREADS", "1")))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set LETHE_SHARED_DATA)")
    return SHARED_DATA


def _postgres_database():
    """Create a throwaway database on the server named by LETHE_TEST_PG_URL; yield its URL."""
    base = os.environ.get("LETHE_TEST_PG_URL")
    if not base:
        pytest.skip("LETHE_TEST_PG_URL is not set (CI starts a PostgreSQL server and sets it)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"lethe_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def postgres_url():
    yield from _postgres_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request, tmp_path):
    """A ledger URL on each backend: SQLite in tmp, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def ledger(ledger_url):
    from lethe.ledger import Ledger

    led = Ledger.open(ledger_url)
    yield led
    led.close()


@pytest.fixture
def trained_workspace(isolated_workspace):
    """A workspace with a 6-entity synthetic world and a nano model trained on its QA in 2 slices.

    Returns (workspace, world, versions). Training takes a few seconds on one thread.
    """
    from lethe.data.synth_ingest import ingest_synthetic_world
    from lethe.train.pipeline import train
    from lethe.workspace import Workspace

    ws = Workspace.from_env().init()
    world, _ = ingest_synthetic_world(ws.ledger, entities=6, seed=11, holdout_fraction=0.2)
    versions = train(
        ws, data="synth/qa", preset_or_path="nano", slices=2, epochs=2, batch_size=16, seq_len=96, lr=3e-3, seed=0
    )
    return ws, world, versions
