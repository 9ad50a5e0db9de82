"""The ingest queue declaration: registered through the ``workerkit.queues`` entry point."""

from temporalio.common import VersioningBehavior
from workerkit import Fairness, Queue, Tuning

from ingest.activities import create_activities
from ingest.ids import batch_workflow_id, chunk_workflow_id
from ingest.workflows import BatchIngestWorkflow, ChunkWorkflow

QUEUE = Queue(
    name="ingest",
    version=1,
    description=(
        "Batch ingest: bounded fan-out to chunk workflows, resumable heartbeating activity, "
        "continue-as-new, aggregated result."
    ),
    workflows=[BatchIngestWorkflow, ChunkWorkflow],
    activities=create_activities,
    tuning=Tuning(),
    workflow_ids={
        BatchIngestWorkflow: lambda request: batch_workflow_id(request.batch_id),
        ChunkWorkflow: lambda chunk: chunk_workflow_id(chunk.batch_id, chunk.chunk_index),
    },
    versioning={
        # A batch runs for hours across continue-as-new: it moves to each new build, so every
        # change to BatchIngestWorkflow must be guarded by workflow.patched().
        BatchIngestWorkflow: VersioningBehavior.AUTO_UPGRADE,
        # One chunk is short: it finishes on the build that started it.
        ChunkWorkflow: VersioningBehavior.PINNED,
    },
    migrations="ingest.migrations",
    histories="ingest.histories",
    # Bursty fan-out: a batch starts chunk child workflows in waves, each one long heartbeating
    # activity (up to 2h, resumable from its heartbeat): never cut by a scale-down to zero, and
    # capacity kept between the waves.
    shape="batch",
    # One caller's huge batch must not hold a small batch's chunks behind it: the backlog is
    # shared between batches (each chunk child inherits its batch's key from its input).
    fairness=Fairness(key="batch_id"),
)
