"""Alembic revisions of the orders ledger's schema, applied by ``fleet db migrate``."""
