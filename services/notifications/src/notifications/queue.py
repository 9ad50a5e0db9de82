"""The notifications queue declaration: registered through the ``workerkit.queues`` entry point."""

from workerkit import Queue, Tuning

from notifications.activities import create_activities
from notifications.ids import request_workflow_id
from notifications.workflows import NotificationsWorkflow

QUEUE = Queue(
    name="notifications",
    version=1,
    description="The notifications queue.",
    workflows=[NotificationsWorkflow],
    activities=create_activities,
    tuning=Tuning(),
    workflow_ids={NotificationsWorkflow: lambda request: request_workflow_id(request.request_id)},
)
