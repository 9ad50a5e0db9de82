"""The batch plan and the store, without a server."""

from __future__ import annotations

import pytest
from workerkit import Database, SettingError

from ingest.models import BatchRequest, ItemStatus, chunk_count, plan_chunk
from ingest.settings import IngestSettings
from ingest.store import IngestStore


def test_chunks_cover_every_item_once_and_carry_their_invalid_items() -> None:
    request = BatchRequest("b", item_count=23, chunk_size=5, invalid_items=[0, 9, 22, 9])
    chunks = [plan_chunk(request, i) for i in range(chunk_count(request))]
    assert [(c.first_item, c.item_count) for c in chunks] == [
        (0, 5),
        (5, 5),
        (10, 5),
        (15, 5),
        (20, 3),
    ]
    assert [c.invalid_items for c in chunks] == [[0], [9], [], [], [22]]


def test_store_records_an_item_once_and_counts_redeliveries(any_database: Database) -> None:
    store = IngestStore(any_database)

    def record(batch_id: str, attempt: int) -> bool:
        return store.record_item(
            batch_id, 4, chunk_index=0, status=ItemStatus.ACCEPTED, value=5, attempt=attempt
        )

    assert record("b", attempt=1) is True
    assert record("b", attempt=2) is False
    assert record("other", attempt=1) is True
    (item,) = IngestStore(any_database).items("b")  # another process would see it
    assert (item.item_index, item.attempt, item.deliveries) == (4, 1, 2)
    attempt_id = store.start_attempt("b", 0, attempt=2, resumed_from=3)
    store.finish_attempt(attempt_id)
    (attempt,) = store.attempts("b")
    assert (attempt.attempt, attempt.resumed_from) == (2, 3)
    assert attempt.finished_at is not None and attempt.finished_at >= attempt.started_at


@pytest.mark.parametrize("raw", ["-1", "2", "fast"])
def test_seconds_per_item_must_stay_well_inside_the_heartbeat_timeout(raw: str) -> None:
    with pytest.raises(SettingError, match="INGEST_SECONDS_PER_ITEM"):
        IngestSettings.from_env({"INGEST_SECONDS_PER_ITEM": raw})
