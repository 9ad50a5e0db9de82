"""Typed inputs and outputs of the ingest workflows and activity, and the batch's plan.

A batch's source is a generated range: item ``i`` (``0 <= i < item_count``) carries the
value :func:`item_value`, standing in for a record read from a file or a table. Items
listed in ``invalid_items`` are malformed records: they are recorded as rejected and
counted, never retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# Temporal fails a workflow with more than 2,000 pending children (server default).
MAX_CONCURRENT_CHILDREN = 1000
# Failed chunks listed in the result (all are counted); the list is carried across
# continue-as-new, so it must stay small.
MAX_LISTED_FAILURES = 20


class ItemStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


def item_value(index: int) -> int:
    """The value the source holds for item ``index``."""
    return index % 100 + 1


@dataclass(frozen=True)
class ChunkFailure:
    """A chunk whose child workflow failed: its items count as failed."""

    chunk_index: int
    first_item: int
    item_count: int
    error: str


@dataclass
class BatchTotals:
    """The aggregate over every finished chunk; carried from run to run."""

    chunks_completed: int = 0
    chunks_failed: int = 0
    accepted: int = 0
    rejected: int = 0
    failed_items: int = 0
    value_total: int = 0
    # Items a resumed attempt processed again (recorded once all the same).
    duplicates: int = 0
    # Chunks whose activity resumed from heartbeat details after a failed attempt.
    resumed_chunks: int = 0
    # Most child workflows running at once, over every run.
    max_in_flight: int = 0
    failures: list[ChunkFailure] = field(default_factory=list)

    def add_result(self, result: ChunkResult) -> None:
        self.chunks_completed += 1
        self.accepted += result.accepted
        self.rejected += result.rejected
        self.value_total += result.value_total
        self.duplicates += result.duplicates
        self.resumed_chunks += 1 if result.resumed_from > 0 else 0

    def add_failure(self, failure: ChunkFailure) -> None:
        self.chunks_failed += 1
        self.failed_items += failure.item_count
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append(failure)
            self.failures.sort(key=lambda f: f.chunk_index)

    @property
    def items_done(self) -> int:
        return self.accepted + self.rejected + self.failed_items


@dataclass(frozen=True)
class BatchCheckpoint:
    """What one run of the batch workflow hands to the next through continue-as-new."""

    next_chunk: int
    runs_completed: int
    totals: BatchTotals


@dataclass(frozen=True)
class BatchRequest:
    """What a caller submits: ``item_count`` items, ingested ``chunk_size`` at a time."""

    batch_id: str
    item_count: int
    chunk_size: int = 100
    # Chunk workflows running at once.
    max_concurrent_children: int = 5
    # Chunks one run starts before it continues as new (sooner if Temporal suggests it).
    chunks_per_run: int = 200
    invalid_items: list[int] = field(default_factory=list)
    # Set by the workflow when it continues as new; callers leave it unset.
    checkpoint: BatchCheckpoint | None = None


@dataclass(frozen=True)
class ChunkRequest:
    """One chunk: items ``first_item`` to ``first_item + item_count - 1`` of the batch."""

    batch_id: str
    chunk_index: int
    first_item: int
    item_count: int
    invalid_items: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ChunkProgress:
    """The heartbeat details of the chunk activity: where a retry resumes."""

    done: int = 0
    accepted: int = 0
    rejected: int = 0
    value_total: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class ChunkResult:
    batch_id: str
    chunk_index: int
    item_count: int
    accepted: int
    rejected: int
    value_total: int
    duplicates: int
    # The activity attempt that finished the chunk, and the item it started from.
    attempt: int
    resumed_from: int


@dataclass(frozen=True)
class BatchProgress:
    """Answer of the ``progress`` query."""

    batch_id: str
    run: int
    chunk_count: int
    next_chunk: int
    in_flight: list[int]
    totals: BatchTotals


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    item_count: int
    chunk_count: int
    runs: int
    totals: BatchTotals


def chunk_count(request: BatchRequest) -> int:
    """How many chunks the batch splits into (the request must be valid)."""
    return -(-request.item_count // request.chunk_size)


def plan_chunk(request: BatchRequest, index: int) -> ChunkRequest:
    """Chunk ``index`` of the batch."""
    first = index * request.chunk_size
    count = min(request.chunk_size, request.item_count - first)
    invalid = sorted({i for i in request.invalid_items if first <= i < first + count})
    return ChunkRequest(request.batch_id, index, first, count, invalid)


def batch_problem(request: BatchRequest) -> str | None:
    """Return why ``request`` can never be ingested, or ``None`` if it is well-formed."""
    if not request.batch_id.strip():
        return "batch_id is empty"
    if request.item_count <= 0:
        return f"the batch is empty: item_count must be positive, got {request.item_count}"
    if request.chunk_size <= 0:
        return f"chunk_size must be positive, got {request.chunk_size}"
    if not 0 < request.max_concurrent_children <= MAX_CONCURRENT_CHILDREN:
        return (
            f"max_concurrent_children must be from 1 to {MAX_CONCURRENT_CHILDREN}, "
            f"got {request.max_concurrent_children}"
        )
    if request.chunks_per_run <= 0:
        return f"chunks_per_run must be positive, got {request.chunks_per_run}"
    outside = [i for i in request.invalid_items if not 0 <= i < request.item_count]
    if outside:
        return f"invalid_items {outside[:5]} are outside the batch (0 to {request.item_count - 1})"
    checkpoint = request.checkpoint
    if checkpoint is not None and not 0 <= checkpoint.next_chunk <= chunk_count(request):
        return f"checkpoint.next_chunk {checkpoint.next_chunk} is outside the batch"
    return None


def chunk_problem(chunk: ChunkRequest) -> str | None:
    """Return why ``chunk`` can never be processed, or ``None`` if it is well-formed."""
    if not chunk.batch_id.strip():
        return "batch_id is empty"
    if chunk.chunk_index < 0 or chunk.first_item < 0:
        return "chunk_index and first_item must not be negative"
    if chunk.item_count <= 0:
        return f"the chunk is empty: item_count must be positive, got {chunk.item_count}"
    end = chunk.first_item + chunk.item_count
    outside = [i for i in chunk.invalid_items if not chunk.first_item <= i < end]
    if outside:
        return f"invalid_items {outside[:5]} are outside the chunk"
    return None
