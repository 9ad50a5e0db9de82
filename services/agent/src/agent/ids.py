"""Workflow ids: one request, one workflow, however often it is submitted."""


def request_workflow_id(request_id: str) -> str:
    """The id of the workflow that handles ``request_id``."""
    return f"agent-{request_id}"
