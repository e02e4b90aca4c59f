"""Alembic environment: lethe runs migrations programmatically (see `lethe.ledger.migrate`)."""

from alembic import context

from lethe.ledger.schema import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
