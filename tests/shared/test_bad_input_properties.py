"""Generated bad JSON, thrown at `fleet start` and, through the official `temporal` CLI, at a
running worker: every input ends in one clear outcome, never in a stuck workflow.

- `fleet start`: exit 0 (the input fits: started) or exit 2 with one `error:` line;
- `temporal workflow start`: the workflow fails within seconds with a non-retryable
  `InvalidInput` or `InvalidParcel` failure, or (the input fits) its first activity is
  scheduled; never a workflow task failure; and the worker still serves afterwards.

Both run the fixture queue's workflow, whose input is a parcel.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import (
    WorkerProcess,
    http_get,
    run_cli,
    temporal_run,
    temporal_start,
    workflow_events,
)

# slow: fleet and temporal CLI processes per example.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fixture_queue")]

PARCEL: dict[str, Any] = {"recipient": "A", "address": "1 Rd, C", "token": "tok_visa", "units": 1}
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [*sorted(PARCEL), "parcel_id", "extra"]


@st.composite
def bad_parcels(draw: st.DrawFn) -> Any:
    """Either any JSON value, or a well-formed parcel with one field replaced or added."""
    if draw(st.booleans()):
        return draw(JSON)
    parcel: dict[str, Any] = {**PARCEL, "parcel_id": f"prop-{uuid.uuid4().hex[:8]}"}
    parcel[draw(st.sampled_from(FIELDS))] = draw(JSON)
    return parcel


PROPERTY = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,  # the same examples in every run: reproducible in CI
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def terminate(address: str, workflow_id: str) -> None:
    temporal_run(address, "workflow", "terminate", "-w", workflow_id, "--reason", "test")


@PROPERTY
@given(value=bad_parcels())
def test_fleet_start_exits_0_or_2_with_one_line(value: Any, temporal_address: str) -> None:
    done = run_cli(
        "start",
        "fixture",
        "FixtureWorkflow",
        json.dumps(value),
        env={"TEMPORAL_ADDRESS": temporal_address, "TEMPORAL_NAMESPACE": "default"},
    )
    assert done.returncode in (0, 2), (value, done.stdout, done.stderr)
    if done.returncode == 2:
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (value, lines)
    else:
        terminate(temporal_address, json.loads(done.stdout)["workflow_id"])


def outcome(address: str, workflow_id: str) -> str:
    """``failed`` (non-retryable, input refused) or ``running`` (its first activity is
    scheduled)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        events = workflow_events(address, workflow_id)
        assert not any("workflowTaskFailedEventAttributes" in e for e in events), events
        failed = [
            e["workflowExecutionFailedEventAttributes"]["failure"]
            for e in events
            if "workflowExecutionFailedEventAttributes" in e
        ]
        if failed:
            info = failed[0].get("applicationFailureInfo", {})
            assert info.get("nonRetryable") is True, failed[0]
            assert info.get("type") in ("InvalidInput", "InvalidParcel"), failed[0]
            return "failed"
        if any("activityTaskScheduledEventAttributes" in e for e in events):
            return "running"
        time.sleep(0.2)
    raise AssertionError(f"{workflow_id}: neither failed nor running after 20 s")


def test_generated_inputs_from_the_temporal_cli_never_leave_a_workflow_stuck(
    spawn_worker: Any, temporal_address: str
) -> None:
    worker: WorkerProcess = spawn_worker("fixture")
    worker.wait_ready()
    seen: dict[str, int] = {}

    @PROPERTY
    @given(value=bad_parcels())
    def check(value: Any) -> None:
        workflow_id = f"prop-{uuid.uuid4().hex[:10]}"
        started = temporal_start(
            temporal_address, "fixture-v1", "FixtureWorkflow", workflow_id, json.dumps(value)
        )
        assert started.returncode == 0, started.stderr
        result = outcome(temporal_address, workflow_id)
        seen[result] = seen.get(result, 0) + 1
        if result == "running":
            terminate(temporal_address, workflow_id)

    check()
    assert seen.get("failed", 0) > 0, seen
    assert http_get(worker.url("/readyz")) == (200, "polling\n")
    assert "Traceback" not in worker.log()
