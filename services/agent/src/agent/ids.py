"""Workflow ids: one task, one workflow, however often it is submitted."""


def task_workflow_id(task_id: str) -> str:
    """The id of the workflow that runs agent task ``task_id``."""
    return f"agent-{task_id}"
