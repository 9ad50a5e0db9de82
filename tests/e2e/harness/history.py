"""Reading what the server knows of an execution: its history and pending activities
(`temporal ... -o json` in the server's container)."""

from __future__ import annotations

from typing import Any

from .stack import E2eStack


def hostname(identity: str) -> str:
    """The host of an SDK identity (``pid@hostname``): a container's short id."""
    return identity.rsplit("@", 1)[-1]


def events_of(history: Any) -> list[dict[str, Any]]:
    """The events of `temporal workflow show -o json` (a list, or a document holding it)."""
    events = history.get("events", history) if isinstance(history, dict) else history
    return list(events)


def history(stack: E2eStack, workflow_id: str) -> list[dict[str, Any]]:
    """The events of the workflow's history."""
    return events_of(stack.temporal("workflow", "show", "-w", workflow_id))


def scheduled_type(events: list[dict[str, Any]], started: dict[str, Any]) -> str:
    """The activity type of an activity task's started event (from its scheduled event)."""
    scheduled_id = str(started.get("scheduledEventId"))
    for e in events:
        if str(e.get("eventId")) == scheduled_id:
            attrs = e.get("activityTaskScheduledEventAttributes", {})
            return str(attrs.get("activityType", {}).get("name", ""))
    return ""


def activity_starts(events: list[dict[str, Any]], activity_type: str) -> list[dict[str, Any]]:
    """The started events' attributes of every attempt of ``activity_type``, in order."""
    return [
        e["activityTaskStartedEventAttributes"]
        for e in events
        if "activityTaskStartedEventAttributes" in e
        and scheduled_type(events, e["activityTaskStartedEventAttributes"]) == activity_type
    ]


def running_activity(
    stack: E2eStack, workflow_id: str, activity_type: str
) -> dict[str, Any] | None:
    """The workflow's pending ``activity_type`` activity if a worker runs it now."""
    described = stack.temporal("workflow", "describe", "-w", workflow_id)
    for activity in described.get("pendingActivities") or []:
        if (
            activity.get("activityType", {}).get("name") == activity_type
            and "STARTED" in str(activity.get("state", ""))
            and activity.get("lastWorkerIdentity")
        ):
            return dict(activity)
    return None
