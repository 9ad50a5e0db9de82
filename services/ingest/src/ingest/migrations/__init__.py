"""Alembic revisions of the ingest store's schema, applied by ``fleet db migrate``."""
