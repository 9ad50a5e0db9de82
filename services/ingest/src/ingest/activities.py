"""The chunk activity: processes items one by one, heartbeats, resumes where it stopped."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar

from temporalio import activity
from temporalio.converter import value_to_type
from workerkit import activities_of, database_errors, open_database

from ingest.models import ChunkProgress, ChunkRequest, ChunkResult, ItemStatus, item_value
from ingest.settings import IngestSettings
from ingest.store import IngestStore

_P = ParamSpec("_P")
_R = TypeVar("_R")


def resume_point(details: Sequence[Any], chunk: ChunkRequest) -> ChunkProgress:
    """The progress a previous attempt heartbeated last, or a fresh start."""
    if not details:
        return ChunkProgress()
    try:
        progress: ChunkProgress = value_to_type(ChunkProgress, details[0])
    except (TypeError, ValueError, KeyError):
        activity.logger.warning("unreadable heartbeat details; starting the chunk over")
        return ChunkProgress()
    if not 0 <= progress.done <= chunk.item_count:
        activity.logger.warning("heartbeat details outside the chunk; starting it over")
        return ChunkProgress()
    return progress


class IngestActivities:
    """The ingest activities, bound to one store."""

    def __init__(self, store: IngestStore, *, seconds_per_item: float) -> None:
        self.store = store
        self.seconds_per_item = seconds_per_item
        # One thread writes the store for every chunk of this process, in turn: on SQLite
        # (one writer at a time) threads contending for its lock can starve one another
        # past the heartbeat timeout, while a queue serves them fairly; an item is one
        # short transaction, so one connection keeps up on PostgreSQL as well.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-store")

    async def _store(self, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        loop = asyncio.get_running_loop()
        with database_errors():  # a database that is down: this attempt fails, retryably
            return await loop.run_in_executor(self._writer, functools.partial(fn, *args, **kwargs))

    @activity.defn
    async def process_chunk(self, chunk: ChunkRequest) -> ChunkResult:
        """Process the chunk's items in order, heartbeating after each one.

        The heartbeat details are the progress so far (items done and their running
        totals). Temporal hands the last ones it received to the next attempt, which
        continues from there: a worker killed mid-chunk costs at most the items done
        since its last heartbeat reached the server, and the store records those once.
        """
        info = activity.info()
        progress = resume_point(info.heartbeat_details, chunk)
        resumed_from = progress.done
        if resumed_from:
            activity.logger.info(
                "resuming chunk from its last heartbeat",
                extra={"resumed_from": resumed_from, "chunk_items": chunk.item_count},
            )
        attempt_id = await self._store(
            self.store.start_attempt,
            chunk.batch_id,
            chunk.chunk_index,
            attempt=info.attempt,
            resumed_from=resumed_from,
        )
        invalid = set(chunk.invalid_items)
        while progress.done < chunk.item_count:
            index = chunk.first_item + progress.done
            await asyncio.sleep(self.seconds_per_item)  # the item's work
            status = ItemStatus.REJECTED if index in invalid else ItemStatus.ACCEPTED
            value = item_value(index)
            new = await self._store(
                self.store.record_item,
                chunk.batch_id,
                index,
                chunk_index=chunk.chunk_index,
                status=status,
                value=value,
                attempt=info.attempt,
            )
            progress = replace(
                progress,
                done=progress.done + 1,
                accepted=progress.accepted + (status == ItemStatus.ACCEPTED),
                rejected=progress.rejected + (status == ItemStatus.REJECTED),
                value_total=progress.value_total + (value if status == ItemStatus.ACCEPTED else 0),
                duplicates=progress.duplicates + (not new),
            )
            activity.heartbeat(progress)
        await self._store(self.store.finish_attempt, attempt_id)
        return ChunkResult(
            batch_id=chunk.batch_id,
            chunk_index=chunk.chunk_index,
            item_count=chunk.item_count,
            accepted=progress.accepted,
            rejected=progress.rejected,
            value_total=progress.value_total,
            duplicates=progress.duplicates,
            attempt=info.attempt,
            resumed_from=resumed_from,
        )


def create_activities(settings: IngestSettings | None = None) -> list[Callable[..., Any]]:
    """Open the store in the process's database; bind the activities to it and ``settings``
    (default: read from the environment)."""
    settings = settings or IngestSettings.from_env()
    store = IngestStore(open_database(application_name="ingest"))
    return activities_of(IngestActivities(store, seconds_per_item=settings.seconds_per_item))
