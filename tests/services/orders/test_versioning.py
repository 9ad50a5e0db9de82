"""Versioning: the fraud-screening step was added with ``workflow.patched()``.

Histories recorded before the change (``*_before_fraud_screening.json``) must still
replay; the same change without the patch guard must not.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import temporalio.workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from orders.client import start_order
from orders.ledger import Ledger
from orders.models import LineItem, Order
from orders.workflows import FRAUD_SCREENING_PATCH, OrderWorkflow

from support import histories_dir

# Frozen: `make histories` never rewrites them, so they keep the shape from before the change.
BEFORE = sorted(histories_dir("orders", "frozen").glob("*_before_fraud_screening.json"))


def history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_histories_from_before_the_change_are_kept() -> None:
    assert len(BEFORE) >= 2
    for path in BEFORE:
        assert "screen_order" not in path.read_text()


@pytest.mark.parametrize("path", BEFORE, ids=[p.stem for p in BEFORE])
async def test_old_runs_replay_with_the_patch(path: Path) -> None:
    result = await Replayer(workflows=[OrderWorkflow]).replay_workflow(
        history(path), raise_on_replay_failure=False
    )
    assert result.replay_failure is None


@pytest.mark.parametrize("path", BEFORE, ids=[p.stem for p in BEFORE])
async def test_the_change_without_the_patch_breaks_old_runs(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the step had been added unconditionally: patched() always true.
    monkeypatch.setattr(temporalio.workflow, "patched", lambda patch_id: True)
    replayer = Replayer(workflows=[OrderWorkflow], workflow_runner=UnsandboxedWorkflowRunner())
    result = await replayer.replay_workflow(history(path), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


@pytest.mark.usefixtures("orders_worker")
async def test_new_runs_take_the_screening_step(
    client: Client, ledger: Ledger, make_order: Callable[..., Order]
) -> None:
    launched = await start_order(client, make_order(payment_token="tok_declined"))
    with pytest.raises(WorkflowFailureError):
        await launched.handle.result()
    events = [e async for e in launched.handle.fetch_history_events()]
    markers = [
        e.marker_recorded_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    assert any(FRAUD_SCREENING_PATCH.encode() in m.SerializeToString() for m in markers)
    assert "screened" in ledger.events(launched.workflow_id.removeprefix("order-"))


@pytest.mark.usefixtures("orders_worker")
async def test_screening_refuses_orders_above_the_limit(
    client: Client, ledger: Ledger, make_order: Callable[..., Order]
) -> None:
    order = make_order(
        order_id=f"big-{uuid.uuid4().hex[:8]}", items=[LineItem("sku-widget", 10, 200_000)]
    )
    launched = await start_order(client, order)
    with pytest.raises(WorkflowFailureError) as info:
        await launched.handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert "exceeds the screening limit" in cause.message
    assert ledger.events(order.order_id) == ["reserved", "released"]
