"""Alembic revisions of the notifications outbox's schema, applied by ``fleet db migrate``."""
