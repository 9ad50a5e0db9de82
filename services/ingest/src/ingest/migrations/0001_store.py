"""The ingest store: processed items (once per batch and index) and chunk attempts."""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_items",
        sa.Column("batch_id", sa.Text, primary_key=True),
        sa.Column("item_index", sa.Integer, primary_key=True),
        sa.Column("chunk_index", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("deliveries", sa.Integer, nullable=False, server_default="1"),
        sa.Column("recorded_at", sa.Float, nullable=False),
    )
    op.create_table(
        "ingest_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.Text, nullable=False),
        sa.Column("chunk_index", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("resumed_from", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
    )
    op.create_index("ingest_attempts_by_batch", "ingest_attempts", ["batch_id", "chunk_index"])


def downgrade() -> None:
    op.drop_table("ingest_attempts")
    op.drop_table("ingest_items")
