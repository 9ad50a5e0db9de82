"""The notifications outbox: deliveries (one per idempotency key), analytics events, digests."""

import sqlalchemy as sa
from alembic import op

revision = "notifications_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications_deliveries",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
        sa.Column("delivery_id", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False, index=True),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("delivered_at", sa.Float, nullable=False),
    )
    op.create_index(
        "notifications_deliveries_by_channel",
        "notifications_deliveries",
        ["channel", "delivered_at"],
    )
    op.create_table(
        "notifications_events",
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.Float, nullable=False),
    )
    op.create_table(
        "notifications_digests",
        sa.Column("digest_id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("after_seq", sa.Integer, nullable=False),
        sa.Column("until_seq", sa.Integer, nullable=False),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("by_channel", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("notifications_digests", "notifications_events", "notifications_deliveries"):
        op.drop_table(table)
