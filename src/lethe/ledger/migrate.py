"""Schema migrations, applied on open and recorded in `alembic_version`.

Migrations live in `migrations/versions/` as numbered, named Alembic scripts; each runs in its
own transaction. `upgrade(engine)` brings a ledger to the newest revision; `schema_drift(engine)`
compares the live schema with `schema.py` so that a change without a migration fails a test.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from lethe.ledger.schema import Base

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection=None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def revision(engine: Engine, message: str, rev_id: str) -> None:
    """Write a new migration script from the difference between the database and schema.py."""
    with engine.begin() as connection:
        command.revision(_config(connection), message=message, autogenerate=True, rev_id=rev_id)


def schema_drift(engine: Engine) -> list:
    """Differences between the migrated database and the ORM model (empty when in step)."""
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)
