"""What failed, in words: the message inside the activity and child workflow wrappers, and
the failure of a workflow whose input can never succeed.

Workflows use it (imported under ``workflow.unsafe.imports_passed_through()``, like their
models): it imports only the SDK's exceptions, does no I/O and has no effect at import.
"""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

__all__ = ["failure_reason", "invalid_input"]


def failure_reason(err: BaseException, *, with_type: bool = True) -> str:
    """The root cause of ``err``, past every ``ActivityError`` and ``ChildWorkflowError``.

    Args:
        err: What an activity or child workflow call raised (or any other exception).
        with_type: Prefix an ``ApplicationError``'s type, as ``str()`` does
            (``"PaymentDeclined: card declined"``); ``False`` gives its message alone.
    """
    while isinstance(err, ActivityError | ChildWorkflowError) and err.cause is not None:
        err = err.cause
    if not with_type and isinstance(err, ApplicationError):
        return err.message
    return str(err)


def invalid_input(what: str, problem: str) -> ApplicationError:
    """The non-retryable failure of a workflow whose input can never succeed.

    ``raise invalid_input("order", "the order has no items")`` fails the workflow at once with
    type ``InvalidOrder`` and the message ``invalid order: the order has no items``.
    """
    return ApplicationError(
        f"invalid {what}: {problem}", type=f"Invalid{what.capitalize()}", non_retryable=True
    )
