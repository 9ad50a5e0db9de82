"""The ingest queue: batches fanned out to chunk workflows, resumable after a crash."""
