"""base models: pretrained bases imported from a Hugging Face directory or a GGUF file

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:27:23.548439
"""

from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "base_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("source_kind", sa.String(length=20), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("weights_sha256", sa.String(length=64), nullable=False),
        sa.Column("license", sa.String(length=200), nullable=True),
        sa.Column("parameters", sa.BigInteger(), nullable=False),
        sa.Column("architecture", sa.String(length=100), nullable=True),
        sa.Column("quantization", sa.String(length=200), nullable=True),
        sa.Column("pretraining_data", sa.Text(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("base_models")
