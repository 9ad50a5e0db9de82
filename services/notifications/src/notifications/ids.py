"""Ids: one message, one workflow; one message on one channel, one delivery."""


def notify_workflow_id(message_id: str) -> str:
    """The id of the workflow that fans ``message_id`` out to its channels."""
    return f"notify-{message_id}"


def idempotency_key(message_id: str, channel: str) -> str:
    """The outbox key of ``message_id`` on ``channel``: a retry finds it and sends nothing."""
    return f"{message_id}:{channel}"
