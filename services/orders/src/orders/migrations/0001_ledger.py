"""The orders ledger, the simulated payment provider's charges, and the demo stock."""

import sqlalchemy as sa
from alembic import op

revision = "orders_0001"
down_revision = None
branch_labels = None
depends_on = None

# Seeded once, here, so that every worker of every pod sees the same stock.
DEMO_STOCK = {"sku-widget": 1000, "sku-gadget": 1000, "sku-gizmo": 5}


def upgrade() -> None:
    stock = op.create_table(
        "orders_stock",
        sa.Column("sku", sa.Text, primary_key=True),
        sa.Column("available", sa.Integer, nullable=False),
        sa.CheckConstraint("available >= 0", name="orders_stock_not_negative"),
    )
    op.create_table(
        "orders_reservations",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("reservation_id", sa.Text, nullable=False),
        sa.Column("items", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
    )
    op.create_table(
        "orders_payments",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("payment_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("amount_cents", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
    )
    op.create_table(
        "orders_shipments",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("tracking_number", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
    )
    op.create_table(
        "orders_notifications",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_table(
        "orders_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.Text, nullable=False, index=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )
    # The payment provider's side: one charge per idempotency key, whoever asks twice.
    op.create_table(
        "orders_provider_charges",
        sa.Column("idempotency_key", sa.Text, primary_key=True),
        sa.Column("payment_id", sa.Text, nullable=False, unique=True),
        sa.Column("order_id", sa.Text, nullable=False, index=True),
        sa.Column("amount_cents", sa.Integer, nullable=False),
        sa.Column("refunded", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.bulk_insert(stock, [{"sku": s, "available": n} for s, n in DEMO_STOCK.items()])


def downgrade() -> None:
    for table in (
        "orders_provider_charges",
        "orders_events",
        "orders_notifications",
        "orders_shipments",
        "orders_payments",
        "orders_reservations",
        "orders_stock",
    ):
        op.drop_table(table)
