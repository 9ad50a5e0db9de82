"""Waiting for an order's saga to reach a stage: the orders tests' helper, and the shared
tests' that drive orders (``from services.orders.stages import wait_for_stage``)."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle

from orders.models import OrderStatus, Stage
from orders.workflows import OrderWorkflow

from support import wait_for_query


async def wait_for_stage(
    handle: WorkflowHandle[Any, Any], stage: Stage, timeout: float = 20
) -> OrderStatus:
    """Poll the order's ``status`` query until it reaches ``stage``."""
    return await wait_for_query(
        handle,
        OrderWorkflow.status,
        lambda status: status.stage == stage,
        what=str(stage),
        timeout=timeout,
    )
