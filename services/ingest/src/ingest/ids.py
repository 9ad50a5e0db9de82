"""Workflow ids: one batch, one workflow (and one child per chunk), however often submitted."""


def batch_workflow_id(batch_id: str) -> str:
    """The id of the workflow that ingests batch ``batch_id``."""
    return f"ingest-{batch_id}"


def chunk_workflow_id(batch_id: str, chunk_index: int) -> str:
    """The id of the child workflow that processes chunk ``chunk_index`` of the batch."""
    return f"{batch_workflow_id(batch_id)}-chunk-{chunk_index}"
