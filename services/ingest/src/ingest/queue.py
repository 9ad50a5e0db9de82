"""The ingest queue declaration: registered through the ``workerkit.queues`` entry point."""

from workerkit import Queue, Tuning

from ingest.activities import create_activities
from ingest.ids import request_workflow_id
from ingest.workflows import IngestWorkflow

QUEUE = Queue(
    name="ingest",
    version=1,
    description="The ingest queue.",
    workflows=[IngestWorkflow],
    activities=create_activities,
    tuning=Tuning(),
    workflow_ids={IngestWorkflow: lambda request: request_workflow_id(request.request_id)},
)
