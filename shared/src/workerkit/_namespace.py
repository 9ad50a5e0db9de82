"""Idempotent Temporal namespace registration."""

from __future__ import annotations

from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.namespace.v1 import NamespaceConfig, UpdateNamespaceInfo
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    RegisterNamespaceRequest,
    UpdateNamespaceRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

__all__ = ["ensure_namespace"]


async def ensure_namespace(
    client: Client, name: str, *, retention: timedelta, description: str = ""
) -> str:
    """Make sure namespace ``name`` exists with ``retention``.

    Returns:
        ``"created"``, ``"updated"`` (retention changed) or ``"unchanged"``.
    """
    service = client.workflow_service
    try:
        current = await service.describe_namespace(DescribeNamespaceRequest(namespace=name))
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    else:
        have = current.config.workflow_execution_retention_ttl.ToTimedelta()
        if have == retention:
            return "unchanged"
        config = NamespaceConfig()
        config.workflow_execution_retention_ttl.FromTimedelta(retention)
        await service.update_namespace(
            UpdateNamespaceRequest(namespace=name, config=config, update_info=UpdateNamespaceInfo())
        )
        return "updated"
    ttl = Duration()
    ttl.FromTimedelta(retention)
    try:
        await service.register_namespace(
            RegisterNamespaceRequest(
                namespace=name, description=description, workflow_execution_retention_period=ttl
            )
        )
    except RPCError as race:  # registered by someone else since we looked
        if race.status != RPCStatusCode.ALREADY_EXISTS:
            raise
        return "unchanged"
    return "created"
