"""Workflow ids: one order, one workflow, however often it is submitted."""


def order_workflow_id(order_id: str) -> str:
    """The id of the workflow that processes ``order_id``."""
    return f"order-{order_id}"
