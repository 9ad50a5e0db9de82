"""failure_reason: what failed, past the activity and child workflow wrappers."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from workerkit import failure_reason


def activity_error(cause: BaseException | None) -> ActivityError:
    err = ActivityError(
        "Activity task failed",
        scheduled_event_id=5,
        started_event_id=6,
        identity="worker",
        activity_type="charge_payment",
        activity_id="3",
        retry_state=None,
    )
    err.__cause__ = cause
    return err


def child_error(cause: BaseException) -> ChildWorkflowError:
    err = ChildWorkflowError(
        "Child Workflow execution failed",
        namespace="default",
        workflow_id="chunk-1",
        run_id="r",
        workflow_type="ChunkWorkflow",
        initiated_event_id=5,
        started_event_id=6,
        retry_state=None,
    )
    err.__cause__ = cause
    return err


def test_the_reason_is_the_root_cause() -> None:
    declined = ApplicationError("card declined", type="PaymentDeclined")
    assert failure_reason(activity_error(declined)) == "PaymentDeclined: card declined"
    assert failure_reason(activity_error(declined), with_type=False) == "card declined"
    nested = child_error(activity_error(ApplicationError("source unreadable", type="Unreadable")))
    assert failure_reason(nested, with_type=False) == "source unreadable"
    assert failure_reason(declined) == "PaymentDeclined: card declined"


def test_a_wrapper_without_a_cause_is_its_own_reason() -> None:
    assert failure_reason(activity_error(None)) == "Activity task failed"
    assert failure_reason(ValueError("bad")) == "bad"
