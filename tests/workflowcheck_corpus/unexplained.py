"""A vetted exception must say why."""

import time

from temporalio import workflow


@workflow.defn
class UnexplainedWorkflow:
    @workflow.run
    async def run(self) -> float:
        # determinism-ok:
        return time.time()  # expect: time.time
