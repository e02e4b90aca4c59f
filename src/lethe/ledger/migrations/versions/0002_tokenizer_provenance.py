"""tokenizer provenance: the tokenizers lethe trains, and the documents each learned from

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 03:52:38.306159
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tokenizers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("vocab_size", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=True),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["replaces_id"],
            ["tokenizers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "tokenizer_documents",
        sa.Column("tokenizer_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
        ),
        sa.ForeignKeyConstraint(["tokenizer_id"], ["tokenizers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tokenizer_id", "document_id"),
    )
    with op.batch_alter_table("tokenizer_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tokenizer_documents_document_id"), ["document_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tokenizer_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tokenizer_documents_document_id"))

    op.drop_table("tokenizer_documents")
    op.drop_table("tokenizers")
