"""Alembic revisions of the agent outbox's schema, applied by ``fleet db migrate``."""
